/**
 * Runs a pair of real node processes (test/support/pair-node.ts) over real LUN files in a
 * temporary directory, with the peer link going through a breakable proxy and a file
 * witness. Helpers to start, kill -9, restart, drive I/O over HTTP and wait for states.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, promises as fsp, type WriteStream } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ReplicationStatus } from "../../target/agent/status-schema.js";
import { PairFixture, type Node } from "./pair-fixture.js";
import { freePort, waitFor } from "./processes.js";

export type { Node } from "./pair-fixture.js";
const DRIVER = join(dirname(fileURLToPath(import.meta.url)), "pair-node.js");

export interface HarnessOptions {
  sizeBytes?: number;
  regionSize?: number;
  resyncRate?: number;
  /** a file witness in the test directory (default), none, or a witness spec such as `lease:NS/NAME` */
  witness?: "file" | "none" | `lease:${string}`;
  secrets?: { a: string; b: string };
  heartbeatMs?: number;
  peerTimeoutMs?: number;
  /** what both nodes ask of the peer link's records (default: encrypted) */
  records?: "encrypted" | "authenticated";
}

export class IoError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface Running {
  proc: ChildProcess;
  exited: Promise<void>;
  log: WriteStream;
}

export class PairHarness extends PairFixture {
  private ports = { aHttp: 0, bHttp: 0, bPeer: 0 };
  private readonly running = new Map<Node, Running>();

  constructor(readonly o: HarnessOptions = {}) {
    super(o.sizeBytes);
  }

  async setup(): Promise<void> {
    this.ports = { aHttp: await freePort(), bHttp: await freePort(), bPeer: await freePort() };
    await this.prepare("hasan-pair-", this.ports.bPeer);
    const secrets = this.o.secrets ?? { a: "s3cret-shared", b: "s3cret-shared" };
    await fsp.writeFile(join(this.dir, "secret-a"), secrets.a);
    await fsp.writeFile(join(this.dir, "secret-b"), secrets.b);
  }

  /** Node b's peer listen port (behind the proxy). */
  peerListenPort(): number {
    return this.ports.bPeer;
  }

  isRunning(n: Node): boolean {
    return this.running.has(n);
  }

  /** The process id of a running node. */
  pid(n: Node): number {
    const pid = this.running.get(n)?.proc.pid;
    if (pid === undefined) throw new Error(`node ${n} is not running`);
    return pid;
  }

  async start(n: Node): Promise<void> {
    if (this.running.has(n)) return;
    const args = [
      DRIVER,
      "--node",
      n,
      "--lun",
      this.lunPath(n),
      "--size",
      String(this.sizeBytes),
      "--secret-file",
      join(this.dir, `secret-${n}`),
      "--witness",
      this.witnessSpec(),
      "--http",
      `127.0.0.1:${n === "a" ? this.ports.aHttp : this.ports.bHttp}`,
      "--heartbeat-ms",
      String(this.o.heartbeatMs ?? 250),
      "--peer-timeout-ms",
      String(this.o.peerTimeoutMs ?? 2000),
    ];
    if (n === "a") args.push("--peer", `127.0.0.1:${this.proxyPort}`, "--listen", "127.0.0.1:0");
    else args.push("--peer", `127.0.0.1:${this.proxyPort}`, "--listen", `127.0.0.1:${this.ports.bPeer}`);
    if (this.o.regionSize) args.push("--region-size", String(this.o.regionSize));
    if (this.o.resyncRate) args.push("--resync-rate", String(this.o.resyncRate));
    if (this.o.records) args.push("--records", this.o.records);
    const log = createWriteStream(this.logPath(n), { flags: "a" });
    const proc = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise<void>((r) => proc.once("exit", () => r())).then(
      () => new Promise<void>((r) => log.end(() => r())),
    );
    this.running.set(n, { proc, exited, log });
    let ready!: () => void;
    let failed!: (e: Error) => void;
    const readyP = new Promise<void>((res, rej) => {
      ready = res;
      failed = rej;
    });
    let buffered = "";
    proc.stdout!.on("data", (d: Buffer) => {
      log.write(d);
      buffered += d.toString();
      if (buffered.includes("PAIR-NODE-READY")) ready();
      if (buffered.length > 100_000) buffered = buffered.slice(-1000);
    });
    proc.stderr!.on("data", (d: Buffer) => log.write(d));
    void exited.then(() => {
      this.running.delete(n);
      failed(new Error(`node ${n} exited before it was ready; see ${this.logPath(n)}`));
    });
    const t = setTimeout(() => failed(new Error(`node ${n} not ready in 30 s`)), 30_000);
    try {
      await readyP;
    } finally {
      clearTimeout(t);
    }
  }

