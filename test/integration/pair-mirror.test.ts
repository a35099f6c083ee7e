import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { PairHarness } from "../support/pair-harness.js";

describe("pair: Working mirrors synchronously", { timeout: 300_000 }, () => {
  const h = new PairHarness({ sizeBytes: 8 * 1024 * 1024, regionSize: 64 * 1024 });
  before(async () => {
    await h.setup();
    await Promise.all([h.start("a"), h.start("b")]);
    await h.waitInSync();
  });
  after(() => h.cleanup());

  it("a write through either node is readable through both", async () => {
    const x = randomBytes(8192);
    const y = randomBytes(4096);
    await h.write("a", 4096, x);
    await h.write("b", 1024 * 1024 + 512, y);
    assert.deepEqual(await h.read("b", 4096, 8192), x);
    assert.deepEqual(await h.read("a", 4096, 8192), x);
    assert.deepEqual(await h.read("a", 1024 * 1024 + 512, 4096), y);
    const sa = await h.status("a");
    assert.equal(sa.state, "Working");
    assert.ok(sa.stats.mirroredWrites >= 2, "the sequencer mirrored both writes");
  });

  it("overlapping writes arriving at both nodes at once never diverge", async () => {
    const slot = 64 * 1024;
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 120; i++) {
      for (const n of ["a", "b"] as const) {
        // Overlapping, unaligned ranges across 4 slots.
        const offset = (i % 4) * slot + (n === "a" ? 0 : 16384);
        writes.push(h.write(n, offset, randomBytes(slot)));
      }
    }
    await Promise.all(writes);
    await Promise.all([h.flush("a"), h.flush("b")]);
    const [ra, rb] = [await h.read("a", 0, 6 * slot), await h.read("b", 0, 6 * slot)];
    assert.ok(ra.equals(rb), "both nodes read the same bytes");
    assert.equal(await h.fileHash("a"), await h.fileHash("b"), "the LUN files are byte-identical");
  });

  it("COMPARE AND WRITE is atomic across the pair", async () => {
    const off = 3 * 1024 * 1024;
    const base = Buffer.alloc(512, 1);
    await h.write("a", off, base);
    // Both nodes race to swap the same block from `base`: exactly one wins.
    const results = await Promise.all(
      (["a", "b", "a", "b"] as const).map((n, i) =>
        h.compareAndWrite(n, off, base, Buffer.alloc(512, 10 + i)),
      ),
    );
    assert.equal(
      results.filter((r) => r === -1).length,
      1,
      `exactly one swap succeeds: ${results.join(",")}`,
    );
    const winner = results.indexOf(-1);
    assert.deepEqual(await h.read("b", off, 512), Buffer.alloc(512, 10 + winner));
    assert.deepEqual(await h.read("a", off, 512), Buffer.alloc(512, 10 + winner));
  });
});
