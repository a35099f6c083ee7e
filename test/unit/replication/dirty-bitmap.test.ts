import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DirtyBitmap, DirtyRegionStore, regionsOf } from "../../../target/store/dirty-bitmap.js";
import { metadataFiles, type MetadataFiles } from "../../../target/store/metadata-files.js";

describe("DirtyBitmap", () => {
  it("sets, clears, tests and counts bits", () => {
    const b = new DirtyBitmap(20);
    b.set(0);
    b.set(9);
    b.setRange(15, 19);
    assert.equal(b.count(), 7);
    assert.ok(b.test(9) && !b.test(10));
    b.clear(9);
    assert.equal(b.count(), 6);
    assert.ok(b.anyInRange(14, 15) && !b.anyInRange(1, 14));
    assert.throws(() => b.set(20), RangeError);
  });

  it("setAll never sets bits past the last region", () => {
    const b = new DirtyBitmap(13);
    b.setAll();
    assert.equal(b.count(), 13);
    assert.deepEqual([...b.iterate(10)], [10, 11, 12]);
  });

  it("merges and iterates in order", () => {
    const a = new DirtyBitmap(100);
    const b = new DirtyBitmap(100);
    a.set(3);
    a.set(64);
    b.set(5);
    b.set(99);
    a.merge(b);
    assert.deepEqual([...a.iterate()], [3, 5, 64, 99]);
    assert.equal(a.next(6), 64);
    assert.equal(a.next(100), -1);
  });

  it("maps byte ranges to regions", () => {
    assert.deepEqual(regionsOf(0, 4096, 65536), [0, 0]);
    assert.deepEqual(regionsOf(65535, 2, 65536), [0, 1]);
    assert.deepEqual(regionsOf(131072, 65536, 65536), [2, 2]);
  });
});

describe("DirtyRegionStore", () => {
  const withDir = async (fn: (files: MetadataFiles) => Promise<void>) => {
    const dir = await mkdtemp(join(tmpdir(), "hasan-bitmap-"));
    try {
      await fn(metadataFiles(join(dir, "lun.img")));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  it("makes set bits durable before resolving and keeps them across reopen", () =>
    withDir(async (files) => {
      const s = await DirtyRegionStore.open(files, 40_000);
      await s.markDurable(7, 9);
      await s.markDurable(39_999, 39_999);
      // Read the file itself, not the store's memory.
      const onDisk = new DirtyBitmap(40_000, await readFile(files.dirtyBitmap));
      assert.deepEqual([...onDisk.iterate()], [7, 8, 9, 39_999]);
      await s.close();
      const again = await DirtyRegionStore.open(files, 40_000);
      assert.deepEqual([...again.image.iterate()], [7, 8, 9, 39_999]);
      await again.close();
    }));

  it("persists lazily cleared bits on the next flush", () =>
    withDir(async (files) => {
      const s = await DirtyRegionStore.open(files, 512);
      const bits = new DirtyBitmap(512);
      bits.setRange(64, 191);
      await s.markAllDurable(bits);
      for (let r = 64; r < 80; r++) {
        s.clearLazy(r);
        await s.flush();
      }
      await s.close();
      const again = await DirtyRegionStore.open(files, 512);
      assert.equal(again.image.count(), 112);
      assert.ok(!again.image.test(79) && again.image.test(80));
      await again.close();
    }));

  it("a bit set again while its clear is being written is durable once markDurable resolves", () =>
    withDir(async (files) => {
      const s = await DirtyRegionStore.open(files, 64);
      await s.markDurable(5, 5);
      s.clearLazy(5);
      const clearing = s.flush();
      const setAgain = s.markDurable(5, 5);
      await Promise.all([clearing, setAgain]);
      const onDisk = new DirtyBitmap(64, await readFile(files.dirtyBitmap));
      assert.ok(onDisk.test(5));
      await s.close();
    }));

  it("shares one flush among concurrent callers and costs nothing for bits already durable", () =>
    withDir(async (files) => {
      const s = await DirtyRegionStore.open(files, 1024);
      await Promise.all(Array.from({ length: 100 }, (_, i) => s.markDurable(i, i)));
      const onDisk = new DirtyBitmap(1024, await readFile(files.dirtyBitmap));
      assert.equal(onDisk.count(), 100);
      // Already durable: resolves without waiting for any I/O (same tick).
      let resolved = false;
      void s.markDurable(10, 20).then(() => (resolved = true));
      await Promise.resolve();
      assert.ok(resolved);
      await s.close();
    }));
});
