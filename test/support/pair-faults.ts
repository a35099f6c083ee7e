/**
 * Randomized fault rounds against a real pair: a write/read load through both nodes while a
 * seeded schedule kills nodes (kill -9), stops them, cuts or blackholes the link and restarts
 * everything in random orders. After each round the pair must heal by itself, every
 * acknowledged write must read back through both nodes, and the two LUN files must be
 * byte-identical.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { PairHarness, Node } from "./pair-harness.js";

/** What the fault rounds need of a pair under test (node processes over HTTP, or the real target over iSCSI). */
export type FaultHarness = Pick<
  PairHarness,
  | "fileHash"
  | "flush"
  | "isRunning"
  | "kill"
  | "proxy"
  | "read"
  | "sizeBytes"
  | "start"
  | "status"
  | "stop"
  | "waitInSync"
  | "write"
>;

const BLOCK = 4096;

/** mulberry32: small, seedable, good enough for schedules. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface BlockModel {
  /** last acknowledged content (null: never written, zeros) */
  acked: Buffer | null;
  /** contents of writes that failed or were cut off after it: any of them may be there */
  maybe: Buffer[];
}

/** A 4 KiB block that names the write and the block it was written to. */
export function blockData(writeId: number, block: number): Buffer {
  const b = Buffer.allocUnsafe(BLOCK);
  for (let i = 0; i < BLOCK; i += 8) {
    b.writeUInt32BE(writeId, i);
    b.writeUInt32BE(block, i + 4);
  }
  return b;
}

const ZERO = Buffer.alloc(BLOCK);

export interface RoundReport {
  round: number;
  actions: string[];
  writesAcked: number;
  writesFailed: number;
  readsChecked: number;
}

export class FaultRunner {
  readonly rand: () => number;
  private readonly model: BlockModel[];
  private readonly busy = new Set<number>();
  private writeId = 1;
  readonly blocks: number;

