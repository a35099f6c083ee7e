/** Logical block provisioning (SBC-3 4.7): UNMAP, WRITE SAME 10/16 and GET LBA STATUS. */
import { protectField, readLba64 } from "../cdb.js";
import { GOOD, dataIn, writeCacheEnabled, type Handler, type LuContext } from "../lu-context.js";
import {
  invalidFieldInCdb,
  invalidFieldInParameterList,
  lbaOutOfRange,
  parameterListLengthError,
} from "../sense.js";
import { checkRange } from "./block-io.js";
import type { AllocationRun } from "../../store/block-device.js";

/** Largest buffer WRITE SAME fills at once. */
const WRITE_SAME_CHUNK = 1024 * 1024;

export const unmap: Handler = async (lu, cmd) => {
  const cdb = cmd.cdb;
  if (cdb[1]! & 0x01) throw invalidFieldInCdb(1, 0); // ANCHOR: anchored blocks are not supported
  const listLength = cdb.readUInt16BE(7);
  if (listLength === 0) return { status: 0, dataOutLength: 0 };
  if (listLength < 8) throw parameterListLengthError();
  const p = cmd.dataOut.subarray(0, Math.min(listLength, cmd.dataOut.length));
  if (p.length < 8) throw parameterListLengthError();
  const descriptorBytes = Math.min(p.readUInt16BE(2), p.length - 8) & ~15;
  const count = descriptorBytes / 16;
  if (count > lu.limits.maxUnmapDescriptors) throw invalidFieldInParameterList(2);
  const ranges: Array<[number, number]> = [];
  for (let i = 0; i < count; i++) {
    const at = 8 + i * 16;
    const lba = readLba64(p, at);
    const blocks = p.readUInt32BE(at + 8);
    if (lba + blocks > lu.blockCount) throw lbaOutOfRange();
    if (blocks > lu.limits.maxUnmapBlocks) throw invalidFieldInParameterList(at + 8);
    if (blocks > 0) ranges.push([lba, blocks]);
  }
  for (const [lba, blocks] of ranges) await lu.device.unmap(lba * lu.blockSize, blocks * lu.blockSize);
  return { status: 0, dataOutLength: listLength };
};

export const writeSame: Handler = async (lu, cmd) => {
  const cdb = cmd.cdb;
  const sixteen = cdb[0] === 0x93;
  if (protectField(cdb) !== 0) throw invalidFieldInCdb(1, 7);
  if (cdb[1]! & 0x10) throw invalidFieldInCdb(1, 4); // ANCHOR
  const unmapBit = (cdb[1]! & 0x08) !== 0;
  const ndob = sixteen && (cdb[1]! & 0x01) !== 0;
  if (!sixteen && cdb[1]! & 0x01) throw invalidFieldInCdb(1, 0);
  const lba = sixteen ? readLba64(cdb, 2) : cdb.readUInt32BE(2);
  let blocks = sixteen ? cdb.readUInt32BE(10) : cdb.readUInt16BE(7);
  const bs = lu.blockSize;
  const dataOutLength = ndob ? 0 : bs;
  if (blocks > lu.limits.maxWriteSameBlocks) throw invalidFieldInCdb(sixteen ? 10 : 7);
  checkRange(lu, lba, blocks);
  // NUMBER OF LOGICAL BLOCKS 0 means "through the last LBA" (WSNZ = 0).
  if (blocks === 0) {
    blocks = lu.blockCount - lba;
    if (blocks > lu.limits.maxWriteSameBlocks) throw invalidFieldInCdb(sixteen ? 10 : 7);
  }
  if (blocks === 0) return { status: 0, dataOutLength };
  let block: Buffer | undefined;
  if (!ndob) {
    if (cmd.dataOut.length !== bs) throw invalidFieldInCdb(sixteen ? 10 : 7);
    block = cmd.dataOut.subarray(0, bs);
  }
  if (unmapBit) {
    // The unit unmaps whenever asked to (as LIO and tgt do): deallocated blocks read as zeros (LBPRZ).
    await lu.device.unmap(lba * bs, blocks * bs);
    return { status: 0, dataOutLength };
  }
  await fillRange(lu, lba, blocks, block ?? Buffer.alloc(bs));
  if (!writeCacheEnabled(lu)) await lu.device.flush();
  return { status: 0, dataOutLength };
};

async function fillRange(lu: LuContext, lba: number, blocks: number, block: Buffer): Promise<void> {
  const bs = lu.blockSize;
  const chunkBlocks = Math.max(1, Math.min(blocks, Math.floor(WRITE_SAME_CHUNK / bs)));
  const chunk = Buffer.allocUnsafe(chunkBlocks * bs);
  for (let i = 0; i < chunkBlocks; i++) block.copy(chunk, i * bs);
  for (let done = 0; done < blocks;) {
    const n = Math.min(chunkBlocks, blocks - done);
    // Each write gets its own view; the device may hold on to it until the write resolves.
    await lu.device.write((lba + done) * bs, chunk.subarray(0, n * bs));
    done += n;
  }
}

/**
 * GET LBA STATUS: one descriptor from the requested LBA to the end of the run of equally
 * provisioned blocks it lies in.
 */
export const getLbaStatus: Handler = async (lu, cmd) => {
  const cdb = cmd.cdb;
  const lba = readLba64(cdb, 2);
  const allocationLength = cdb.readUInt32BE(10);
  if (lba >= lu.blockCount) throw lbaOutOfRange();
  if (allocationLength === 0) return GOOD;
  const extent = await extentAt(lu, lba);
  const b = Buffer.alloc(24);
  b.writeUInt32BE(20, 0);
  b.writeUInt32BE(Math.floor(lba / 0x100000000), 8);
  b.writeUInt32BE(lba >>> 0, 12);
  b.writeUInt32BE(Math.max(1, Math.min(0xffffffff, extent.lba + extent.blocks - lba)), 16);
  b[20] = extent.mapped ? 0x00 : 0x01; // mapped or deallocated
  return dataIn(b, allocationLength);
};

export interface ProvisioningExtent {
  lba: number;
  blocks: number;
  mapped: boolean;
}

/**
 * Blocks from `lba` that share its provisioning state, from a run of bytes starting at the block's
 * first byte. A block counts as mapped when any of its bytes is allocated, so a mapped run is
 * rounded up to whole blocks and a deallocated run down (never below one block).
 */
export function blocksOfRun(
  lba: number,
  run: AllocationRun,
  blockSize: number,
  blockCount: number,
): ProvisioningExtent {
  const whole = run.mapped ? Math.ceil(run.length / blockSize) : Math.floor(run.length / blockSize);
  const blocks = Math.max(1, Math.min(blockCount - lba, whole, 0xffffffff));
  return { lba, blocks, mapped: run.mapped };
}

async function extentAt(lu: LuContext, lba: number): Promise<ProvisioningExtent> {
  const run = await lu.device.allocationAt?.(lba * lu.blockSize);
  if (run) return blocksOfRun(lba, run, lu.blockSize, lu.blockCount);
  const mapped = await lu.device.isMapped(lba * lu.blockSize, lu.blockSize);
  return { lba, blocks: 1, mapped };
}
