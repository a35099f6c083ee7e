import { crc32c } from "@node-rs/crc32";

/**
 * iSCSI header and data digests: CRC32C over the bytes (data digests include the padding),
 * stored least significant byte first as RFC 7143 §13.1 and every initiator lay it out.
 */

const zeroPad = Buffer.alloc(4);

/** CRC32C of `buf`, continuing from `state` (0 to start). */
export function crc32cUpdate(buf: Uint8Array, state = 0): number {
  return crc32c(buf, state);
}

/** Digest of a data segment including its zero padding to a multiple of 4. */
export function dataDigest(data: Uint8Array, pad: number): number {
  const crc = data.length ? crc32c(data) : 0;
  return pad ? crc32c(zeroPad.subarray(0, pad), crc) : crc;
}

export function writeDigest(target: Buffer, offset: number, crc: number): void {
  target.writeUInt32LE(crc >>> 0, offset);
}

export function readDigest(source: Buffer, offset: number): number {
  return source.readUInt32LE(offset);
}

export function digestBuffer(crc: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(crc >>> 0, 0);
  return b;
}