  constructor(
    readonly h: FaultHarness,
    readonly seed: number,
    private readonly log: (s: string) => void = () => undefined,
  ) {
    this.rand = prng(seed);
    this.blocks = h.sizeBytes / BLOCK;
    this.model = Array.from({ length: this.blocks }, () => ({ acked: null, maybe: [] }));
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)]!;
  }

  private async sleep(ms: number): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
  }

  /** One worker: writes and verified reads through random nodes until `stop()` is true. */
  private async worker(stop: () => boolean, report: RoundReport): Promise<void> {
    while (!stop()) {
      const node: Node = this.rand() < 0.5 ? "a" : "b";
      // Hot spots and scattered writes: half the writes in the first 64 blocks.
      const first =
        this.rand() < 0.5 ? Math.floor(this.rand() * 64) : Math.floor(this.rand() * (this.blocks - 16));
      const count = 1 + Math.floor(this.rand() * 8);
      const range = Array.from({ length: count }, (_, i) => first + i);
      if (range.some((b) => this.busy.has(b))) {
        await this.sleep(1);
        continue;
      }
      for (const b of range) this.busy.add(b);
      try {
        if (this.rand() < 0.75) {
          const id = this.writeId++;
          const parts = range.map((b) => blockData(id, b));
          try {
            await this.h.write(node, first * BLOCK, Buffer.concat(parts));
            range.forEach((b, i) => (this.model[b] = { acked: parts[i]!, maybe: [] }));
            report.writesAcked++;
          } catch {
            range.forEach((b, i) => this.model[b]!.maybe.push(parts[i]!));
            report.writesFailed++;
            await this.sleep(20);
          }
        } else {
          let data: Buffer;
          try {
            data = await this.h.read(node, first * BLOCK, count * BLOCK);
          } catch {
            await this.sleep(20);
            continue;
          }
          range.forEach((b, i) =>
            this.checkBlock(b, data.subarray(i * BLOCK, (i + 1) * BLOCK), `read via ${node}`),
          );
          report.readsChecked++;
        }
      } finally {
        for (const b of range) this.busy.delete(b);
      }
    }
  }

  private checkBlock(b: number, got: Buffer, where: string): void {
    const m = this.model[b]!;
    const ok = [m.acked ?? ZERO, ...m.maybe].some((x) => x.equals(got));
    if (!ok) {
      const desc = (x: Buffer) => (x.equals(ZERO) ? "zeros" : `write ${x.readUInt32BE(0)}`);
      assert.fail(
        `block ${b} (${where}) holds ${desc(got)}; acknowledged ${m.acked ? desc(m.acked) : "nothing"}${m.maybe.length ? `, maybe ${m.maybe.map(desc).join(", ")}` : ""} (seed ${this.seed})`,
      );
    }
  }

  private async act(report: RoundReport): Promise<void> {
    const h = this.h;
    const choices: Array<[string, () => Promise<void>]> = [];
    for (const n of ["a", "b"] as const) {
      if (h.isRunning(n)) {
        choices.push([`kill -9 ${n}`, () => h.kill(n)]);
        choices.push([`stop ${n}`, () => h.stop(n)]);
      } else choices.push([`start ${n}`, () => h.start(n)]);
    }
    if (h.proxy.mode === "pass") {
      choices.push(["cut link", async () => h.proxy.cut()]);
      choices.push(["blackhole link", async () => h.proxy.blackhole()]);
    } else choices.push(["restore link", async () => h.proxy.restore()]);
    const [name, fn] = this.pick(choices);
    report.actions.push(name);
    this.log(`  ${name}`);
    await fn();
  }

  async round(round: number): Promise<RoundReport> {
    const report: RoundReport = { round, actions: [], writesAcked: 0, writesFailed: 0, readsChecked: 0 };
    let stop = false;
    const workers = Array.from({ length: 4 }, () => this.worker(() => stop, report));
    try {
      const steps = 2 + Math.floor(this.rand() * 4);
      for (let i = 0; i < steps; i++) {
        await this.sleep(200 + Math.floor(this.rand() * 2500));
        await this.act(report);
      }
      await this.sleep(300 + Math.floor(this.rand() * 1500));
    } finally {
      stop = true;
      await Promise.all(workers);
    }
    await this.heal();
    await this.verify();
    return report;
  }

  /** Restores the link and starts both nodes in a random order; waits for Working and in sync. */
  async heal(): Promise<void> {
    const h = this.h;
    h.proxy.restore();
    const order: Node[] = this.rand() < 0.5 ? ["a", "b"] : ["b", "a"];
    for (const n of order) {
      await h.start(n);
      if (this.rand() < 0.5) await this.sleep(Math.floor(this.rand() * 3000));
    }
    if (this.rand() < 0.5) await this.interruptResync();
    await h.waitInSync(120_000);
  }

  /** Kills the sender or the receiver (or cuts the link) in the middle of a resync, then heals. */
  private async interruptResync(): Promise<void> {
    const h = this.h;
    const victim = this.pick(["a", "b", "link"] as const);
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      const statuses = await Promise.all([h.status("a"), h.status("b")]).catch(() => []);
      if (
        statuses.some((s) => s.resync && s.resync.doneBytes > 0 && s.resync.doneBytes < s.resync.totalBytes)
      ) {
        this.log(`  interrupt resync: ${victim === "link" ? "cut link" : `kill -9 ${victim}`}`);
        if (victim === "link") {
          h.proxy.cut();
          await this.sleep(500 + Math.floor(this.rand() * 3000));
          h.proxy.restore();
        } else {
          await h.kill(victim);
          await this.sleep(Math.floor(this.rand() * 2000));
          await h.start(victim);
        }
        return;
      }
      await this.sleep(50);
    }
  }

  /** Every block through both nodes matches the model; the LUN files are byte-identical. */
  async verify(): Promise<void> {
    const h = this.h;
    const chunk = 1024 * 1024;
    for (let off = 0; off < h.sizeBytes; off += chunk) {
      const [a, b] = [await h.read("a", off, chunk), await h.read("b", off, chunk)];
      assert.ok(a.equals(b), `nodes return different data at ${off} (seed ${this.seed})`);
      for (let i = 0; i < chunk / BLOCK; i++) {
        const blk = off / BLOCK + i;
        const got = a.subarray(i * BLOCK, (i + 1) * BLOCK);
        this.checkBlock(blk, got, "after healing");
        // What is there now is what any later read must return.
        this.model[blk] = { acked: got.equals(ZERO) ? null : Buffer.from(got), maybe: [] };
      }
    }
    await Promise.all([h.flush("a"), h.flush("b")]);
    assert.equal(await h.fileHash("a"), await h.fileHash("b"), `LUN files differ (seed ${this.seed})`);
  }
}

/**
 * A node:test suite of seeded fault rounds against a pair: brings both nodes up in sync, runs
 * `rounds` rounds, and prints the seed so a failure can be replayed with HASAN_FAULT_SEED.
 */
export function describeFaultRounds(o: {
  title: string;
  harness: FaultHarness & { setup(): Promise<void>; cleanup(): Promise<void> };
  rounds: number;
  seed: number;
  roundTitle: string;
}): void {
  const { harness: h, rounds, seed } = o;
  describe(`${o.title} (seed ${seed}, ${rounds} rounds)`, { timeout: 60 * 60_000 }, () => {
    let runner: FaultRunner;
    before(async () => {
      console.log(`fault seed ${seed} (replay with HASAN_FAULT_SEED=${seed} HASAN_FAULT_ROUNDS=${rounds})`);
      await h.setup();
      await Promise.all([h.start("a"), h.start("b")]);
      await h.waitInSync();
      runner = new FaultRunner(h, seed, (s) => console.log(s));
    });
    after(() => h.cleanup());

    for (let r = 1; r <= rounds; r++) {
      it(`round ${r}: ${o.roundTitle}`, { timeout: 300_000 }, async () => {
        console.log(`round ${r} (seed ${seed})`);
        const report = await runner.round(r);
        console.log(
          `  ${report.writesAcked} writes acknowledged, ${report.writesFailed} refused, ${report.readsChecked} reads checked`,
        );
        assert.ok(report.writesAcked > 0, "the pair served writes during the round");
      });
    }
  });
}
