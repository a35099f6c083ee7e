/**
 * Failover never gives a stale answer: while one node writes alone after the link broke, the
 * cut-off node must already have stopped serving reads (self-fencing through read leases).
 * The partition drops node b's traffic to node a only and hides closes, so node a notices the
 * loss first and wins the witness while node b still believes the pair is Working: the
 * moment a node without fencing serves its old copy.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { PairHarness } from "../support/pair-harness.js";

const BLOCK = 4096;

function counterBlock(v: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  for (let i = 0; i < BLOCK; i += 4) b.writeUInt32BE(v, i);
  return b;
}

function counterOf(b: Buffer): number {
  const v = b.readUInt32BE(0);
  for (let i = 0; i < BLOCK; i += 4) assert.equal(b.readUInt32BE(i), v, "a torn counter block");
  return v;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("pair: fencing during failover", { timeout: 300_000 }, () => {
  const h = new PairHarness({ sizeBytes: 4 * 1024 * 1024 });
  before(async () => {
    await h.setup();
    await Promise.all([h.start("a"), h.start("b")]);
    await h.waitInSync();
  });
  after(() => h.cleanup());

  it("a partition where only a notices: b never returns a counter older than one a acknowledged, and stops serving first", async () => {
    const acked: Array<{ v: number; at: number }> = [];
    const reads: Array<{ v: number; start: number }> = [];
    const bServingAt: Array<{ at: number; serving: boolean; state: string }> = [];
    let stop = false;
    let partitionedAt = Infinity;

    const writer = (async () => {
      for (let v = 1; !stop; v++) {
        try {
          await h.write("a", 0, counterBlock(v));
          acked.push({ v, at: performance.now() });
        } catch {
          await sleep(20);
        }
      }
    })();
    const reader = (async () => {
      while (!stop) {
        const start = performance.now();
        try {
          reads.push({ v: counterOf(await h.read("b", 0, BLOCK)), start });
        } catch {
          await sleep(20);
        }
      }
    })();
    const watcher = (async () => {
      while (!stop) {
        const at = performance.now();
        try {
          const s = await h.status("b");
          bServingAt.push({ at, serving: s.serving, state: s.state });
        } catch {
          // b busy or down: nothing to record
        }
        await sleep(25);
      }
    })();

    await sleep(1500);
    partitionedAt = performance.now();
    h.proxy.partition("b-to-a");
    // From the moment a answers that it serves alone, b must not say it serves (writes acknowledged
    // just after the partition may still be mirrored ones whose replies were on their way).
    let aloneSince = Infinity;
    await h.waitFor("a serving alone", async () => {
      const s = await h.status("a");
      if (s.state === "Failed" && s.serving) aloneSince = performance.now();
      return aloneSince < Infinity;
    });
    await sleep(6000);
    stop = true;
    await Promise.all([writer, reader, watcher]);

    const aloneWrites = acked.filter((w) => w.at > partitionedAt);
    assert.ok(aloneWrites.length > 5, `a wrote alone after the partition (${aloneWrites.length} writes)`);
    assert.ok(reads.filter((r) => r.start < partitionedAt).length > 5, "b served reads before the partition");

    // Every read returns at least the newest counter acknowledged before it started.
    let newest = 0;
    let i = 0;
    const sortedReads = [...reads].sort((x, y) => x.start - y.start);
    for (const r of sortedReads) {
      while (i < acked.length && acked[i]!.at < r.start) newest = acked[i++]!.v;
      assert.ok(
        r.v >= newest,
        `b returned ${r.v} at ${(r.start - partitionedAt).toFixed(0)} ms after the partition, after a acknowledged ${newest}`,
      );
    }
    // b reports that it does not serve from the moment a serves alone.
    const late = bServingAt.filter((s) => s.at > aloneSince && s.serving);
    assert.deepEqual(late, [], "b must not report serving while a serves alone");

    h.proxy.restore();
    await h.waitInSync();
    assert.equal(
      counterOf(await h.read("b", 0, BLOCK)),
      acked.at(-1)!.v,
      "b has a's last write after the resync",
    );
    assert.equal(await h.fileHash("a"), await h.fileHash("b"));
  });
});
