/**
 * A pair of real target processes (CHAP and mutual CHAP, peer link through a breakable proxy)
 * with a Linux guest logged in to both portals, and the failover scenario every fault runs
 * through: fio with verification on the multipath device while the fault happens and heals.
 */
import { strict as assert } from "node:assert";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { Guest, HOST_FROM_GUEST, type GuestOptions } from "./guest.js";
import {
  describeView,
  fioLoopScript,
  fioStop,
  loginScript,
  logoutScript,
  multipathView,
  waitForMultipath,
  type Chap,
  type FioSummary,
} from "./guest-iscsi.js";
import { IscsiPairHarness } from "./iscsi-pair-harness.js";
import type { Node } from "./pair-fixture.js";
import { waitFor } from "./processes.js";

export const pairChap: Chap = {
  user: "guest-user",
  secret: "guest-chap-secret-1",
  mutualUser: "hasan-target",
  mutualSecret: "target-chap-secret-2",
};

/** Both nodes with one-way and mutual CHAP, as the operator configures them. */
function chapArgs(_n: Node, dir: string): string[] {
  writeFileSync(join(dir, "chap.secret"), pairChap.secret + "\n");
  writeFileSync(join(dir, "mutual.secret"), pairChap.mutualSecret + "\n");
  return [
    ...["--chap-user", pairChap.user, "--chap-secret-file", join(dir, "chap.secret")],
    ...["--mutual-chap-user", pairChap.mutualUser!, "--mutual-chap-secret-file", join(dir, "mutual.secret")],
  ];
}

export interface GuestPairOptions {
  /** more arguments for both nodes (after the CHAP ones), such as --serial */
  extraArgs?: (n: Node, dir: string) => string[];
  /** what the guest boots with besides its name (shared directories, memory) */
  guest?: Omit<GuestOptions, "name">;
}

export class GuestPair {
  readonly pair: IscsiPairHarness;
  guest!: Guest;

  /** The LUN size both nodes are started with (growLive changes it). */
  private lunBytes = 64 << 20;

  constructor(private readonly o: GuestPairOptions = {}) {
    this.pair = new IscsiPairHarness({
      sizeBytes: this.lunBytes,
      sessionsPerNode: 1,
      // --size last: the target takes the last of a repeated flag, so it overrides the harness's.
      extraArgs: (n, dir) => [
        ...chapArgs(n, dir),
        ...(o.extraArgs?.(n, dir) ?? []),
        ...["--size", String(this.lunBytes)],
      ],
    });
  }

  get sizeBytes(): number {
    return this.lunBytes;
  }

  /**
   * Grows the LUN live, as the operator does: POST /capacity to node a's agent; both nodes grow
   * without a restart (every session gets CAPACITY DATA HAS CHANGED). Returns once both report it.
   */
  async growLive(bytes: number): Promise<void> {
    await this.pair.waitInSync(180_000);
    const r = await fetch(`${this.pair.agentUrl("a")}/capacity`, {
      method: "POST",
      headers: { ...this.pair.agentHeaders(), "content-type": "application/json" },
      body: JSON.stringify({ sizeBytes: bytes }),
      signal: AbortSignal.timeout(120_000),
    });
    const body = (await r.json()) as { sizeBytes?: number; message?: string };
    if (r.status !== 200 || body.sizeBytes !== bytes)
      throw new Error(`growing the pair to ${bytes} bytes: ${r.status} ${JSON.stringify(body)}`);
    for (const n of ["a", "b"] as const) {
      const s = (await (
        await fetch(`${this.pair.agentUrl(n)}/status`, { headers: this.pair.agentHeaders() })
      ).json()) as { sizeBytes: number };
      if (s.sizeBytes !== bytes) throw new Error(`node ${n} serves ${s.sizeBytes} bytes, not ${bytes}`);
    }
    this.lunBytes = bytes; // a later restart keeps the size
  }

  /** Starts both nodes and boots the guest at the same time; returns once the pair is in sync. */
  async setup(name: string): Promise<void> {
    await this.pair.setup();
    await Promise.all([
      this.pair.start("a"),
      this.pair.start("b"),
      (async () => (this.guest = await Guest.boot({ ...this.o.guest, name })))(),
    ]);
    await this.pair.waitInSync();
  }

