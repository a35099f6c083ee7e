import { test } from "node:test";
import assert from "node:assert/strict";
import { A, B, clearUnitAttentions, makeHarness, senseOf } from "./harness.js";

const MiB = 1024 * 1024;
const RC16 = [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0];

test("a grown device: CAPACITY DATA HAS CHANGED on every nexus, then READ CAPACITY (10 and 16) and the LBA range follow the new size", async () => {
  const h = await makeHarness(8 * MiB, 512);
  try {
    await clearUnitAttentions(h, A);
    await clearUnitAttentions(h, B);
    const lastOld = 8 * 2048 - 1;
    // Past the old end: refused before the growth.
    const before = await h.run(A, [0x28, 0, 0, 0, 0x40, 0, 0, 0, 1, 0]); // READ(10) at LBA 16384
    assert.equal(senseOf(before).asc, 0x21, "LBA out of range");

    await h.device.grow(24 * MiB);
    h.target.capacityChanged();

    for (const n of [A, B]) {
      const ua = await h.run(n, [0x00]);
      assert.equal(ua.status, 0x02);
      assert.deepEqual(senseOf(ua), { key: 0x06, asc: 0x2a, ascq: 0x09 });
      assert.equal((await h.run(n, [0x00])).status, 0, "reported once");
    }
    const rc10 = (await h.run(A, [0x25])).dataIn!;
    assert.equal(rc10.readUInt32BE(0), 24 * 2048 - 1);
    const rc16 = (await h.run(B, RC16)).dataIn!;
    assert.equal(Number(rc16.readBigUInt64BE(0)), 24 * 2048 - 1);
    assert.ok(24 * 2048 - 1 > lastOld);
    const after = await h.run(A, [0x28, 0, 0, 0, 0x40, 0, 0, 0, 1, 0]);
    assert.equal(after.status, 0, "the new space reads");
    assert.deepEqual(after.dataIn, Buffer.alloc(512), "and reads as zeros");
  } finally {
    await h.close();
  }
});

test("a device never shrinks", async () => {
  const h = await makeHarness(8 * MiB, 512);
  try {
    await assert.rejects(h.device.grow(4 * MiB), /cannot become 4194304/);
    assert.equal(h.device.sizeBytes, 8 * MiB);
  } finally {
    await h.close();
  }
});
