import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileExtentTool } from "../../../target/store/file-extent-tool.js";

const MiB = 1 << 20;

test("punched ranges read as zeros, free their blocks, and leave the rest and the size alone", async () => {
  const file = join(mkdtempSync(join(tmpdir(), "hasan-extents-")), "lun.img");
  writeFileSync(file, Buffer.alloc(4 * MiB, 0xab));
  const before = statSync(file).blocks;
  const tool = await FileExtentTool.start(file);
  assert.ok(tool, "the co-process starts on this machine");
  try {
    // Many small requests in flight at once are answered in order.
    await Promise.all(Array.from({ length: 256 }, (_, i) => tool.punch(MiB + i * 4096, 4096)));
    const data = readFileSync(file);
    assert.equal(data.length, 4 * MiB);
    assert.ok(data.subarray(MiB, 2 * MiB).equals(Buffer.alloc(MiB)));
    assert.ok(data.subarray(0, MiB).equals(Buffer.alloc(MiB, 0xab)));
    assert.ok(data.subarray(2 * MiB).equals(Buffer.alloc(2 * MiB, 0xab)));
    assert.ok(statSync(file).blocks <= before - 2048 + 16, "about 1 MiB of blocks freed");
    await assert.rejects(tool.punch(-4096, 4096), /errno 22/, "an invalid range is refused by the kernel");
  } finally {
    tool.close();
  }
  await assert.rejects(tool.punch(0, 4096), /exited|EPIPE|write after end/);
});

test("SEEK_DATA and SEEK_HOLE find data and holes in a sparse file", async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), "hasan-extents-")), "lun.img");
  writeFileSync(file, Buffer.alloc(8 * MiB));
  const tool = await FileExtentTool.start(file);
  assert.ok(tool);
  t.after(() => tool.close());
  await tool.punch(0, 8 * MiB);
  assert.equal(await tool.nextData(0), null, "an all-hole file has no data");
  // Data at [2 MiB, 3 MiB).
  const { openSync, writeSync, closeSync } = await import("node:fs");
  const fd = openSync(file, "r+");
  writeSync(fd, Buffer.alloc(MiB, 1), 0, MiB, 2 * MiB);
  closeSync(fd);
  assert.equal(await tool.nextData(0), 2 * MiB);
  assert.equal(await tool.nextHole(2 * MiB), 3 * MiB);
  assert.equal(await tool.nextData(3 * MiB), null);
  assert.equal(await tool.nextHole(5 * MiB), 5 * MiB);
});

test("a file that cannot be opened yields no tool (callers fall back)", async () => {
  assert.equal(await FileExtentTool.start("/nonexistent/dir/lun.img"), undefined);
});