  async cleanup(): Promise<void> {
    if (this.guest) process.stderr.write(`guest logs: ${await this.guest.saveLogs()}\n`);
    await this.guest?.stop();
    await this.pair.cleanup();
  }

  portal(n: Node): string {
    return `${HOST_FROM_GUEST}:${this.pair.iscsiPort(n)}`;
  }

  portals() {
    return (["a", "b"] as const).map((n) => ({ host: HOST_FROM_GUEST, port: this.pair.iscsiPort(n) }));
  }

  /** The node whose port group the pair reports active/optimized (the one ordering writes). */
  async optimizedNode(): Promise<Node> {
    const alua = (await this.pair.status("a")).alua;
    return alua?.b === "active/optimized" ? "b" : "a";
  }

  /** Waits until multipath shows the path through node `n`'s portal failed (its checker says so). */
  async waitPathFailed(n: Node, timeoutMs = 60_000): Promise<void> {
    let last = "";
    await waitFor(
      `the path through node ${n} failed`,
      async () => {
        const [v] = await multipathView(this.guest);
        if (!v) return false;
        last = describeView([v]);
        return v.map.groups.some((g, i) =>
          g.paths.some((p, j) => v.groupPortals[i]![j] === this.portal(n) && p.dmState === "failed"),
        );
      },
      timeoutMs,
      1000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; multipath: ${last}`);
    });
  }

  async waitServingAlone(n: Node, timeoutMs = 30_000): Promise<void> {
    await waitFor(
      `node ${n} serving alone`,
      async () => {
        const s = await this.pair.status(n);
        return s.state === "Failed" && s.serving;
      },
      timeoutMs,
    );
  }

  /**
   * Logs in to both portals, runs fio with verification on the multipath device, applies
   * `fault`, waits `outageMs`, applies `heal`, waits for the pair to be in sync and both paths
   * healthy with the optimized node's preferred, then stops fio and checks: no fio error, no
   * I/O error on the map, byte-identical LUN files.
   */
  async failover(
    t: TestContext,
    o: { fault: () => Promise<void>; heal: () => Promise<void>; outageMs?: number },
  ): Promise<FioSummary> {
    const { guest, pair } = this;
    await guest.run(loginScript(pair.iqn, this.portals(), pairChap));
    let fio: FioSummary;
    try {
      const v = await waitForMultipath(guest, {
        paths: 2,
        preferredPortal: this.portal(await this.optimizedNode()),
      });
      await guest.run(fioLoopScript(`/dev/mapper/${v.map.wwid}`));
      await sleep(8_000);
      await o.fault();
      await sleep(o.outageMs ?? 10_000);
      const during = await waitForMultipath(guest, { paths: 1, timeoutMs: 60_000 }).catch(
        (e: Error) => e.message,
      );
      t.diagnostic(`during the fault: ${typeof during === "string" ? during : describeView([during])}`);
      await o.heal();
      await pair.waitInSync(180_000);
      const optimized = await this.optimizedNode();
      const back = await waitForMultipath(guest, {
        paths: 2,
        preferredPortal: this.portal(optimized),
        timeoutMs: 120_000,
      });
      t.diagnostic(`after the resync (node ${optimized} optimized): ${describeView([back])}`);
      await sleep(5_000);
      fio = await fioStop(guest);
      t.diagnostic(
        `fio: ${fio.rounds} verified rounds, ${fio.writtenMiB} MiB written, ${fio.errors} errors, ${fio.failed ? "FAILED" : "clean"}`,
      );
      const kernel = await guest.run(
        "dmesg | grep -E 'alua: port group|Failing path|Reinstating path|conn error|I/O error|session recovery' | tail -30",
      );
      for (const line of kernel.trim().split("\n")) t.diagnostic(line);
      assert.equal(fio.failed, false, fio.text);
      assert.equal(fio.errors, 0, fio.text);
      assert.ok(fio.rounds >= 2, `fio ran across the fault: ${fio.text}`);
      // A failed path logs errors on its sd device; the map the workload uses must see none.
      assert.doesNotMatch(
        kernel,
        /I\/O error, dev dm-|Buffer I\/O error on dev dm-/,
        "no I/O error on the map",
      );
    } finally {
      await guest.run(logoutScript(pair.iqn));
    }
    await pair.waitInSync(180_000);
    assert.equal(await pair.fileHash("a"), await pair.fileHash("b"), "the LUN files are byte-identical");
    return fio;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
