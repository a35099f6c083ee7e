import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HolePuncher } from "../../../target/store/hole-puncher.js";

test("punched ranges read as zeros, free their blocks, and leave the rest and the size alone", async () => {
  const file = join(mkdtempSync(join(tmpdir(), "hasan-punch-")), "lun.img");
  writeFileSync(file, Buffer.alloc(4 << 20, 0xab));
  const before = statSync(file).blocks;
  const puncher = await HolePuncher.start(file);
  assert.ok(puncher, "the co-process starts on this machine");
  try {
    // Many small requests in flight at once are answered in order.
    await Promise.all(Array.from({ length: 256 }, (_, i) => puncher.punch((1 << 20) + i * 4096, 4096)));
    const data = readFileSync(file);
    assert.equal(data.length, 4 << 20);
    assert.ok(data.subarray(1 << 20, 2 << 20).equals(Buffer.alloc(1 << 20)));
    assert.ok(data.subarray(0, 1 << 20).equals(Buffer.alloc(1 << 20, 0xab)));
    assert.ok(data.subarray(2 << 20).equals(Buffer.alloc(2 << 20, 0xab)));
    assert.ok(statSync(file).blocks <= before - 2048 + 16, "about 1 MiB of blocks freed");
    await assert.rejects(puncher.punch(-4096, 4096), /errno 22/, "an invalid range is refused by the kernel");
    await puncher.punch(0, 512);
  } finally {
    puncher.close();
  }
  await assert.rejects(puncher.punch(0, 4096), /exited|EPIPE|write after end/);
});

test("a file that cannot be opened yields no puncher (callers fall back to writing zeros)", async () => {
  assert.equal(await HolePuncher.start("/nonexistent/dir/lun.img"), undefined);
});
