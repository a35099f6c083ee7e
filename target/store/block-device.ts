/**
 * The block device a logical unit reads and writes. A file on the node's own
 * PV implements it for a standalone target; the replication layer implements
 * it for a pair (mirroring writes to the partner before they resolve).
 *
 * Offsets and lengths are in bytes and always multiples of the logical block
 * size; callers have already checked them against `sizeBytes`.
 */
export interface BlockDevice {
  readonly sizeBytes: number;
  /** Reads `length` bytes at `offset`. Unwritten or unmapped regions read as zeros. */
  read(offset: number, length: number): Promise<Buffer>;
  /** Resolves only when the data is held everywhere it must be (both nodes in a pair). `fua`: durable before resolving. */
  write(offset: number, data: Buffer, options?: WriteOptions): Promise<void>;
  /** Makes every resolved write durable. */
  flush(): Promise<void>;
  /** Deallocates a range; it reads back as zeros afterwards. */
  unmap(offset: number, length: number): Promise<void>;
  /**
   * Atomically compares `expected` with the data at `offset` and, if equal, writes `data` (same length).
   * Atomic with respect to every other write and compare-and-write on the device, on both nodes of a pair.
   * Resolves with the byte offset (relative to `offset`) of the first mismatch, or -1 when written.
   */
  compareAndWrite(offset: number, expected: Buffer, data: Buffer): Promise<number>;
  /** Whether the range holds allocated data (for GET LBA STATUS); may over-approximate as mapped. */
  isMapped(offset: number, length: number): Promise<boolean>;
  /**
   * Optional: the provisioning state at byte `offset` and how many bytes from there share it
   * (a run of allocated or of deallocated data), or undefined when the device cannot tell.
   * GET LBA STATUS reports whole runs with it; without it, one block at a time from isMapped.
   */
  allocationAt?(offset: number): Promise<AllocationRun | undefined>;
  /**
   * Optional: grows the device to `sizeBytes` (never shrinks); `sizeBytes` reports the new size
   * once it resolves. The new space reads as zeros.
   */
  grow?(sizeBytes: number): Promise<void>;
  close(): Promise<void>;
}

export interface AllocationRun {
  mapped: boolean;
  /** bytes from the queried offset that share the state (at least one byte, at most to the end) */
  length: number;
}

export interface WriteOptions {
  /** Force unit access: the write is durable when the promise resolves. */
  fua?: boolean;
}

/** Raised by a device that may not serve I/O right now (e.g. a pair node that lost its witness, or is Pending). */
export class DeviceUnavailableError extends Error {
  constructor(
    message: string,
    /** "transitioning" maps to ASC/ASCQ 04h/0Ah, "unavailable" to 04h/0Ch, "standby" to 04h/0Bh */
    readonly kind: "transitioning" | "unavailable" | "standby" = "unavailable",
  ) {
    super(message);
    this.name = "DeviceUnavailableError";
  }
}
