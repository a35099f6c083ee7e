import { invalidArgument, outOfRange } from "../errors.js";
import type { CapacityRange } from "../messages.js";

export const MiB = 1024n * 1024n;
/** What a volume gets when the request names no size (a PVC always does; csi-sanity may not). */
export const DEFAULT_CAPACITY = 1024n * MiB;

const roundUpMiB = (b: bigint) => ((b + MiB - 1n) / MiB) * MiB;

/**
 * The LUN size for a capacity range: required_bytes rounded up to a whole MiB (the target's
 * capacity must be a multiple of its block size; whole MiB keep spec.capacity readable), at least
 * 1 MiB. Without required_bytes: the default, or limit_bytes when that is smaller.
 */
export function capacityFor(range: CapacityRange | null | undefined): bigint {
  const required = range?.required_bytes ?? 0n;
  const limit = range?.limit_bytes ?? 0n;
  if (required < 0n || limit < 0n) throw invalidArgument("capacity_range: bytes must not be negative");
  if (limit > 0n && limit < required)
    throw invalidArgument(`capacity_range: limit_bytes ${limit} is below required_bytes ${required}`);
  const wanted = required > 0n ? required : limit > 0n && limit < DEFAULT_CAPACITY ? limit : DEFAULT_CAPACITY;
  const bytes = roundUpMiB(wanted > MiB ? wanted : MiB);
  if (limit > 0n && bytes > limit)
    throw outOfRange(
      `capacity_range: volumes come in whole MiB; ${bytes} bytes, the smallest that fits, exceeds limit_bytes ${limit}`,
    );
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER))
    throw outOfRange(`capacity_range: ${bytes} bytes is too large`);
  return bytes;
}

/** Whether an existing volume of `bytes` satisfies the range (CSI: compatible means OK, else ALREADY_EXISTS). */
export function capacityFits(bytes: bigint, range: CapacityRange | null | undefined): boolean {
  const required = range?.required_bytes ?? 0n;
  const limit = range?.limit_bytes ?? 0n;
  return bytes >= required && (limit === 0n || bytes <= limit);
}

/** spec.capacity for a whole number of MiB. */
export function capacityQuantity(bytes: bigint): string {
  return `${bytes / MiB}Mi`;
}
