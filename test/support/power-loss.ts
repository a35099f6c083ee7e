/**
 * Seeded power-loss rounds against a real pair: two target processes whose data directories
 * (LUN file and pair metadata) are lazyfs mounts (writes not fsynced are really lost when a node
 * loses power), all I/O through iSCSI sessions to both portals: writes with and without FUA,
 * SYNCHRONIZE CACHE through either portal, and reads. Each round cuts the power of one node or
 * both at random moments, restarts them, and lets the pair resync. The invariants:
 * - every write acknowledged before a SYNCHRONIZE CACHE that then completed, or acknowledged
 *   with FUA, survives (or a later write to its block does): no read ever returns older data;
 * - after the resync both portals return the same data and the two LUN files are byte-identical.
 */
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { IscsiPairHarness } from "./iscsi-pair-harness.js";
import { LazyFs, unmountLazyFsUnder } from "./lazyfs.js";
import type { Node } from "./pair-fixture.js";
import { blockData, prng } from "./pair-faults.js";

const BLOCK = 4096;
const ZERO = Buffer.alloc(BLOCK);

/** Two nodes on lazyfs: `powerCut(n)` loses what node n had not made durable. */
export class PowerLossPairHarness extends IscsiPairHarness {
  private readonly disks = new Map<Node, LazyFs>();

  override async setup(): Promise<void> {
    await super.setup();
    for (const n of ["a", "b"] as const) {
      this.disks.set(n, await LazyFs.mount(join(this.dir, `${n}.disk`), join(this.dir, n)));
    }
  }

  /** The node's process and its machine's page cache die at once; the machine comes back empty. */
  async powerCut(n: Node): Promise<void> {
    await this.kill(n);
    const disk = this.disks.get(n)!;
    this.note(n, "power cut (lazyfs daemon killed)");
    await disk.powerCut();
    await disk.remount();
  }

  override async cleanup(): Promise<void> {
    await Promise.all([this.kill("a"), this.kill("b")]);
    for (const d of this.disks.values()) await d.unmount().catch(() => undefined);
    if (this.dir) await unmountLazyFsUnder(this.dir);
    await super.cleanup();
  }
}

interface WriteRecord {
  data: Buffer;
  fua: boolean;
  /** through which portal, and when it was issued (wall clock, to read beside the node logs) */
  node: Node;
  issuedAt: number;
  /** when the target acknowledged it (test clock); null: refused or cut off */
  ackAt: number | null;
}

interface BlockHistory {
  /** the content known durable on both nodes at the last check (null: zeros) */
  base: Buffer | null;
  /** writes since, in the order they were issued (one at a time per block) */
  writes: WriteRecord[];
}

interface Flush {
  start: number;
  end: number;
  node: Node;
}

const describeData = (x: Buffer) => (x.equals(ZERO) ? "zeros" : `write ${x.readUInt32BE(0)}`);

export interface PowerRoundReport {
  round: number;
  actions: string[];
  writesAcked: number;
  fuaAcked: number;
  flushes: number;
  writesFailed: number;
  readsChecked: number;
}

export class PowerLossRunner {
  readonly rand: () => number;
  private readonly blocks: number;
  private readonly model = new Map<number, BlockHistory>();
  private readonly busy = new Set<number>();
  private flushes: Flush[] = [];
  /** power cuts since the last check (test clock) */
  private cuts: Array<{ node: Node; at: number }> = [];
  private writeId = 1;
  /** this round's mix: how often a worker flushes, how often a write has FUA */
  private flushRate = 0.1;
  private fuaRate = 0.3;
  /** workers hold still (a quiet moment before a power cut lets active extents go idle) */
  private paused = false;

  constructor(
    readonly h: PowerLossPairHarness,
    readonly seed: number,
    private readonly log: (s: string) => void = () => undefined,
  ) {
    this.rand = prng(seed);
    this.blocks = h.sizeBytes / BLOCK;
  }

  private history(b: number): BlockHistory {
    let m = this.model.get(b);
    if (!m) this.model.set(b, (m = { base: null, writes: [] }));
    return m;
  }

  /**
   * Whether a flush made a write acknowledged at `ackAt` durable: it started after the ack and
   * completed before `at`, and the write was not lost before it started. An acknowledged write
   * is held by both nodes (or by the one serving alone); it is lost only when every node that
   * held it lost power before flushing, so a flush counts unless both nodes were cut in between.
   */
  private flushed(ackAt: number, at: number): boolean {
    return this.flushes.some((f) => {
      if (f.start <= ackAt || f.end >= at) return false;
      const cut = new Set(this.cuts.filter((c) => c.at > ackAt && c.at < f.start).map((c) => c.node));
      return cut.size < 2;
    });
  }