  witnessSpec(): string {
    const w = this.o.witness ?? "file";
    return w === "file" ? `file:${join(this.dir, "witness")}` : w;
  }

  /** kill -9 */
  async kill(n: Node): Promise<void> {
    const r = this.running.get(n);
    if (!r) return;
    r.proc.kill("SIGKILL");
    await r.exited;
    this.running.delete(n);
  }

  async stop(n: Node): Promise<void> {
    const r = this.running.get(n);
    if (!r) return;
    r.proc.kill("SIGTERM");
    const t = setTimeout(() => r.proc.kill("SIGKILL"), 10_000);
    await r.exited;
    clearTimeout(t);
    this.running.delete(n);
  }

  private url(n: Node, path: string): string {
    return `http://127.0.0.1:${n === "a" ? this.ports.aHttp : this.ports.bHttp}${path}`;
  }

  private async call(n: Node, method: string, path: string, body?: Buffer | string): Promise<Response> {
    const res = await fetch(this.url(n, path), {
      method,
      ...(body !== undefined ? { body } : {}),
      signal: AbortSignal.timeout(60_000),
    });
    if (!res.ok) {
      const text = await res.text();
      throw new IoError(res.status, `${method} ${path} on node ${n}: ${res.status} ${text}`);
    }
    return res;
  }

  async write(n: Node, offset: number, data: Buffer): Promise<void> {
    await this.call(n, "PUT", `/data?offset=${offset}`, data);
  }

  async read(n: Node, offset: number, length: number): Promise<Buffer> {
    const res = await this.call(n, "GET", `/data?offset=${offset}&length=${length}`);
    return Buffer.from(await res.arrayBuffer());
  }

  async compareAndWrite(n: Node, offset: number, expected: Buffer, data: Buffer): Promise<number> {
    const res = await this.call(n, "POST", `/caw?offset=${offset}`, Buffer.concat([expected, data]));
    return ((await res.json()) as { result: number }).result;
  }

  async flush(n: Node): Promise<void> {
    await this.call(n, "POST", "/flush");
  }

  async status(n: Node): Promise<ReplicationStatus> {
    const res = await this.call(n, "GET", "/status");
    return (await res.json()) as ReplicationStatus;
  }

  async resolveSplitBrain(n: Node, discard: Node): Promise<string> {
    const res = await this.call(n, "POST", "/split-brain/resolve", JSON.stringify({ discard }));
    return ((await res.json()) as { message: string }).message;
  }

  /** Polls `fn` until it returns true (errors count as false). */
  async waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
    await waitFor(what, fn, timeoutMs, 100);
  }

  async waitState(n: Node, state: string, timeoutMs = 60_000): Promise<ReplicationStatus> {
    let s: ReplicationStatus | undefined;
    await this.waitFor(
      `node ${n} to be ${state}${s ? ` (is ${s.state}: ${s.message})` : ""}`,
      async () => {
        s = await this.status(n);
        return s.state === state;
      },
      timeoutMs,
    );
    return s!;
  }

  async logText(n: Node): Promise<string> {
    return fsp.readFile(this.logPath(n), "utf8").catch(() => "");
  }
}
