import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileBlockDevice } from "../../../target/store/file-device.js";

const MiB = 1024 * 1024;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "hasan-filedev-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function pattern(len: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

test("creates a sparse file of the requested size that reads as zeros", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "lun");
    const dev = await FileBlockDevice.open(path, 64 * MiB);
    try {
      const st = await stat(path);
      assert.equal(st.size, 64 * MiB);
      assert.ok(st.blocks * 512 < MiB, "file is sparse");
      assert.deepEqual(await dev.read(10 * MiB, 4096), Buffer.alloc(4096));
    } finally {
      await dev.close();
    }
  });
});

for (const io of ["adaptive", "pool"] as const) {
  test(`${io} I/O: concurrent reads and writes of many sizes land where they should`, async () => {
    await withDir(async (dir) => {
      const dev = await FileBlockDevice.open(join(dir, "lun"), 8 * MiB, undefined, { io });
      try {
        const sizes = [512, 4096, 65536, 65536 + 512, MiB];
        await Promise.all(sizes.map((len, i) => dev.write(i * 2 * MiB, pattern(len, i))));
        const back = await Promise.all(sizes.map((len, i) => dev.read(i * 2 * MiB, len)));
        back.forEach((b, i) => assert.deepEqual(b, pattern(sizes[i]!, i)));
      } finally {
        await dev.close();
      }
    });
  });
}

test("writes read back, also after reopening, and the file grows but never shrinks", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "lun");
    const data = pattern(8192, 7);
    let dev = await FileBlockDevice.open(path, 4 * MiB);
    await dev.write(MiB + 512, data, { fua: true });
    assert.deepEqual(await dev.read(MiB + 512, 8192), data);
    await dev.close();

    dev = await FileBlockDevice.open(path, 8 * MiB);
    assert.equal(dev.sizeBytes, 8 * MiB);
    assert.equal((await stat(path)).size, 8 * MiB);
    assert.deepEqual(await dev.read(MiB + 512, 8192), data);
    await dev.close();

    await assert.rejects(FileBlockDevice.open(path, 4 * MiB), /shrinking a LUN would lose data/);
  });
});

test("unmap deallocates the range and it reads back as zeros, neighbours intact", async () => {
  await withDir(async (dir) => {
    const dev = await FileBlockDevice.open(join(dir, "lun"), 8 * MiB);
    try {
      const data = pattern(3 * MiB, 3);
      await dev.write(MiB, data);
      await dev.flush();
      assert.equal(await dev.isMapped(2 * MiB, 4096), true);
      await dev.unmap(2 * MiB, MiB);
      assert.deepEqual(await dev.read(2 * MiB, MiB), Buffer.alloc(MiB));
      assert.deepEqual(await dev.read(MiB, MiB), data.subarray(0, MiB));
      assert.deepEqual(await dev.read(3 * MiB, MiB), data.subarray(2 * MiB));
      if ((await dev.allocationAt(0)) === undefined) {
        // No extent map on this file system: the device must then report everything as mapped.
        assert.equal(await dev.isMapped(2 * MiB, MiB), true);
        return;
      }
      assert.equal(await dev.isMapped(2 * MiB, MiB), false);
      assert.equal(await dev.isMapped(6 * MiB, MiB), false);
      assert.equal(await dev.isMapped(3 * MiB, 4096), true);
    } finally {
      await dev.close();
    }
  });
});

test("compareAndWrite writes on match and reports the first mismatching byte otherwise", async () => {
  await withDir(async (dir) => {
    const dev = await FileBlockDevice.open(join(dir, "lun"), MiB);
    try {
      const a = pattern(1024, 1);
      const b = pattern(1024, 2);
      await dev.write(4096, a);
      assert.equal(await dev.compareAndWrite(4096, a, b), -1);
      assert.deepEqual(await dev.read(4096, 1024), b);
      const wrong = Buffer.from(b);
      wrong[700] = wrong[700]! ^ 0xff;
      assert.equal(await dev.compareAndWrite(4096, wrong, a), 700);
      assert.deepEqual(await dev.read(4096, 1024), b, "mismatch leaves the data alone");
    } finally {
      await dev.close();
    }
  });
});

test("compareAndWrite is atomic against concurrent overlapping writes", async () => {
  await withDir(async (dir) => {
    const dev = await FileBlockDevice.open(join(dir, "lun"), MiB);
    try {
      const zero = Buffer.alloc(4096);
      const one = Buffer.alloc(4096, 1);
      // Many swaps 0->1 racing with writes resetting to 0: every CAW that succeeded saw zeros.
      let successes = 0;
      const ops: Promise<unknown>[] = [];
      for (let i = 0; i < 50; i++) {
        ops.push(dev.compareAndWrite(0, zero, one).then((r) => (successes += r === -1 ? 1 : 0)));
        ops.push(dev.write(0, zero));
      }
      await Promise.all(ops);
      assert.ok(successes >= 1);
      const final = await dev.read(0, 4096);
      assert.ok(final.equals(zero) || final.equals(one), "no torn block");
    } finally {
      await dev.close();
    }
  });
});

test("overlapping writes land in arrival order, inline or not", async () => {
  await withDir(async (dir) => {
    const dev = await FileBlockDevice.open(join(dir, "lun"), 4 * MiB);
    try {
      // Small writes racing with a pooled one over the same range still end in arrival order.
      const small: Promise<void>[] = [dev.write(0, Buffer.alloc(2 * MiB, 0xee))];
      for (let i = 1; i <= 10; i++) small.push(dev.write(4096, Buffer.alloc(4096, i)));
      await Promise.all(small);
      assert.deepEqual(await dev.read(4096, 4096), Buffer.alloc(4096, 10));
      const writes: Promise<void>[] = [];
      for (let i = 1; i <= 20; i++) writes.push(dev.write(0, Buffer.alloc(MiB, i)));
      await Promise.all(writes);
      assert.deepEqual(await dev.read(0, MiB), Buffer.alloc(MiB, 20));
    } finally {
      await dev.close();
    }
  });
});

test("refuses a non-positive size and reports files it cannot open", async () => {
  await withDir(async (dir) => {
    await assert.rejects(FileBlockDevice.open(join(dir, "lun"), 0), /invalid LUN size/);
    await writeFile(join(dir, "f"), "x");
    await assert.rejects(FileBlockDevice.open(join(dir, "f", "lun"), MiB), /ENOTDIR/);
  });
});

test("allocation runs: data, holes and the end of the device", async () => {
  await withDir(async (dir) => {
    const dev = await FileBlockDevice.open(join(dir, "lun"), 8 * MiB);
    try {
      await dev.write(2 * MiB, pattern(MiB, 5));
      await dev.flush();
      const first = await dev.allocationAt(0);
      if (first === undefined) return; // no SEEK_DATA here: GET LBA STATUS falls back to isMapped
      assert.deepEqual(first, { mapped: false, length: 2 * MiB });
      assert.deepEqual(await dev.allocationAt(2 * MiB + 512), { mapped: true, length: MiB - 512 });
      assert.deepEqual(await dev.allocationAt(3 * MiB), { mapped: false, length: 5 * MiB });
      assert.equal(await dev.allocationAt(8 * MiB), undefined, "nothing past the end");
    } finally {
      await dev.close();
    }
  });
});