  /**
   * What a read of block b that started at `at` may return: the newest write durable by then
   * (acknowledged with FUA, or made durable by a flush, see `flushed`), or anything written
   * after it.
   */
  private acceptable(b: number, at: number): Buffer[] {
    const m = this.history(b);
    let durable = -1;
    m.writes.forEach((w, i) => {
      if (w.ackAt === null || w.ackAt > at) return;
      if (w.fua || this.flushed(w.ackAt, at)) durable = i;
    });
    const from = durable >= 0 ? [m.writes[durable]!.data] : [m.base ?? ZERO];
    return [...from, ...m.writes.slice(durable + 1).map((w) => w.data)];
  }

  private check(b: number, got: Buffer, at: number, where: string): void {
    const ok = this.acceptable(b, at);
    if (!ok.some((x) => x.equals(got))) {
      // What happened to the block since the last check, in wall-clock ms (read beside the node logs).
      const wall = (t: number | null) =>
        t === null ? "-" : String(Math.round(t - performance.now() + Date.now()));
      const m = this.history(b);
      const writes = m.writes.map(
        (w) =>
          `${describeData(w.data)} via ${w.node}${w.fua ? " FUA" : ""} issued ${w.issuedAt} acked ${wall(w.ackAt)}`,
      );
      const flushes = this.flushes.map((f) => `via ${f.node} ${wall(f.start)}..${wall(f.end)}`);
      assert.fail(
        `block ${b} (${where}) holds ${describeData(got)}; it may hold only ${ok.map(describeData).join(", ")} (seed ${this.seed}); ` +
          `base ${m.base ? describeData(m.base) : "zeros"}; writes: ${writes.join("; ")}; flushes: ${flushes.join(", ")}`,
      );
    }
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)]!;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
  }

  private async worker(stop: () => boolean, report: PowerRoundReport): Promise<void> {
    const h = this.h;
    while (!stop()) {
      if (this.paused) {
        await this.sleep(20);
        continue;
      }
      const node: Node = this.rand() < 0.5 ? "a" : "b";
      const op = this.rand();
      if (op < this.flushRate) {
        const start = performance.now();
        try {
          await h.flush(node);
          this.flushes.push({ start, end: performance.now(), node });
          report.flushes++;
        } catch {
          await this.sleep(20);
        }
        continue;
      }
      // Writes scattered over the whole LUN, so many regions and extents are in play.
      const first = Math.floor(this.rand() * (this.blocks - 16));
      const count = 1 + Math.floor(this.rand() * 8);
      const range = Array.from({ length: count }, (_, i) => first + i);
      if (range.some((b) => this.busy.has(b))) {
        await this.sleep(1);
        continue;
      }
      for (const b of range) this.busy.add(b);
      try {
        if (op < 0.8) {
          const id = this.writeId++;
          const fua = this.rand() < this.fuaRate;
          const issuedAt = Date.now();
          const recs: WriteRecord[] = range.map((b) => ({
            data: blockData(id, b),
            fua,
            ackAt: null,
            node,
            issuedAt,
          }));
          range.forEach((b, i) => this.history(b).writes.push(recs[i]!));
          try {
            await h.write(node, first * BLOCK, Buffer.concat(recs.map((r) => r.data)), { fua });
            const at = performance.now();
            for (const r of recs) r.ackAt = at;
            report.writesAcked++;
            if (fua) report.fuaAcked++;
          } catch {
            report.writesFailed++;
            await this.sleep(20);
          }
        } else {
          const start = performance.now();
          let data: Buffer;
          try {
            data = await h.read(node, first * BLOCK, count * BLOCK);
          } catch {
            await this.sleep(20);
            continue;
          }
          range.forEach((b, i) =>
            this.check(b, data.subarray(i * BLOCK, (i + 1) * BLOCK), start, `read via ${node}`),
          );
          report.readsChecked++;
        }
      } finally {
        for (const b of range) this.busy.delete(b);
      }
    }
  }

  private async act(report: PowerRoundReport): Promise<void> {
    const h = this.h;
    const choices: Array<[string, () => Promise<void>]> = [];
    const up = (["a", "b"] as const).filter((n) => h.isRunning(n));
    for (const n of up) choices.push([`power cut ${n}`, () => this.cut(n)]);
    if (up.length === 2 && this.rand() < 0.2) choices.push(["power cut both", () => this.cutBoth()]);
    for (const n of (["a", "b"] as const).filter((x) => !h.isRunning(x)))
      choices.push([`restart ${n}`, () => h.start(n)]);
    const [name, fn] = this.pick(choices);
    report.actions.push(name);
    this.log(`  ${name} (at ${Date.now()})`);
    await fn();
  }

  /** Any write acknowledged before the cut is over may be lost with it: the cut counts from then. */
  private async cut(n: Node): Promise<void> {
    await this.h.powerCut(n);
    this.cuts.push({ node: n, at: performance.now() });
  }

  private async cutBoth(): Promise<void> {
    await Promise.all([this.cut("a"), this.cut("b")]);
  }

  async round(round: number): Promise<PowerRoundReport> {
    const report: PowerRoundReport = {
      round,
      actions: [],
      writesAcked: 0,
      fuaAcked: 0,
      flushes: 0,
      writesFailed: 0,
      readsChecked: 0,
    };
    // Some rounds never flush and never use FUA: then only the pair's own bookkeeping stands
    // between a power cut and two different copies.
    this.flushRate = this.pick([0, 0.02, 0.1]);
    this.fuaRate = this.pick([0, 0.3]);
    this.log(`  flush rate ${this.flushRate}, FUA rate ${this.fuaRate}`);
    let stop = false;
    const workers = Array.from({ length: 4 }, () => this.worker(() => stop, report));
    try {
      const steps = 1 + Math.floor(this.rand() * 3);
      for (let i = 0; i < steps; i++) {
        await this.sleep(300 + Math.floor(this.rand() * 3000));
        if (this.rand() < 0.5) {
          // A quiet moment: written extents go idle (and may be settled) before the power goes.
          const quiet = 1500 + Math.floor(this.rand() * 2500);
          report.actions.push(`quiet ${quiet} ms`);
          this.paused = true;
          await this.sleep(quiet);
          this.paused = false;
        }
        await this.act(report);
      }
      await this.sleep(300 + Math.floor(this.rand() * 2000));
    } finally {
      stop = true;
      await Promise.all(workers);
    }
    const order: Node[] = this.rand() < 0.5 ? ["a", "b"] : ["b", "a"];
    for (const n of order) {
      if (!this.h.isRunning(n)) {
        report.actions.push(`restart ${n}`);
        await this.h.start(n);
      }
    }
    await this.h.waitInSync(180_000);
    await this.verify();
    return report;
  }

  /** Every written block through both portals, then the LUN files; the model moves on to what is there. */
  async verify(): Promise<void> {
    const h = this.h;
    const at = performance.now();
    for (const b of [...this.model.keys()].sort((x, y) => x - y)) {
      const [ra, rb] = [await h.read("a", b * BLOCK, BLOCK), await h.read("b", b * BLOCK, BLOCK)];
      assert.ok(
        ra.equals(rb),
        `block ${b}: node a returns ${describeData(ra)}, node b ${describeData(rb)} (seed ${this.seed})`,
      );
      this.check(b, ra, at, "after the resync");
    }
    // What is there now is durable on both once flushed: the next round starts from it.
    await Promise.all([h.flush("a"), h.flush("b")]);
    for (const [b, m] of this.model) {
      const data = await h.read("a", b * BLOCK, BLOCK);
      m.base = data.equals(ZERO) ? null : data;
      m.writes = [];
    }
    this.flushes = [];
    this.cuts = [];
    assert.equal(await h.fileHash("a"), await h.fileHash("b"), `LUN files differ (seed ${this.seed})`);
  }
}

