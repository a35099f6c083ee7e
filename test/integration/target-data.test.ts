import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTarget } from "../support/target-process.js";
import { qemuImgRead, qemuImgWrite, qemuIo, qemuIoOk } from "../support/qemu.js";

/** Pattern writes at offsets that cross 4 KiB, 64 KiB and 1 MiB boundaries, with odd 512-byte sizes. */
const patterns = [
  { p: 0x11, offset: 16 << 20, length: 512 },
  { p: 0x22, offset: (16 << 20) + 3584, length: 8192 },
  { p: 0x33, offset: (20 << 20) - 1024, length: 3 << 20 },
  { p: 0x44, offset: 40 << 20, length: 1 << 20 },
  { p: 0x55, offset: (64 << 20) - 512, length: 512 },
];

async function verifyPatterns(url: string) {
  await qemuIoOk(
    url,
    patterns.map(({ p, offset, length }) => `read -P 0x${p.toString(16)} ${offset} ${length}`),
  );
}

test("data written through one session reads back byte-exact through another, and after restarts", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hasan-data-"));
  const target = await startTarget({ dir, size: "64Mi" });
  try {
    const random = randomBytes(8 << 20);
    const randomFile = join(dir, "random.img");
    writeFileSync(randomFile, random);
    await qemuImgWrite(randomFile, target.url());
    await qemuIoOk(
      target.url(),
      patterns.map(({ p, offset, length }) => `write -P 0x${p.toString(16)} ${offset} ${length}`),
    );

    const check = async (when: string) => {
      const back = join(dir, `back-${when}.img`);
      await qemuImgRead(target.url(), back, random.length);
      assert.ok(readFileSync(back).subarray(0, random.length).equals(random), `random data intact ${when}`);
      await verifyPatterns(target.url());
      // A region never written reads as zeros.
      await qemuIoOk(target.url(), ["read -P 0 12M 1M"]);
    };
    await check("through a second session");

    await target.restart();
    await check("after a graceful restart");

    await target.stop("SIGKILL");
    await target.restart();
    await check("after kill -9 and restart");

    // The LUN file itself holds the data at the same offsets (what a resync or a backup would read).
    const fh = await open(target.dataFile, "r");
    const head = Buffer.alloc(random.length);
    await fh.read(head, 0, head.length, 0);
    const tail = Buffer.alloc(512);
    await fh.read(tail, 0, 512, (64 << 20) - 512);
    await fh.close();
    assert.ok(head.equals(random));
    assert.ok(tail.equals(Buffer.alloc(512, 0x55)));
  } finally {
    await target.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a pattern mismatch is detected (the verification itself can fail)", async () => {
  const target = await startTarget({ size: "16Mi" });
  try {
    await qemuIoOk(target.url(), ["write -P 0x5a 0 64k"]);
    const r = await qemuIo(target.url(), ["read -P 0x5b 0 64k"]);
    assert.equal(r.ok, false);
    assert.match(r.stdout, /Pattern verification failed/);
  } finally {
    await target.stop();
  }
});
