/**
 * The fault harness of test/support/pair-faults.ts, over the real product: two
 * `dist/target/main.js serve` processes forming a pair (file witness, peer link through a
 * breakable proxy), with all I/O through iSCSI sessions to each node's portal and status from
 * each node's agent.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, promises as fsp } from "node:fs";
import { join } from "node:path";
import { TargetStatusSchema, type ReplicationStatus } from "../../target/agent/status-schema.js";
import { PairFixture, type Node } from "./pair-fixture.js";
import { freePort, spawnLogged, stopProcess, waitFor } from "./processes.js";
import { ScsiSession } from "./scsi-session.js";
import { targetMain } from "./target-process.js";

export interface IscsiPairOptions {
  sizeBytes?: number;
  resyncRate?: number;
  /** iSCSI sessions per node; commands run one at a time on each */
  sessionsPerNode?: number;
  /** each node's --peer-secret-file (default: one file shared by both, written by setup) */
  peerSecretFile?: (n: Node, dir: string) => string;
  /** more arguments for each node's command line (CHAP, for example) */
  extraArgs?: (n: Node, dir: string) => string[];
  /**
   * The agents' --agent-token-file, as the operator always sets it (default: a random token of 32
   * bytes as hex); null runs the agents without one.
   */
  agentToken?: string | null;
}

interface NodePorts {
  iscsi: number;
  agent: number;
  peer: number;
}

export class IscsiPairHarness extends PairFixture {
  readonly iqn: string;
  private ports = {} as Record<Node, NodePorts>;
  private readonly running = new Map<Node, ChildProcess>();
  private readonly sessions = {} as Record<Node, ScsiSession[]>;
  private next = 0;
  /** the token both agents require (Authorization: Bearer), or undefined when they run without one */
  readonly agentToken: string | undefined;

  constructor(readonly o: IscsiPairOptions = {}) {
    super(o.sizeBytes);
    this.iqn = `iqn.2026-11.dev.hasan:faults-${process.pid}`;
    this.agentToken = o.agentToken === null ? undefined : (o.agentToken ?? randomBytes(32).toString("hex"));
  }

  /** The node's agent base URL on 127.0.0.1. */
  agentUrl(n: Node): string {
    return `http://127.0.0.1:${this.ports[n].agent}`;
  }

  /** Headers with the agents' token, for requests to an agent. */
  agentHeaders(): Record<string, string> {
    return this.agentToken === undefined ? {} : { authorization: `Bearer ${this.agentToken}` };
  }

  async setup(): Promise<void> {
    for (const n of ["a", "b"] as const) {
      this.ports[n] = { iscsi: await freePort(), agent: await freePort(), peer: await freePort() };
      this.sessions[n] = Array.from(
        { length: this.o.sessionsPerNode ?? 4 },
        (_, i) =>
          new ScsiSession({
            port: () => this.ports[n].iscsi,
            iqn: this.iqn,
            initiator: `iqn.2026-11.dev.hasan:faults-${n}-${i}`,
            isid: `4000000000${(i + 1).toString(16).padStart(2, "0")}`,
          }),
      );
    }
    // Node a dials node b through the proxy, which can cut or blackhole the link.
    await this.prepare("hasan-iscsi-pair-", this.ports.b.peer);
    await fsp.writeFile(join(this.dir, "peer.secret"), "faults-peer-secret\n");
    if (this.agentToken !== undefined)
      await fsp.writeFile(join(this.dir, "agent.token"), `${this.agentToken}\n`);
  }

  /** The node's iSCSI port on 127.0.0.1. */
  iscsiPort(n: Node): number {
    return this.ports[n].iscsi;
  }

  witnessSpec(): string {
    return `file:${join(this.dir, "witness")}`;
  }

  isRunning(n: Node): boolean {
    return this.running.has(n);
  }

  async start(n: Node): Promise<void> {
    if (this.running.has(n)) return;
    const p = this.ports[n];
    const args = [
      targetMain,
      "serve",
      "--data",
      this.lunPath(n),
      "--size",
      String(this.sizeBytes),
      "--iqn",
      this.iqn,
      "--listen",
      `127.0.0.1:${p.iscsi}`,
      "--agent-listen",
      `127.0.0.1:${p.agent}`,
      "--node",
      n,
      "--peer",
      `127.0.0.1:${this.proxyPort}`,
      "--peer-listen",
      `127.0.0.1:${p.peer}`,
      "--peer-secret-file",
      this.o.peerSecretFile ? this.o.peerSecretFile(n, this.dir) : join(this.dir, "peer.secret"),
      "--witness",
      this.witnessSpec(),
      ...(this.o.resyncRate ? ["--resync-rate", String(this.o.resyncRate)] : []),
      ...(this.agentToken !== undefined ? ["--agent-token-file", join(this.dir, "agent.token")] : []),
      ...(this.o.extraArgs?.(n, this.dir) ?? []),
    ];
    const proc = spawnLogged(process.execPath, args, this.logPath(n));
    this.note(n, "started", proc.pid);
    this.running.set(n, proc);
    proc.once("exit", () => {
      if (this.running.get(n) === proc) this.running.delete(n);
    });
    await waitFor(
      `node ${n} agent up (log ${this.logPath(n)})`,
      async () => {
        if (proc.exitCode !== null) throw new Error(`node ${n} exited with ${proc.exitCode}`);
        return (await fetch(`http://127.0.0.1:${p.agent}/healthz`)).ok;
      },
      30_000,
      50,
    );
  }

  /** kill -9 */
  /** A line in the node's log saying what the harness did to it (for reading a failed run). */
  protected note(n: Node, what: string, pid?: number): void {
    appendFileSync(
      this.logPath(n),
      JSON.stringify({ level: 30, time: Date.now(), msg: `harness: ${what}`, pid }) + "\n",
    );
  }

  async kill(n: Node): Promise<void> {
    const proc = this.running.get(n);
    if (!proc) return;
    this.running.delete(n);
    this.note(n, "kill -9", proc.pid);
    await stopProcess(proc, "SIGKILL");
    for (const s of this.sessions[n]) s.close();
  }

  async stop(n: Node): Promise<void> {
    const proc = this.running.get(n);
    if (!proc) return;
    this.running.delete(n);
    await stopProcess(proc, "SIGTERM", 10_000);
    for (const s of this.sessions[n]) s.close();
  }

  private session(n: Node): ScsiSession {
    const list = this.sessions[n];
    return list[this.next++ % list.length]!;
  }

  write(n: Node, offset: number, data: Buffer, options: { fua?: boolean } = {}): Promise<void> {
    return this.session(n).write(offset, data, options);
  }

  read(n: Node, offset: number, length: number): Promise<Buffer> {
    return this.session(n).read(offset, length);
  }

  async flush(n: Node): Promise<void> {
    await this.session(n).synchronizeCache();
  }

  async status(n: Node): Promise<ReplicationStatus> {
    const r = await fetch(`${this.agentUrl(n)}/status`, {
      headers: this.agentHeaders(),
      signal: AbortSignal.timeout(10_000),
    });
    const s = TargetStatusSchema.parse(await r.json());
    if (!s.replication) throw new Error(`node ${n} reports no replication status`);
    return s.replication;
  }
}
