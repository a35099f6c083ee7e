import { test } from "node:test";
import assert from "node:assert/strict";
import { A, B, clearUnitAttentions, makeHarness, prOut, senseOf, u64 } from "./harness.js";

const ILLEGAL = 5;

test("UNMAP parameter list errors: short list, too many descriptors, beyond the end", async () => {
  const h = await makeHarness();
  try {
    await clearUnitAttentions(h, A);
    assert.equal((await h.run(A, [0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0])).status, 0, "empty list is a no-op");
    let r = await h.run(A, [0x42, 0, 0, 0, 0, 0, 0, 0, 4, 0], Buffer.alloc(4));
    assert.deepEqual(senseOf(r), { key: ILLEGAL, asc: 0x1a, ascq: 0 });
    const many = Buffer.alloc(8 + 16 * 257);
    many.writeUInt16BE(many.length - 2, 0);
    many.writeUInt16BE(16 * 257, 2);
    r = await h.run(A, [0x42, 0, 0, 0, 0, 0, 0, many.length >> 8, many.length & 0xff, 0], many);
    assert.deepEqual(senseOf(r), { key: ILLEGAL, asc: 0x26, ascq: 0 });
    const beyond = Buffer.alloc(24);
    beyond.writeUInt16BE(22, 0);
    beyond.writeUInt16BE(16, 2);
    u64(beyond, 8, h.blocks - 1);
    beyond.writeUInt32BE(2, 16);
    r = await h.run(A, [0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], beyond);
    assert.deepEqual(senseOf(r), { key: ILLEGAL, asc: 0x21, ascq: 0 });
    r = await h.run(A, [0x42, 0x01, 0, 0, 0, 0, 0, 0, 24, 0], beyond);
    assert.deepEqual(senseOf(r), { key: ILLEGAL, asc: 0x24, ascq: 0 }, "ANCHOR is not supported");
  } finally {
    await h.close();
  }
});

test("allocation lengths cut parameter data; REPORT LUNS needs at least 16 bytes", async () => {
  const h = await makeHarness();
  try {
    const inq = await h.run(A, [0x12, 0, 0, 0, 36, 0]);
    assert.equal(inq.dataIn!.length, 36);
    assert.equal(inq.dataIn![4], 91, "ADDITIONAL LENGTH still describes the whole data");
    const r = await h.run(A, [0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0]);
    assert.deepEqual(senseOf(r), { key: ILLEGAL, asc: 0x24, ascq: 0 });
    const evpd = await h.run(A, [0x12, 0, 0x80, 0, 255, 0]);
    assert.deepEqual(senseOf(evpd), { key: ILLEGAL, asc: 0x24, ascq: 0 }, "page code without EVPD");
    const page = await h.run(A, [0x12, 1, 0x99, 0, 255, 0]);
    assert.deepEqual(senseOf(page), { key: ILLEGAL, asc: 0x24, ascq: 0 }, "unknown VPD page");
  } finally {
    await h.close();
  }
});

test("MODE SENSE(10) with long LBA descriptors and GET LBA STATUS past the end", async () => {
  const h = await makeHarness();
  try {
    await clearUnitAttentions(h, A);
    const ms = (await h.run(A, [0x5a, 0x10, 0x08, 0, 0, 0, 0, 0, 255, 0])).dataIn!;
    assert.equal(ms.readUInt16BE(0), ms.length - 2);
    assert.equal(ms[4]! & 1, 1, "LONGLBA");
    assert.equal(ms.readUInt16BE(6), 16);
    assert.equal(ms.readUInt32BE(8 + 4), h.blocks);
    assert.equal(ms.readUInt32BE(8 + 12), 512);
    const gls = Buffer.alloc(16);
    gls[0] = 0x9e;
    gls[1] = 0x12;
    u64(gls, 2, h.blocks);
    gls.writeUInt32BE(24, 10);
    assert.deepEqual(senseOf(await h.run(A, gls)), { key: ILLEGAL, asc: 0x21, ascq: 0 });
    const sync = [0x35, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0];
    assert.deepEqual(senseOf(await h.run(A, sync)), { key: ILLEGAL, asc: 0x21, ascq: 0 });
    assert.equal((await h.run(A, [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0])).status, 0);
  } finally {
    await h.close();
  }
});

test("SPC-2 RESERVE conflicts with persistent registrations, and PR commands with an SPC-2 reservation", async () => {
  const h = await makeHarness();
  try {
    await clearUnitAttentions(h, A);
    await clearUnitAttentions(h, B);
    const reg = prOut(0, 0, 0n, 0x1n);
    assert.equal((await h.run(A, reg.cdb, reg.data)).status, 0);
    assert.equal((await h.run(B, [0x16])).status, 0x18);
    const unreg = prOut(0, 0, 0x1n, 0n);
    assert.equal((await h.run(A, unreg.cdb, unreg.data)).status, 0);
    assert.equal((await h.run(B, [0x16])).status, 0);
    assert.equal((await h.run(A, reg.cdb, reg.data)).status, 0x18);
    assert.equal((await h.run(B, reg.cdb, reg.data)).status, 0x18, "even for the holder (SPC-3 5.6.3)");
    assert.equal((await h.run(B, [0x17])).status, 0);
    assert.equal((await h.run(A, reg.cdb, reg.data)).status, 0);
  } finally {
    await h.close();
  }
});

test("transfers longer than MAXIMUM TRANSFER LENGTH and WRITE SAME beyond its maximum are refused", async () => {
  const h = await makeHarness(64 * 1024 * 1024);
  try {
    await clearUnitAttentions(h, A);
    const vpd = (await h.run(A, [0x12, 1, 0xb0, 0, 255, 0])).dataIn!;
    const maxTransfer = vpd.readUInt32BE(8);
    const maxWriteSame = vpd.readUInt32BE(40);
    const read = Buffer.alloc(16);
    read[0] = 0x88;
    read.writeUInt32BE(maxTransfer + 1, 10);
    assert.deepEqual(senseOf(await h.run(A, read)), { key: ILLEGAL, asc: 0x24, ascq: 0 });
    const ws = Buffer.alloc(16);
    ws[0] = 0x93;
    ws.writeUInt32BE(maxWriteSame + 1, 10);
    assert.deepEqual(senseOf(await h.run(A, ws, Buffer.alloc(512))), { key: ILLEGAL, asc: 0x24, ascq: 0 });
    // WRITE SAME with zero blocks means "to the end", which here is more than the maximum.
    ws.writeUInt32BE(0, 10);
    assert.deepEqual(senseOf(await h.run(A, ws, Buffer.alloc(512))), { key: ILLEGAL, asc: 0x24, ascq: 0 });
    u64(ws, 2, h.blocks - 4);
    assert.equal((await h.run(A, ws, Buffer.alloc(512, 1))).status, 0);
    const tail = Buffer.alloc(16);
    tail[0] = 0x88;
    u64(tail, 2, h.blocks - 4);
    tail.writeUInt32BE(4, 10);
    assert.deepEqual((await h.run(A, tail)).dataIn, Buffer.alloc(2048, 1));
  } finally {
    await h.close();
  }
});
