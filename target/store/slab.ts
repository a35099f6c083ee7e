/**
 * Small buffers cut as 8-byte aligned views from shared slabs (like Buffer's own pool, but for
 * sizes it will not pool, 4 KiB included). A slab is freed once no view of it is left.
 */
export class Slab {
  private slab = Buffer.alloc(0);
  private at = 0;

  constructor(readonly slabBytes = 1024 * 1024) {}

  /** A buffer of `length` bytes (contents undefined); length must not exceed slabBytes. */
  take(length: number): Buffer {
    if (this.at + length > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(this.slabBytes);
      this.at = 0;
    }
    const b = this.slab.subarray(this.at, this.at + length);
    // Keep views 8-byte aligned so typed-array views over them stay possible.
    this.at += (length + 7) & ~7;
    return b;
  }
}