/** A node:test suite of seeded power-loss rounds; prints the seed so a failure can be replayed. */
export function describePowerLossRounds(o: { rounds: number; seed: number; sizeBytes?: number }): void {
  const { rounds, seed } = o;
  const h = new PowerLossPairHarness({ sizeBytes: o.sizeBytes ?? 16 * 1024 * 1024 });
  describe(`pair under power loss (seed ${seed}, ${rounds} rounds)`, { timeout: 60 * 60_000 }, () => {
    let runner: PowerLossRunner;
    before(async () => {
      console.log(
        `power-loss seed ${seed} (replay with HASAN_POWER_SEED=${seed} HASAN_POWER_ROUNDS=${rounds})`,
      );
      await h.setup();
      await Promise.all([h.start("a"), h.start("b")]);
      await h.waitInSync();
      runner = new PowerLossRunner(h, seed, (s) => console.log(s));
    });
    after(() => h.cleanup());

    for (let r = 1; r <= rounds; r++) {
      it(
        `round ${r}: flushed and FUA writes survive, both copies end identical`,
        { timeout: 600_000 },
        async () => {
          console.log(`round ${r} (seed ${seed})`);
          const report = await runner.round(r);
          console.log(
            `  ${report.actions.join(", ")}: ${report.writesAcked} writes acknowledged (${report.fuaAcked} FUA), ${report.flushes} flushes, ${report.writesFailed} refused, ${report.readsChecked} reads checked`,
          );
          assert.ok(report.writesAcked > 0, "the pair served writes during the round");
        },
      );
    }
  });
}
