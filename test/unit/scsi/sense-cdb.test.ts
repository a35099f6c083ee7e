import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeRange, readLba64 } from "../../../target/scsi/cdb.js";
import { buildSense, invalidFieldInCdb, miscompare, parseSense } from "../../../target/scsi/sense.js";

test("fixed sense carries key, ASC/ASCQ, the information field and a field pointer", () => {
  const s = buildSense(0x5, 0x24, 0x00, { field: { inCdb: true, byte: 2, bit: 5 } });
  assert.equal(s.length, 18);
  assert.equal(s[0], 0x70, "current error, fixed format, INFORMATION not valid");
  assert.equal(s[2], 0x05);
  assert.equal(s[7], 10, "additional sense length");
  assert.equal(s[12], 0x24);
  assert.equal(s[13], 0x00);
  assert.equal(s[15], 0x80 | 0x40 | 0x08 | 5, "SKSV, C/D = CDB, BPV, bit 5");
  assert.equal(s.readUInt16BE(16), 2);

  const m = miscompare(1234).sense();
  assert.equal(m[0], 0xf0, "VALID set with an INFORMATION field");
  assert.deepEqual(parseSense(m), { key: 0xe, asc: 0x1d, ascq: 0x00, information: 1234 });

  const p = invalidFieldInCdb(7).sense();
  assert.equal(p[15], 0xc0, "no bit pointer when none is given");
  assert.equal(p.readUInt16BE(16), 7);
});

test("READ/WRITE CDBs of every size decode to LBA and block count", () => {
  const six = Buffer.from([0x08, 0x1f, 0xff, 0xfe, 0x00, 0x00]);
  assert.deepEqual(decodeRange(six), { lba: 0x1ffffe, blocks: 256 }, "length 0 in a 6-byte CDB means 256");
  const ten = Buffer.from([0x28, 0, 0x12, 0x34, 0x56, 0x78, 0, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(decodeRange(ten), { lba: 0x12345678, blocks: 256 });
  const twelve = Buffer.alloc(16);
  twelve[0] = 0xa8;
  twelve.writeUInt32BE(7, 2);
  twelve.writeUInt32BE(0x10000, 6);
  assert.deepEqual(decodeRange(twelve), { lba: 7, blocks: 0x10000 });
  const sixteen = Buffer.alloc(16);
  sixteen[0] = 0x88;
  sixteen.writeUInt32BE(1, 2);
  sixteen.writeUInt32BE(2, 6);
  sixteen.writeUInt32BE(0, 10);
  assert.deepEqual(decodeRange(sixteen), { lba: 0x100000002, blocks: 0 }, "length 0 stays 0 beyond READ(6)");
});

test("64-bit LBAs beyond 2^53 are out of range rather than rounded", () => {
  const b = Buffer.alloc(8, 0xff);
  assert.equal(readLba64(b, 0), Infinity);
});

test("provisioning runs in blocks: mapped runs round up, deallocated runs round down, clipped to the unit", async () => {
  const { blocksOfRun } = await import("../../../target/scsi/commands/provisioning.js");
  // 512-byte blocks, 64 of them.
  assert.deepEqual(blocksOfRun(9, { mapped: true, length: 4097 }, 512, 64), {
    lba: 9,
    blocks: 9,
    mapped: true,
  });
  assert.deepEqual(blocksOfRun(0, { mapped: false, length: 4097 }, 512, 64), {
    lba: 0,
    blocks: 8,
    mapped: false,
  });
  assert.deepEqual(blocksOfRun(5, { mapped: false, length: 100 }, 512, 64), {
    lba: 5,
    blocks: 1,
    mapped: false,
  });
  assert.deepEqual(blocksOfRun(60, { mapped: true, length: 1 << 20 }, 512, 64), {
    lba: 60,
    blocks: 4,
    mapped: true,
  });
});
