import { test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import {
  A,
  B,
  clearUnitAttentions,
  makeHarness,
  nexus,
  prIn,
  prOut,
  read10,
  read16,
  senseOf,
  u64,
  write10,
  write16,
} from "./harness.js";
import { createScsiTarget } from "../../../target/scsi/logical-unit.js";
import { LocalUnitStateStore } from "../../../target/scsi/unit-state.js";
import { DeviceUnavailableError, type BlockDevice } from "../../../target/store/block-device.js";
import type { AluaState } from "../../../target/scsi/port-groups.js";

function pattern(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

test("power-on unit attention: reported once, not consumed by INQUIRY or REPORT LUNS", async () => {
  const h = await makeHarness();
  try {
    const inq = await h.run(A, [0x12, 0, 0, 0, 96, 0]);
    assert.equal(inq.status, 0);
    const luns = await h.run(A, [0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0]);
    assert.equal(luns.status, 0);
    const tur = await h.run(A, [0x00]);
    assert.equal(tur.status, 2);
    assert.deepEqual(senseOf(tur), { key: 6, asc: 0x29, ascq: 0x00 });
    assert.equal((await h.run(A, [0x00])).status, 0, "reported once");
    // REQUEST SENSE returns a pending unit attention as its data.
    const rs = await h.run(B, [0x03, 0, 0, 0, 252, 0]);
    assert.equal(rs.status, 0);
    assert.equal(rs.dataIn![2]! & 0x0f, 6);
    assert.equal(rs.dataIn![12], 0x29);
    assert.equal((await h.run(B, [0x00])).status, 0);
  } finally {
    await h.close();
  }
});

test("TEST UNIT READY follows the ALUA state of the port group it came through (path checkers rely on it)", async () => {
  let states: Record<number, AluaState> = { 1: "active/optimized", 2: "active/non-optimized" };
  const groups = () => [1, 2].map((id) => ({ id, state: states[id]!, relativePorts: [id] }));
  const h = await makeHarness(16 * 1024 * 1024, 512, groups);
  const viaA = nexus("iqn.2026-11.dev.hasan:tur", "400000000001", 1);
  const viaB = nexus("iqn.2026-11.dev.hasan:tur", "400000000001", 2);
  try {
    await clearUnitAttentions(h, viaA);
    await clearUnitAttentions(h, viaB);
    assert.equal((await h.run(viaA, [0x00])).status, 0, "active/optimized: ready");
    assert.equal((await h.run(viaB, [0x00])).status, 0, "active/non-optimized: ready");
    for (const [state, ascq] of [
      ["transitioning", 0x0a],
      ["standby", 0x0b],
      ["unavailable", 0x0c],
    ] as const) {
      states = { 1: "active/optimized", 2: state };
      const r = await h.run(viaB, [0x00]);
      assert.equal(r.status, 2, state);
      assert.deepEqual(
        senseOf(r),
        { key: 2, asc: 0x04, ascq },
        `${state}: NOT READY, LOGICAL UNIT NOT ACCESSIBLE`,
      );
      assert.equal((await h.run(viaA, [0x00])).status, 0, "the other port group is unaffected");
    }
  } finally {
    await h.close();
  }
});

test("writes read back through every READ/WRITE size; transfer length 0 does nothing", async () => {
  const h = await makeHarness();
  try {
    await clearUnitAttentions(h, A);
    const data = pattern(8 * 512, 3);
    let r = await h.run(A, write10(100, 8), data);
    assert.equal(r.status, 0);
    assert.equal(r.dataOutLength, 4096);
    r = await h.run(A, read16(100, 8));
    assert.deepEqual(r.dataIn, data);
    r = await h.run(A, write16(200, 2, 0x08 /* FUA */), data.subarray(0, 1024));
    assert.equal(r.status, 0);
    const twelve = Buffer.alloc(12);
    twelve[0] = 0xa8;
    twelve.writeUInt32BE(200, 2);
    twelve.writeUInt32BE(2, 6);
    assert.deepEqual((await h.run(A, twelve)).dataIn, data.subarray(0, 1024));
    // READ(6) with length 0 transfers 256 blocks.
    const six = await h.run(A, [0x08, 0, 0, 100, 0, 0]);
    assert.equal(six.dataIn!.length, 256 * 512);
    assert.deepEqual(six.dataIn!.subarray(0, 4096), data);
    const zero = await h.run(A, read10(100, 0));
    assert.equal(zero.status, 0);
    assert.equal(zero.dataIn, undefined);
  } finally {
    await h.close();
  }
});

test("out-of-range LBAs, unknown opcodes and bad fields get the right sense", async () => {
  const h = await makeHarness();
  try {
    await clearUnitAttentions(h, A);
    let r = await h.run(A, read10(h.blocks - 1, 2));
    assert.equal(r.status, 2);
    assert.deepEqual(senseOf(r), { key: 5, asc: 0x21, ascq: 0 });
    r = await h.run(A, write16(h.blocks, 1), Buffer.alloc(512));
    assert.deepEqual(senseOf(r), { key: 5, asc: 0x21, ascq: 0 });
    r = await h.run(A, [0xc5]);
    assert.deepEqual(senseOf(r), { key: 5, asc: 0x20, ascq: 0 });
    assert.equal(r.sense![15], 0xc0, "field pointer into the CDB");
    r = await h.run(A, [0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0]); // RDPROTECT without protection information
    assert.deepEqual(senseOf(r), { key: 5, asc: 0x24, ascq: 0 });
    r = await h.run(A, [0x9e, 0x1f]); // SERVICE ACTION IN(16) with an unknown service action
    assert.deepEqual(senseOf(r), { key: 5, asc: 0x24, ascq: 0 });
    r = await h.run(A, prIn(0x07));
    assert.deepEqual(senseOf(r), { key: 5, asc: 0x24, ascq: 0 });
  } finally {
    await h.close();
  }
});

test("an overflowing write stores the blocks that arrived and reports what the CDB asked for", async () => {
  const h = await makeHarness();
  try {
    await clearUnitAttentions(h, A);
    const r = await h.run(A, write10(0, 2), Buffer.alloc(512, 0x62));
    assert.equal(r.status, 0);
    assert.equal(r.dataOutLength, 1024);
    const back = (await h.run(A, read10(0, 2))).dataIn!;
    assert.deepEqual(back.subarray(0, 512), Buffer.alloc(512, 0x62));
    assert.deepEqual(back.subarray(512), Buffer.alloc(512));
  } finally {
    await h.close();
  }
});

test("COMPARE AND WRITE writes on a match and reports the miscompare offset otherwise", async () => {
  const h = await makeHarness();
  try {
    await clearUnitAttentions(h, A);
    const old = pattern(1024, 1);
    const next = pattern(1024, 2);
    await h.run(A, write10(10, 2), old);
    const caw = Buffer.alloc(16);
    caw[0] = 0x89;
    u64(caw, 2, 10);
    caw[13] = 2;
    let r = await h.run(A, caw, Buffer.concat([old, next]));
    assert.equal(r.status, 0);
    assert.deepEqual((await h.run(A, read10(10, 2))).dataIn, next);
    r = await h.run(A, caw, Buffer.concat([old, next]));
    assert.equal(r.status, 2);
    const s = senseOf(r);
    assert.equal(s.key, 0xe);
    assert.equal(s.asc, 0x1d);
    assert.equal(s.information, 0, "first byte differs");
    const nearly = Buffer.from(next);
    nearly[700] = nearly[700]! ^ 1;
    r = await h.run(A, caw, Buffer.concat([nearly, old]));
    assert.equal(senseOf(r).information, 700);
    assert.deepEqual((await h.run(A, read10(10, 2))).dataIn, next, "nothing written on miscompare");
    r = await h.run(A, caw, Buffer.concat([next, old]).subarray(0, 1536));
    assert.deepEqual(senseOf(r), { key: 5, asc: 0x24, ascq: 0 }, "Data-Out must hold both halves");
  } finally {
    await h.close();
  }
});

test("UNMAP and WRITE SAME: unmapped blocks read zeros and report deallocated; WRITE SAME fills", async () => {
  const h = await makeHarness();
  try {
    await clearUnitAttentions(h, A);
    await h.run(A, write10(0, 64), pattern(64 * 512, 9));
    const list = Buffer.alloc(24);
    list.writeUInt16BE(22, 0);
    list.writeUInt16BE(16, 2);
    u64(list, 8, 16);
    list.writeUInt32BE(32, 16);
    let r = await h.run(A, [0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], list);
    assert.equal(r.status, 0);
    const back = (await h.run(A, read10(0, 64))).dataIn!;
    assert.deepEqual(back.subarray(16 * 512, 48 * 512), Buffer.alloc(32 * 512));
    assert.deepEqual(back.subarray(0, 16 * 512), pattern(64 * 512, 9).subarray(0, 16 * 512));

    const gls = Buffer.alloc(16);
    gls[0] = 0x9e;
    gls[1] = 0x12;
    u64(gls, 2, 16);
    gls.writeUInt32BE(24, 10);
    r = await h.run(A, gls);
    assert.equal(r.status, 0);
    assert.equal(r.dataIn!.readUInt32BE(12), 16, "descriptor starts at the requested LBA");
    assert.equal(r.dataIn![20], 1, "deallocated");
    assert.equal(r.dataIn!.readUInt32BE(16), 32);

    // WRITE SAME(16) of a pattern block, then with UNMAP.
    const ws = Buffer.alloc(16);
    ws[0] = 0x93;
    u64(ws, 2, 100);
    ws.writeUInt32BE(10, 10);
    const block = Buffer.alloc(512, 0x5a);
    r = await h.run(A, ws, block);
    assert.equal(r.status, 0);
    assert.equal(r.dataOutLength, 512);
    assert.deepEqual((await h.run(A, read10(100, 10))).dataIn, Buffer.alloc(5120, 0x5a));
    ws[1] = 0x08; // UNMAP
    r = await h.run(A, ws, block);
    assert.equal(r.status, 0);
    assert.deepEqual((await h.run(A, read10(100, 10))).dataIn, Buffer.alloc(5120));
    ws[1] = 0x01; // NDOB: zeros without a Data-Out block
    u64(ws, 2, 0);
    r = await h.run(A, ws);
    assert.equal(r.status, 0);
    assert.equal(r.dataOutLength, 0);
    assert.deepEqual((await h.run(A, read10(0, 10))).dataIn, Buffer.alloc(5120));
    r = await h.run(A, [0x41, 0, 0, 0, 0, 0, 0, 0, 1, 0], Buffer.alloc(100));
    assert.deepEqual(senseOf(r), { key: 5, asc: 0x24, ascq: 0 }, "WRITE SAME needs exactly one block");
  } finally {
    await h.close();
  }
});

test("VERIFY with BYTCHK compares the Data-Out with the medium", async () => {
  const h = await makeHarness();
  try {
    await clearUnitAttentions(h, A);
    const data = pattern(1024, 4);
    await h.run(A, write10(5, 2), data);
    const v = [0x2f, 0x02, 0, 0, 0, 5, 0, 0, 2, 0];
    assert.equal((await h.run(A, v, data)).status, 0);
    const wrong = Buffer.from(data);
    wrong[600] = wrong[600]! ^ 1;
    const r = await h.run(A, v, wrong);
    assert.equal(senseOf(r).key, 0xe);
    assert.equal(senseOf(r).information, 600);
    assert.equal(
      (await h.run(A, [0x2f, 0, 0, 0, 0, 5, 0, 0, 2, 0])).status,
      0,
      "BYTCHK 0 checks only the range",
    );
  } finally {
    await h.close();
  }
});

test("LUNs other than 0: INQUIRY says peripheral qualifier 3, other commands LOGICAL UNIT NOT SUPPORTED", async () => {
  const h = await makeHarness();
  try {
    const inq = await h.run(A, [0x12, 0, 0, 0, 96, 0], undefined, 1);
    assert.equal(inq.status, 0);
    assert.equal(inq.dataIn![0], 0x7f);
    const tur = await h.run(A, [0x00], undefined, 3);
    assert.deepEqual(senseOf(tur), { key: 5, asc: 0x25, ascq: 0 });
    const luns = await h.run(A, [0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], undefined, 5);
    assert.equal(luns.dataIn!.readUInt32BE(0), 8, "one LUN listed");
    assert.deepEqual(h.target.luns(A), [0]);
  } finally {
    await h.close();
  }
});

test("VPD 0x83: the same serial gives the same NAA on both nodes; port designators follow the nexus", async () => {
  const h1 = await makeHarness();
  const h2 = await makeHarness();
  try {
    const onPort2 = nexus("iqn.2026-11.dev.hasan:init1", "400000000001", 2);
    const a = (await h1.run(A, [0x12, 1, 0x83, 0, 255, 0])).dataIn!;
    const b = (await h2.run(onPort2, [0x12, 1, 0x83, 0, 255, 0])).dataIn!;
    assert.equal(a[1], 0x83);
    assert.equal(a[4 + 1]! & 0x0f, 3, "first designator is NAA");
    assert.equal(a[8]! >> 4, 6, "NAA 6h");
    assert.deepEqual(a.subarray(4, 24), b.subarray(4, 24), "same logical unit identity");
    const designators = (page: Buffer): Map<number, Buffer> => {
      const m = new Map<number, Buffer>();
      for (let at = 4; at < page.length; at += 4 + page[at + 3]!) {
        m.set(page[at + 1]! & 0x0f, page.subarray(at + 4, at + 4 + page[at + 3]!));
      }
      return m;
    };
    assert.equal(designators(a).get(4)!.readUInt16BE(2), 1, "relative target port 1");
    assert.equal(designators(b).get(4)!.readUInt16BE(2), 2, "relative target port 2");
    assert.equal(designators(b).get(5)!.readUInt16BE(2), 2, "target port group 2");
    const serial = (await h1.run(A, [0x12, 1, 0x80, 0, 255, 0])).dataIn!;
    assert.equal(serial.subarray(4).toString(), "serial-0001");
    const lbp = (await h1.run(A, [0x12, 1, 0xb2, 0, 255, 0])).dataIn!;
    assert.equal(lbp[5], 0xe4, "LBPU, LBPWS, LBPWS10, LBPRZ");
  } finally {
    await h1.close();
    await h2.close();
  }
});

test("READ CAPACITY reports size, block size and thin provisioning", async () => {
  const h = await makeHarness(8 * 1024 * 1024, 4096);
  try {
    await clearUnitAttentions(h, A);
    const rc10 = (await h.run(A, [0x25])).dataIn!;
    assert.equal(rc10.readUInt32BE(0), 2047);
    assert.equal(rc10.readUInt32BE(4), 4096);
    const rc16 = (await h.run(A, [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0])).dataIn!;
    assert.equal(rc16.readUInt32BE(4), 2047);
    assert.equal(rc16[14]! & 0xc0, 0xc0, "LBPME and LBPRZ");
  } finally {
    await h.close();
  }
});

test("REPORT SUPPORTED OPERATION CODES matches what the unit dispatches", async () => {
  const h = await makeHarness();
  try {
    await clearUnitAttentions(h, A);
    const all = (await h.run(A, [0xa3, 0x0c, 0x80, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0])).dataIn!;
    const listed = new Set<string>();
    for (let at = 4; at < 4 + all.readUInt32BE(0); at += 20) {
      const opcode = all[at]!;
      const servactv = (all[at + 5]! & 1) !== 0;
      const sa = all.readUInt16BE(at + 2);
      const cdbLength = all.readUInt16BE(at + 6);
      assert.equal(all[at + 5]! & 2, 2, "CTDP with RCTD");
      listed.add(servactv ? `${opcode}/${sa}` : `${opcode}`);
      const one = Buffer.from([
        0xa3,
        0x0c,
        0x80 | (servactv ? 2 : 1),
        opcode,
        sa >> 8,
        sa & 0xff,
        0,
        0,
        1,
        0,
        0,
        0,
      ]);
      const r = (await h.run(A, one)).dataIn!;
      assert.equal(r[1]! & 0x07, 3, `opcode ${opcode.toString(16)} supported`);
      assert.equal(r.readUInt16BE(2), cdbLength);
      assert.equal(r[4], opcode, "usage data starts with the opcode");
      assert.equal(r.readUInt16BE(4 + cdbLength), 0x0a, "timeouts descriptor follows");
    }
    for (const must of ["40", "42", "137", "158/16", "163/12", "158/18", "95/7"])
      assert.ok(listed.has(must), must);
    // Every opcode not listed is refused as invalid by dispatch.
    for (let op = 0; op < 256; op++) {
      if ([...listed].some((k) => k.split("/")[0] === String(op))) continue;
      const r = await h.run(A, [op]);
      assert.deepEqual(senseOf(r), { key: 5, asc: 0x20, ascq: 0 }, `opcode ${op.toString(16)}`);
    }
    const missing = (await h.run(A, [0xa3, 0x0c, 1, 0xc5, 0, 0, 0, 0, 1, 0, 0, 0])).dataIn!;
    assert.equal(missing[1]! & 7, 1, "not supported");
  } finally {
    await h.close();
  }
});

test("MODE SENSE pages and MODE SELECT of WCE, which tells other nexuses", async () => {
  const h = await makeHarness();
  try {
    await clearUnitAttentions(h, A);
    await clearUnitAttentions(h, B);
    const all = (await h.run(A, [0x1a, 0, 0x3f, 0, 255, 0])).dataIn!;
    assert.equal(all[0], all.length - 1);
    assert.equal(all[2]! & 0x80, 0, "WP = 0");
    assert.equal(all[3], 8, "one block descriptor");
    const pages = new Set<number>();
    for (let at = 4 + 8; at < all.length; at += all[at + 1]! + 2) pages.add(all[at]! & 0x3f);
    assert.deepEqual([...pages], [0x08, 0x0a, 0x1c]);
    const caching = (await h.run(A, [0x1a, 0x08, 0x08, 0, 255, 0])).dataIn!;
    assert.equal(caching[3], 0, "DBD: no block descriptor");
    assert.equal(caching[4], 0x88, "caching page, PS: the unit saves it");
    assert.equal(caching[6]! & 0x04, 0x04, "WCE");
    const changeable = (await h.run(A, [0x1a, 0x08, 0x48, 0, 255, 0])).dataIn!;
    assert.equal(changeable[6], 0x04, "only WCE is changeable");

    const select = Buffer.concat([Buffer.alloc(4), caching.subarray(4)]);
    select[4 + 2] = 0; // WCE off
    let r = await h.run(A, [0x15, 0x10, 0, 0, select.length, 0], select);
    assert.equal(r.status, 0);
    assert.equal((await h.run(A, [0x1a, 0x08, 0x08, 0, 255, 0])).dataIn![6]! & 0x04, 0);
    r = await h.run(B, [0x00]);
    assert.deepEqual(senseOf(r), { key: 6, asc: 0x2a, ascq: 0x01 }, "MODE PARAMETERS CHANGED");
    select[4 + 3] = 0xff; // a field that is not changeable
    r = await h.run(A, [0x15, 0x10, 0, 0, select.length, 0], select);
    assert.deepEqual(senseOf(r), { key: 5, asc: 0x26, ascq: 0 });
    r = await h.run(A, [0x1a, 0, 0x05, 0, 255, 0]);
    assert.deepEqual(senseOf(r), { key: 5, asc: 0x24, ascq: 0 }, "unknown page");
  } finally {
    await h.close();
  }
});

test("persistent reservations through the unit: conflicts on the I/O path and unit attentions", async () => {
  const h = await makeHarness();
  try {
    await clearUnitAttentions(h, A);
    await clearUnitAttentions(h, B);
    let o = prOut(0, 0, 0n, 0xbn);
    assert.equal((await h.run(B, o.cdb, o.data)).status, 0);
    o = prOut(1, 1, 0xbn, 0n); // RESERVE, Write Exclusive
    assert.equal((await h.run(B, o.cdb, o.data)).status, 0);
    assert.equal((await h.run(A, write10(0, 1), Buffer.alloc(512))).status, 0x18);
    assert.equal((await h.run(A, read10(0, 1))).status, 0, "reads are allowed under Write Exclusive");
    assert.equal((await h.run(B, write10(0, 1), Buffer.alloc(512))).status, 0, "the holder writes");
    assert.equal((await h.run(A, [0x12, 0, 0, 0, 96, 0])).status, 0);
    assert.equal((await h.run(A, [0x00])).status, 0);

    const keys = (await h.run(A, prIn(0))).dataIn!;
    assert.equal(keys.readUInt32BE(4), 8);
    assert.equal(keys.readBigUInt64BE(8), 0xbn);
    const res = (await h.run(A, prIn(1))).dataIn!;
    assert.equal(res.readUInt32BE(4), 16);
    assert.equal(res[21], 1);
    const caps = (await h.run(A, prIn(2))).dataIn!;
    assert.equal(caps.readUInt16BE(0), 8);
    const full = (await h.run(A, prIn(3))).dataIn!;
    assert.equal(full[8 + 12]! & 1, 1, "R_HOLDER");
    assert.match(full.subarray(8 + 28).toString(), /^iqn\.2026-11\.dev\.hasan:init2,i,0x400000000001/);

    // A registers and preempts B: B hears REGISTRATIONS PREEMPTED.
    o = prOut(0, 0, 0n, 0xan);
    await h.run(A, o.cdb, o.data);
    o = prOut(4, 3, 0xan, 0xbn); // PREEMPT to Exclusive Access
    assert.equal((await h.run(A, o.cdb, o.data)).status, 0);
    const r = await h.run(B, read10(0, 1));
    assert.deepEqual(senseOf(r), { key: 6, asc: 0x2a, ascq: 0x05 });
    assert.equal((await h.run(B, read10(0, 1))).status, 0x18, "reads conflict under Exclusive Access");
    o = prOut(0, 0, 0n, 0xbn);
    assert.equal((await h.run(B, o.cdb, o.data)).status, 0, "REGISTER is always allowed");
  } finally {
    await h.close();
  }
});

test("SPC-2 reservations: conflict for others, released by nexus loss, LUN reset and the holder", async () => {
  const h = await makeHarness();
  try {
    await clearUnitAttentions(h, A);
    await clearUnitAttentions(h, B);
    assert.equal((await h.run(A, [0x16])).status, 0);
    assert.equal((await h.run(B, read10(0, 1))).status, 0x18);
    assert.equal((await h.run(B, [0x12, 0, 0, 0, 96, 0])).status, 0, "INQUIRY is allowed");
    assert.equal((await h.run(B, [0x17])).status, 0, "RELEASE by another nexus is a no-op");
    assert.equal((await h.run(B, read10(0, 1))).status, 0x18);
    h.target.nexusLost(A);
    await h.run(B, [0x00]); // lets the nexus loss settle in the store's queue
    assert.equal((await h.run(B, read10(0, 1))).status, 0);
    h.target.nexusCreated(A);
    assert.deepEqual(senseOf(await h.run(A, [0x00])), { key: 6, asc: 0x29, ascq: 0x07 }, "I_T NEXUS LOSS");

    assert.equal((await h.run(A, [0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0])).status, 0, "RESERVE(10)");
    await h.target.lunReset(B, 0);
    assert.deepEqual(senseOf(await h.run(A, [0x00])), { key: 6, asc: 0x29, ascq: 0x03 });
    assert.deepEqual(
      senseOf(await h.run(B, [0x00])),
      { key: 6, asc: 0x29, ascq: 0x03 },
      "the resetting one too",
    );
    assert.equal((await h.run(B, read10(0, 1))).status, 0, "reset released the reservation");
  } finally {
    await h.close();
  }
});

test("PREVENT ALLOW MEDIUM REMOVAL blocks an eject until allowed or reset", async () => {
  const h = await makeHarness();
  try {
    await clearUnitAttentions(h, A);
    await clearUnitAttentions(h, B);
    assert.equal((await h.run(A, [0x1e, 0, 0, 0, 1, 0])).status, 0);
    const eject = [0x1b, 0, 0, 0, 0x02, 0];
    assert.deepEqual(senseOf(await h.run(B, eject)), { key: 5, asc: 0x53, ascq: 0x02 });
    await h.target.lunReset(B, 0);
    await clearUnitAttentions(h, B);
    assert.equal((await h.run(B, eject)).status, 0);
    await clearUnitAttentions(h, A);
    assert.deepEqual(senseOf(await h.run(A, [0x1b, 0, 0, 0, 0x40, 0])), { key: 5, asc: 0x24, ascq: 0 });
  } finally {
    await h.close();
  }
});

test("REPORT TARGET PORT GROUPS lists both groups of a pair with their ALUA states", async () => {
  const h = await makeHarness(16 * 1024 * 1024, 512, () => [
    { id: 1, state: "active/optimized", preferred: true, relativePorts: [1] },
    { id: 2, state: "active/non-optimized", relativePorts: [2] },
  ]);
  try {
    await clearUnitAttentions(h, A);
    const r = (await h.run(A, [0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0])).dataIn!;
    assert.equal(r.readUInt32BE(0), 24);
    assert.equal(r[4], 0x80, "preferred, active/optimized");
    assert.equal(r.readUInt16BE(6), 1);
    assert.equal(r.readUInt16BE(14), 1, "relative port 1");
    assert.equal(r[16], 0x01, "active/non-optimized");
    assert.equal(r.readUInt16BE(18), 2);
    assert.equal(r.readUInt16BE(26), 2, "relative port 2");
    await h.target.asymmetricAccessStateChanged();
    assert.deepEqual(senseOf(await h.run(A, [0x00])), { key: 6, asc: 0x2a, ascq: 0x06 });
  } finally {
    await h.close();
  }
});

test("a device that cannot serve maps to NOT READY with the reason", async () => {
  for (const [kind, ascq] of [
    ["transitioning", 0x0a],
    ["standby", 0x0b],
    ["unavailable", 0x0c],
  ] as const) {
    const device: BlockDevice = {
      sizeBytes: 1024 * 1024,
      read: () => Promise.reject(new DeviceUnavailableError("no", kind)),
      write: () => Promise.reject(new DeviceUnavailableError("no", kind)),
      flush: () => Promise.resolve(),
      unmap: () => Promise.resolve(),
      compareAndWrite: () => Promise.resolve(-1),
      isMapped: () => Promise.resolve(true),
      close: () => Promise.resolve(),
    };
    const t = createScsiTarget({
      device,
      serial: "x",
      unitState: LocalUnitStateStore.inMemory(),
      portGroups: () => [],
      logger: pino({ level: "silent" }),
    });
    const run = (cdb: Buffer) =>
      t.execute({
        nexus: A,
        lun: 0,
        cdb,
        dataOut: Buffer.alloc(0),
        expectedTransferLength: 512,
        read: true,
        write: false,
        taskAttribute: "simple",
      });
    await run(Buffer.alloc(16)); // power-on unit attention
    const c = Buffer.alloc(16);
    read10(0, 1).copy(c);
    const r = await run(c);
    assert.deepEqual(senseOf(r), { key: 2, asc: 0x04, ascq });
  }
});

test("two units over one unit state (a pair's nodes): MODE SELECT WCE=0 through one makes both write through (FUA) and tells every other nexus once", async () => {
  const store = LocalUnitStateStore.inMemory();
  const writes: Array<{ node: string; fua: boolean }> = [];
  let flushes = 0;
  const unit = (node: string) => {
    const device: BlockDevice = {
      sizeBytes: 1024 * 1024,
      read: (_o, length) => Promise.resolve(Buffer.alloc(length)),
      write: (_o, _d, options) => {
        writes.push({ node, fua: !!options?.fua });
        return Promise.resolve();
      },
      flush: () => {
        flushes++;
        return Promise.resolve();
      },
      unmap: () => Promise.resolve(),
      compareAndWrite: () => Promise.resolve(-1),
      isMapped: () => Promise.resolve(true),
      close: () => Promise.resolve(),
    };
    return createScsiTarget({
      device,
      serial: "pair-serial",
      unitState: store,
      portGroups: () => [],
      logger: pino({ level: "silent" }),
    });
  };
  const [ua, ub] = [unit("a"), unit("b")];
  const onA = nexus("iqn.2026-11.dev.hasan:on-a", "400000000001", 1);
  const otherOnA = nexus("iqn.2026-11.dev.hasan:other-on-a", "400000000001", 1);
  const onB = nexus("iqn.2026-11.dev.hasan:on-b", "400000000001", 2);
  const run = (t: typeof ua, n: typeof onA, cdb: number[] | Buffer, dataOut = Buffer.alloc(0)) => {
    const c = Buffer.alloc(16);
    Buffer.from(cdb).copy(c);
    return t.execute({
      nexus: n,
      lun: 0,
      cdb: c,
      dataOut,
      expectedTransferLength: dataOut.length,
      read: dataOut.length === 0,
      write: dataOut.length > 0,
      taskAttribute: "simple",
    });
  };
  const clear = async (t: typeof ua, n: typeof onA) => {
    for (let i = 0; i < 20 && (await run(t, n, [0x00])).status !== 0; i++);
  };
  const wce = async (t: typeof ua, n: typeof onA) =>
    ((await run(t, n, [0x1a, 0x08, 0x08, 0, 255, 0])).dataIn![6]! & 0x04) !== 0;
  const select = (enabled: boolean) => {
    const p = Buffer.alloc(4 + 20);
    p[4] = 0x08;
    p[5] = 18;
    p[6] = enabled ? 0x04 : 0;
    return p;
  };
  await clear(ua, onA);
  await clear(ua, otherOnA);
  await clear(ub, onB);

  const tur = async (t: typeof ua, n: typeof onA) => {
    const r = await run(t, n, [0x00]);
    return r.status === 0 ? "GOOD" : `${senseOf(r).key}/${senseOf(r).asc.toString(16)}/${senseOf(r).ascq}`;
  };

  await run(ub, onB, write10(0, 1), Buffer.alloc(512));
  assert.deepEqual(writes.pop(), { node: "b", fua: false }, "WCE=1: b's write may be cached");
  const r = await run(ua, onA, [0x15, 0x10, 0, 0, 24, 0], select(false));
  assert.equal(r.status, 0);
  assert.equal(flushes, 1, "the device is flushed before MODE SELECT WCE=0 completes");
  assert.equal(await tur(ub, onB), "6/2a/1", "b's nexus hears MODE PARAMETERS CHANGED");
  assert.equal(await tur(ub, onB), "GOOD", "once");
  assert.equal(await tur(ua, otherOnA), "6/2a/1", "so does another nexus on a");
  assert.equal(await tur(ua, onA), "GOOD", "not the nexus that changed it");
  assert.equal(await wce(ub, onB), false, "MODE SENSE through b shows WCE=0");
  await run(ub, onB, write10(0, 1), Buffer.alloc(512));
  assert.deepEqual(writes.pop(), { node: "b", fua: true }, "WCE=0 set through a: b's writes are FUA");
  await run(ua, otherOnA, write10(0, 1), Buffer.alloc(512));
  assert.deepEqual(writes.pop(), { node: "a", fua: true });

  assert.equal((await run(ub, onB, [0x15, 0x10, 0, 0, 24, 0], select(true))).status, 0);
  assert.equal(flushes, 1, "turning the cache on needs no flush");
  assert.equal(await tur(ua, onA), "6/2a/1");
  assert.equal(await tur(ub, onB), "GOOD");
  assert.equal(await wce(ua, onA), true, "set back to 1 through b: a shows 1");
  await run(ua, onA, write10(0, 1), Buffer.alloc(512));
  assert.deepEqual(writes.pop(), { node: "a", fua: false });
});
