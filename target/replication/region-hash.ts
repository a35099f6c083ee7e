/**
 * The hash online verify compares per region. SHA-256 through WebCrypto: the digest runs on the
 * libuv thread pool, so hashing never holds the event loop that serves client I/O, and with the
 * SHA extensions of current x86 and ARM CPUs it is the fastest strong hash node:crypto offers.
 * Measured on a 256 KiB region (2-CPU build machine, loaded): SHA-256 572 MiB/s through WebCrypto,
 * 362 MiB/s synchronous; BLAKE2b-512 244 MiB/s; SHA-512/256 141 MiB/s (the latter two only
 * synchronous, on the event loop).
 */
import { webcrypto } from "node:crypto";

export const REGION_HASH_ALGORITHM = "SHA-256";
/** Bytes of one digest. */
export const REGION_HASH_BYTES = 32;

export async function hashRegion(data: Buffer): Promise<Buffer> {
  return Buffer.from(await webcrypto.subtle.digest(REGION_HASH_ALGORITHM, data));
}
