/**
 * Recycles large I/O buffers (Data-Out, Data-In, peer payloads). Allocating a fresh megabyte
 * per command makes the garbage collector a large share of the work at high throughput;
 * commands of the same size reuse buffers instead. Only buffers of at least MIN_POOLED bytes are kept, up to a bounded total.
 */
const MIN_POOLED = 64 * 1024;

export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private pooledBytes = 0;

  constructor(private readonly maxBytes = 64 * 1024 * 1024) {}

  take(size: number): Buffer {
    if (size >= MIN_POOLED) {
      const list = this.free.get(size);
      const b = list?.pop();
      if (b) {
        this.pooledBytes -= size;
        return b;
      }
    }
    return Buffer.allocUnsafe(size);
  }

  /** Hands a buffer back; the caller must hold no other reference to it. */
  give(b: Buffer): void {
    const size = b.length;
    if (size < MIN_POOLED || b.byteOffset !== 0 || b.buffer.byteLength !== size) return;
    if (this.pooledBytes + size > this.maxBytes) return;
    let list = this.free.get(size);
    if (!list) {
      list = [];
      this.free.set(size, list);
    }
    list.push(b);
    this.pooledBytes += size;
  }
}
