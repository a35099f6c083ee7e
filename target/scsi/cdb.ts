/** Decoding of CDB fields shared by several commands. */
import { invalidFieldInCdb } from "./sense.js";

/** Reads a big-endian 64-bit LBA as a number; values beyond 2^53 come back as Infinity (always out of range). */
export function readLba64(cdb: Buffer, at: number): number {
  const hi = cdb.readUInt32BE(at);
  const lo = cdb.readUInt32BE(at + 4);
  if (hi >= 0x200000) return Infinity;
  return hi * 0x100000000 + lo;
}

export function readUInt24BE(b: Buffer, at: number): number {
  return ((b[at] ?? 0) << 16) | ((b[at + 1] ?? 0) << 8) | (b[at + 2] ?? 0);
}

/** LBA, block count and flags of a READ/WRITE/VERIFY-style CDB. */
export interface BlockRange {
  lba: number;
  blocks: number;
}

/** CDB length from the opcode's group code (SPC-4 4.2.5.1). */
export function cdbLengthOf(opcode: number): number {
  switch (opcode >> 5) {
    case 0:
      return 6;
    case 1:
    case 2:
      return 10;
    case 4:
      return 16;
    case 5:
      return 12;
    default:
      return 0;
  }
}

/**
 * Range of the 6/10/12/16-byte READ, WRITE, VERIFY and WRITE AND VERIFY forms, chosen by CDB length.
 * In the 6-byte form a transfer length of 0 means 256 blocks.
 */
export function decodeRange(cdb: Buffer): BlockRange {
  switch (cdbLengthOf(cdb[0]!)) {
    case 6: {
      const lba = readUInt24BE(cdb, 1) & 0x1fffff;
      return { lba, blocks: cdb[4] || 256 };
    }
    case 10:
      return { lba: cdb.readUInt32BE(2), blocks: cdb.readUInt16BE(7) };
    case 12:
      return { lba: cdb.readUInt32BE(2), blocks: cdb.readUInt32BE(6) };
    case 16:
      return { lba: readLba64(cdb, 2), blocks: cdb.readUInt32BE(10) };
    default:
      throw invalidFieldInCdb(0);
  }
}

/** The 3-bit RDPROTECT/WRPROTECT/VRPROTECT field of byte 1. */
export const protectField = (cdb: Buffer): number => (cdb[1]! >> 5) & 7;
export const fuaBit = (cdb: Buffer): boolean => (cdb[1]! & 0x08) !== 0;
export const dpoBit = (cdb: Buffer): boolean => (cdb[1]! & 0x10) !== 0;
