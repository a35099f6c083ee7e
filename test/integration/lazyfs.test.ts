import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import {
  closeSync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { open, rename, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileBlockDevice } from "../../target/store/file-device.js";
import { FileExtentTool } from "../../target/store/file-extent-tool.js";
import { LazyFs, isLazyFsMounted, lazyFsBinary, unmountLazyFsUnder } from "../support/lazyfs.js";
import { ScsiSession } from "../support/scsi-session.js";
import { startTarget } from "../support/target-process.js";

const KiB = 1024;
let root: string;
let serial = 0;

before(async () => {
  await lazyFsBinary(); // the first run builds it (cached across runs)
  root = mkdtempSync(join(tmpdir(), "hasan-lazyfs-"));
});

after(async () => {
  if (!root) return;
  await unmountLazyFsUnder(root);
  rmSync(root, { recursive: true, force: true });
});

/** A fresh backing directory and lazyfs mount for one test; unmounted whatever the test does. */
async function withLazyFs(fn: (fs: LazyFs, backing: string) => Promise<void>): Promise<void> {
  const n = serial++;
  const backing = join(root, `backing-${n}`);
  const fs = await LazyFs.mount(backing, join(root, `mnt-${n}`));
  try {
    await fn(fs, backing);
  } finally {
    await fs.unmount();
  }
}

const block = (byte: number, length = 4 * KiB) => Buffer.alloc(length, byte);

/** The whole file as the mount shows it. */
const contents = (path: string) => readFileSync(path);

test("an unsynced write is lost at a power cut, an fdatasynced one survives, and an unsynced overwrite of a synced block reverts", async () => {
  await withLazyFs(async (fs, backing) => {
    const path = join(fs.mountPoint, "data");
    const f = await open(path, "w+");
    await f.write(block(0xaa), 0, 4 * KiB, 0);
    await f.datasync();
    await f.write(block(0xcc), 0, 4 * KiB, 0); // overwrites the synced block
    await f.write(block(0xbb), 0, 4 * KiB, 4 * KiB); // extends the file
    // Readers see the buffered writes, and the size they extend the file to.
    assert.deepEqual(contents(path), Buffer.concat([block(0xcc), block(0xbb)]));
    assert.equal((await f.stat()).size, 8 * KiB);
    await f.close(); // close(2) persists nothing
    assert.deepEqual(contents(join(backing, "data")), block(0xaa));

    await fs.powerCut();
    assert.equal(isLazyFsMounted(fs.mountPoint), false);
    await fs.remount();
    assert.deepEqual(contents(path), block(0xaa));
  });
});

test("fsync of one file does not persist another file's unsynced writes", async () => {
  await withLazyFs(async (fs) => {
    const a = await open(join(fs.mountPoint, "a"), "w");
    const b = await open(join(fs.mountPoint, "b"), "w");
    await a.write(block(0x11), 0, 4 * KiB, 0);
    await b.write(block(0x22), 0, 4 * KiB, 0);
    await a.sync();
    await a.close();
    await b.close();

    await fs.powerCut();
    await fs.remount();
    assert.deepEqual(contents(join(fs.mountPoint, "a")), block(0x11));
    // The create was persisted at once; its data was not.
    assert.equal(statSync(join(fs.mountPoint, "b")).size, 0);
  });
});

/** Writes `data` to `path` through a temporary file, fsynced only when `fsync`, renamed over `path`. */
async function replaceFile(path: string, data: string, fsync: boolean): Promise<void> {
  const tmp = `${path}.tmp`;
  const f = await open(tmp, "w");
  await f.writeFile(data);
  if (fsync) await f.sync();
  await f.close();
  await rename(tmp, path);
  const dir = await open(join(path, ".."), "r");
  await dir.sync();
  await dir.close();
}

test("an atomic replace (write tmp, fsync, rename, fsync dir) survives a power cut; without the fsync the renamed file is left empty", async () => {
  await withLazyFs(async (fs) => {
    const path = join(fs.mountPoint, "state.json");
    await replaceFile(path, '{"v":1}', true);
    await fs.powerCut();
    await fs.remount();
    assert.equal(readFileSync(path, "utf8"), '{"v":1}');

    // Renames reach the disk at once, so the new name points at a file whose data never did: the
    // old content is gone too, the file reads as zero length.
    await replaceFile(path, '{"v":2}', false);
    assert.equal(readFileSync(path, "utf8"), '{"v":2}');
    await fs.powerCut();
    await fs.remount();
    assert.equal(statSync(path).size, 0);
  });
});

test("a hole punched by FileBlockDevice.unmap is lost at a power cut without fsync and kept with it", async () => {
  await withLazyFs(async (fs, backing) => {
    const path = join(fs.mountPoint, "lun.img");
    const size = 1024 * KiB;
    let dev = await FileBlockDevice.open(path, size);
    await dev.write(0, block(0x5a, 256 * KiB));
    await dev.flush();
    await dev.unmap(64 * KiB, 64 * KiB);
    // Reads and SEEK_DATA see the buffered punch.
    assert.deepEqual(await dev.read(64 * KiB, 64 * KiB), block(0, 64 * KiB));
    assert.equal(await dev.isMapped(64 * KiB, 64 * KiB), false);
    assert.equal(await dev.isMapped(0, 64 * KiB), true);
    await dev.close();

    await fs.powerCut();
    await fs.remount();
    dev = await FileBlockDevice.open(path, size);
    assert.deepEqual(await dev.read(0, 256 * KiB), block(0x5a, 256 * KiB));
    assert.equal(await dev.isMapped(64 * KiB, 64 * KiB), true);

    await dev.unmap(64 * KiB, 64 * KiB);
    await dev.flush();
    await dev.close();
    await fs.powerCut();
    await fs.remount();
    dev = await FileBlockDevice.open(path, size);
    try {
      assert.deepEqual(
        await dev.read(0, 256 * KiB),
        Buffer.concat([block(0x5a, 64 * KiB), block(0, 64 * KiB), block(0x5a, 128 * KiB)]),
      );
      assert.equal(await dev.isMapped(64 * KiB, 64 * KiB), false);
    } finally {
      await dev.close();
    }
    // The backing file itself has the hole.
    assert.deepEqual(
      readFileSync(join(backing, "lun.img")).subarray(64 * KiB, 128 * KiB),
      block(0, 64 * KiB),
    );
  });
});

test("a target on lazyfs: after a power cut, writes without SYNCHRONIZE CACHE read back as before them, writes followed by SYNCHRONIZE CACHE or written with FUA as written", async () => {
  await withLazyFs(async (fs) => {
    const target = await startTarget({
      dir: mkdtempSync(join(root, "target-")),
      dataDir: fs.mountPoint,
      size: "16Mi",
    });
    const session = new ScsiSession({
      port: () => target.port,
      iqn: target.iqn,
      initiator: "iqn.2026-11.dev.hasan:lazyfs-test",
    });
    // Each region is a page and a run that starts and ends inside pages (at most 64 KiB: immediate data).
    const region = (mib: number) => [
      { offset: mib * 1024 * KiB, length: 4 * KiB },
      { offset: (mib + 1) * 1024 * KiB + 512, length: 64 * KiB },
    ];
    const unsynced = region(0);
    const synced = region(4);
    const fua = region(8);
    const write = async (extents: typeof unsynced, byte: number, o: { fua?: boolean } = {}) => {
      for (const e of extents) await session.write(e.offset, block(byte, e.length), o);
    };
    const expect = async (extents: typeof unsynced, byte: number, what: string) => {
      for (const e of extents) {
        assert.deepEqual(
          await session.read(e.offset, e.length),
          block(byte, e.length),
          `${what} at ${e.offset}`,
        );
      }
    };
    try {
      // A sync only ever persists more, so the unsynced writes come last: nothing syncs after them.
      await write(unsynced, 0x01);
      await write(synced, 0x02);
      await session.synchronizeCache();
      await write(fua, 0x03, { fua: true });
      await write(unsynced, 0x04);
      await expect(unsynced, 0x04, "unsynced writes before the power cut");

      session.close();
      await target.stop("SIGKILL");
      await fs.powerCut();
      await fs.remount();
      await target.restart();

      await expect(unsynced, 0x01, "unsynced writes after the power cut");
      await expect(synced, 0x02, "writes followed by SYNCHRONIZE CACHE");
      await expect(fua, 0x03, "FUA writes");
    } finally {
      session.close();
      await target.stop();
    }
  });
});

test("a clean unmount drops unsynced writes, unless mounted with syncOnExit", async () => {
  const backing = join(root, "backing-clean");
  const mnt = join(root, "mnt-clean");
  let fs = await LazyFs.mount(backing, mnt);
  await writeFile(join(mnt, "f"), "lost");
  await fs.unmount();
  assert.equal(statSync(join(backing, "f")).size, 0);

  fs = await LazyFs.mount(backing, mnt, { syncOnExit: true });
  await writeFile(join(mnt, "f"), "kept");
  await fs.unmount();
  assert.equal(readFileSync(join(backing, "f"), "utf8"), "kept");
});

/** A small deterministic PRNG (mulberry32), so a failing seed replays. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

test("random writes, hole punches, truncates and syncs read back as a model says, before and after power cuts", async () => {
  const seed = Number(process.env.HASAN_LAZYFS_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rnd = prng(seed);
  await withLazyFs(async (fs, backing) => {
    const path = join(fs.mountPoint, "f");
    // The file as a reader sees it, and as the last fsync left it (truncates reach the disk at once).
    let cur: Buffer = Buffer.alloc(0);
    let durable: Buffer = Buffer.alloc(0);
    const resize = (b: Buffer, n: number): Buffer =>
      n <= b.length ? b.subarray(0, n) : Buffer.concat([b, Buffer.alloc(n - b.length)]);
    const offset = () => rnd(12 * 4 * KiB) + [0, 0, 1, 511, 4095][rnd(5)]!;
    // About one step in sixteen is a power cut.
    const ops = [
      ...Array<string>(5).fill("write"),
      ...["punch", "punch", "truncate", "sync", "sync", "read", "read", "read", "seek", "seek", "cut"],
    ];
    let fd = openSync(path, "w+");
    let tool = await FileExtentTool.start(path);
    assert.ok(tool, "perl runs the extent tool");
    for (let i = 0; i < 300; i++) {
      const at = `seed ${seed}, step ${i}`;
      const op = ops[rnd(ops.length)];
      if (op === "write") {
        const off = offset();
        const data = Buffer.alloc(1 + rnd(3 * 4 * KiB), 1 + rnd(255));
        writeSync(fd, data, 0, data.length, off);
        cur = resize(cur, Math.max(cur.length, off + data.length));
        data.copy(cur, off);
      } else if (op === "punch") {
        const off = offset();
        const end = off + 1 + rnd(4 * 4 * KiB);
        await tool.punch(off, end - off);
        if (off < cur.length) cur.fill(0, off, Math.min(end, cur.length));
      } else if (op === "truncate") {
        const n = offset();
        ftruncateSync(fd, n);
        cur = resize(cur, n);
        durable = resize(durable, n);
      } else if (op === "sync") {
        if (rnd(2)) fsyncSync(fd);
        else fdatasyncSync(fd);
        durable = Buffer.from(cur);
      } else if (op === "read") {
        const off = offset();
        const buf = Buffer.alloc(1 + rnd(5 * 4 * KiB));
        const n = readSync(fd, buf, 0, buf.length, off);
        assert.deepEqual(buf.subarray(0, n), cur.subarray(off, off + buf.length), at);
        assert.equal(fstatSync(fd).size, cur.length, at);
      } else if (op === "seek") {
        const off = offset();
        if (off >= cur.length) continue;
        // Data may hold zeros, but what lies before the next data must be zeros.
        const data = (await tool.nextData(off)) ?? cur.length;
        assert.ok(data >= off && data <= cur.length && !cur.subarray(off, data).some((b) => b !== 0), at);
        const hole = (await tool.nextHole(off)) ?? cur.length;
        assert.ok(hole >= off && hole <= cur.length, at);
      } else {
        tool.close();
        closeSync(fd);
        await fs.powerCut();
        await fs.remount();
        cur = Buffer.from(durable);
        assert.deepEqual(readFileSync(path), durable, `${at}: after the power cut`);
        fd = openSync(path, "r+");
        tool = await FileExtentTool.start(path);
        assert.ok(tool);
      }
    }
    tool.close();
    closeSync(fd);
    await fs.powerCut();
    assert.deepEqual(readFileSync(join(backing, "f")), durable, `seed ${seed}: the backing file at the end`);
    await fs.remount();
  });
});
