/**
 * SBC-3 data transfer commands: READ, WRITE, VERIFY, WRITE AND VERIFY (6/10/12/16),
 * COMPARE AND WRITE, SYNCHRONIZE CACHE and READ CAPACITY. The data path reads and
 * writes the command buffers directly, without copies.
 */
import { cdbLengthOf, decodeRange, fuaBit, protectField, readLba64 } from "../cdb.js";
import { GOOD, dataIn, writeCacheEnabled, type Handler, type LuContext } from "../lu-context.js";
import { invalidFieldInCdb, lbaOutOfRange, miscompare } from "../sense.js";
import type { ScsiResponse } from "../types.js";

/** Fails with LBA OUT OF RANGE unless [lba, lba + blocks) lies on the unit. */
export function checkRange(lu: LuContext, lba: number, blocks: number): void {
  if (lba + blocks > lu.blockCount || lba >= lu.blockCount + (blocks === 0 ? 1 : 0)) throw lbaOutOfRange();
}

function checkTransferLength(lu: LuContext, blocks: number, cdb: Buffer): void {
  if (blocks > lu.limits.maxTransferBlocks) {
    const len = cdbLengthOf(cdb[0]!);
    throw invalidFieldInCdb(len === 16 ? 10 : len === 12 ? 6 : len === 10 ? 7 : 4);
  }
}

/** Data-Out for `bytes`, or INVALID FIELD IN CDB when the initiator sent less than the CDB describes. */
function dataOutFor(data: Buffer, bytes: number): Buffer {
  if (data.length < bytes) throw invalidFieldInCdb(0);
  return data.length === bytes ? data : data.subarray(0, bytes);
}

/**
 * The whole blocks of Data-Out a write can use. When the initiator sends less than the CDB asks
 * for (an iSCSI overflow), the blocks it did send are written and the transport reports the
 * residual from `dataOutLength`.
 */
function receivedBlocks(data: Buffer, bytes: number, blockSize: number): Buffer {
  if (data.length >= bytes) return data.length === bytes ? data : data.subarray(0, bytes);
  return data.subarray(0, data.length - (data.length % blockSize));
}

export const read: Handler = async (lu, cmd) => {
  const cdb = cmd.cdb;
  if (cdb[0] !== 0x08 && protectField(cdb) !== 0) throw invalidFieldInCdb(1, 7);
  const { lba, blocks } = decodeRange(cdb);
  checkRange(lu, lba, blocks);
  if (blocks === 0) return GOOD;
  checkTransferLength(lu, blocks, cdb);
  const data = await lu.device.read(lba * lu.blockSize, blocks * lu.blockSize);
  return { status: 0, dataIn: data };
};

export const write: Handler = async (lu, cmd) => {
  const cdb = cmd.cdb;
  if (cdb[0] !== 0x0a && protectField(cdb) !== 0) throw invalidFieldInCdb(1, 7);
  const { lba, blocks } = decodeRange(cdb);
  const bytes = blocks * lu.blockSize;
  checkRange(lu, lba, blocks);
  if (blocks === 0) return { status: 0, dataOutLength: 0 };
  checkTransferLength(lu, blocks, cdb);
  const fua = (cdb[0] !== 0x0a && fuaBit(cdb)) || !writeCacheEnabled(lu);
  const data = receivedBlocks(cmd.dataOut, bytes, lu.blockSize);
  if (data.length > 0) await lu.device.write(lba * lu.blockSize, data, fua ? { fua } : undefined);
  return { status: 0, dataOutLength: bytes };
};

/** WRITE AND VERIFY: the write is made durable, which is what verifying the medium means for a file. */
export const writeAndVerify: Handler = async (lu, cmd) => {
  const cdb = cmd.cdb;
  if (protectField(cdb) !== 0) throw invalidFieldInCdb(1, 7);
  const { lba, blocks } = decodeRange(cdb);
  const bytes = blocks * lu.blockSize;
  checkRange(lu, lba, blocks);
  if (blocks === 0) return { status: 0, dataOutLength: 0 };
  checkTransferLength(lu, blocks, cdb);
  const data = receivedBlocks(cmd.dataOut, bytes, lu.blockSize);
  if (data.length > 0) await lu.device.write(lba * lu.blockSize, data, { fua: true });
  return { status: 0, dataOutLength: bytes };
};

/**
 * VERIFY: BYTCHK 00b checks the range only; 01b compares the Data-Out with the medium;
 * 11b compares one block of Data-Out with every block of the range.
 */
export const verify: Handler = async (lu, cmd) => {
  const cdb = cmd.cdb;
  if (protectField(cdb) !== 0) throw invalidFieldInCdb(1, 7);
  const bytchk = (cdb[1]! >> 1) & 3;
  if (bytchk === 2) throw invalidFieldInCdb(1, 2);
  const { lba, blocks } = decodeRange(cdb);
  checkRange(lu, lba, blocks);
  const bs = lu.blockSize;
  if (bytchk === 0 || blocks === 0) return bytchk === 0 ? GOOD : { status: 0, dataOutLength: 0 };
  checkTransferLength(lu, blocks, cdb);
  const expectedBytes = bytchk === 1 ? blocks * bs : bs;
  const expected = dataOutFor(cmd.dataOut, expectedBytes);
  const current = await lu.device.read(lba * bs, blocks * bs);
  for (let off = 0; off < current.length; off += expected.length) {
    const chunk = current.subarray(off, off + expected.length);
    if (!chunk.equals(expected)) {
      let i = 0;
      while (chunk[i] === expected[i]) i++;
      throw miscompare(off + i);
    }
  }
  return { status: 0, dataOutLength: expectedBytes };
};

export const compareAndWrite: Handler = async (lu, cmd) => {
  const cdb = cmd.cdb;
  if (protectField(cdb) !== 0) throw invalidFieldInCdb(1, 7);
  const lba = readLba64(cdb, 2);
  const blocks = cdb[13]!;
  checkRange(lu, lba, blocks);
  if (blocks > lu.limits.maxCompareAndWriteBlocks) throw invalidFieldInCdb(13);
  const bytes = blocks * lu.blockSize;
  // The verify and write halves must both be there, exactly.
  if (cmd.dataOut.length !== 2 * bytes) throw invalidFieldInCdb(13);
  if (blocks === 0) return { status: 0, dataOutLength: 0 };
  const buf = cmd.dataOut;
  const mismatch = await lu.device.compareAndWrite(
    lba * lu.blockSize,
    buf.subarray(0, bytes),
    buf.subarray(bytes, 2 * bytes),
  );
  if (mismatch >= 0) throw miscompare(mismatch);
  if (fuaBit(cdb) || !writeCacheEnabled(lu)) await lu.device.flush();
  return { status: 0, dataOutLength: 2 * bytes };
};

export const synchronizeCache: Handler = async (lu, cmd) => {
  const cdb = cmd.cdb;
  const sixteen = cdb[0] === 0x91;
  const lba = sixteen ? readLba64(cdb, 2) : cdb.readUInt32BE(2);
  const blocks = sixteen ? cdb.readUInt32BE(10) : cdb.readUInt16BE(7);
  checkRange(lu, lba, blocks);
  await lu.device.flush();
  return GOOD;
};

export const readCapacity10: Handler = (lu, cmd) => {
  const cdb = cmd.cdb;
  // PMI is obsolete; a non-zero LOGICAL BLOCK ADDRESS without it is invalid.
  if (!(cdb[8]! & 1) && cdb.readUInt32BE(2) !== 0) throw invalidFieldInCdb(2);
  const b = Buffer.alloc(8);
  b.writeUInt32BE(Math.min(0xffffffff, lu.blockCount - 1), 0);
  b.writeUInt32BE(lu.blockSize, 4);
  return { status: 0, dataIn: b } satisfies ScsiResponse;
};

export const readCapacity16: Handler = (lu, cmd) => {
  const cdb = cmd.cdb;
  const allocationLength = cdb.readUInt32BE(10);
  const b = Buffer.alloc(32);
  const last = lu.blockCount - 1;
  b.writeUInt32BE(Math.floor(last / 0x100000000), 0);
  b.writeUInt32BE(last >>> 0, 4);
  b.writeUInt32BE(lu.blockSize, 8);
  // LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT: the file system works in 4 KiB blocks.
  b[13] = Math.max(0, Math.log2(4096 / lu.blockSize));
  b[14] = 0x80 | 0x40; // LBPME, LBPRZ
  return dataIn(b, allocationLength);
};
