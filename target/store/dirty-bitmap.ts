/**
 * Dirty bitmaps of a pair node: one bit per region of the LUN.
 *
 * `DirtyBitmap` is the in-memory bit set (set, clear, test, merge, iterate, count).
 * `DirtyRegionStore` keeps one such bitmap durable in a file beside the LUN file with
 * persist-before-write semantics: `markDurable()` resolves only once the regions' bits are
 * on disk (fdatasync), while clearing is lazy (a stale set bit only costs one extra region copy
 * during a later resync, a lost set bit would lose data). Concurrent callers share one
 * write+fdatasync (group commit), and a bit that is already on disk costs nothing.
 */
import { constants as fsc, promises as fsp } from "node:fs";
import type { MetadataFiles } from "./metadata-files.js";

export class DirtyBitmap {
  /** The bits; replaced (never shrunk) when the LUN grows. */
  private bits: Uint8Array;
  private count_: number;

  constructor(regions: number, bytes?: Uint8Array) {
    if (!Number.isSafeInteger(regions) || regions < 0) throw new Error(`invalid region count ${regions}`);
    this.count_ = regions;
    this.bits = new Uint8Array(Math.ceil(regions / 8));
    if (bytes) this.bits.set(bytes.subarray(0, this.bits.length));
    this.maskTail();
  }

  get bytes(): Uint8Array {
    return this.bits;
  }

  get regions(): number {
    return this.count_;
  }

  /**
   * Extends the bitmap in place to `regions` regions (the LUN grew); the new regions are clear.
   * Everyone holding this bitmap sees the new size. A bitmap never shrinks.
   */
  grow(regions: number): void {
    if (!Number.isSafeInteger(regions) || regions < this.count_) {
      throw new Error(`a dirty bitmap of ${this.count_} regions cannot become ${regions}`);
    }
    if (regions === this.count_) return;
    const next = new Uint8Array(Math.ceil(regions / 8));
    next.set(this.bits);
    this.bits = next;
    this.count_ = regions;
  }

  /** Bits past `regions` in the last byte stay zero so counts and comparisons are exact. */
  private maskTail(): void {
    const extra = this.bytes.length * 8 - this.regions;
    if (extra > 0) this.bytes[this.bytes.length - 1]! &= 0xff >> extra;
  }

  test(region: number): boolean {
    return ((this.bytes[region >> 3] ?? 0) & (1 << (region & 7))) !== 0;
  }

  set(region: number): void {
    this.check(region);
    this.bytes[region >> 3]! |= 1 << (region & 7);
  }

  clear(region: number): void {
    this.check(region);
    this.bytes[region >> 3]! &= ~(1 << (region & 7));
  }

  setRange(first: number, last: number): void {
    for (let r = first; r <= last; r++) this.set(r);
  }

  setAll(): void {
    this.bytes.fill(0xff);
    this.maskTail();
  }

  clearAll(): void {
    this.bytes.fill(0);
  }

  /** Whether any region in [first, last] is set. */
  anyInRange(first: number, last: number): boolean {
    for (let r = first; r <= last; r++) if (this.test(r)) return true;
    return false;
  }

  /** this |= other */
  merge(other: DirtyBitmap | Uint8Array): void {
    const src = other instanceof DirtyBitmap ? other.bytes : other;
    const n = Math.min(src.length, this.bytes.length);
    for (let i = 0; i < n; i++) this.bytes[i]! |= src[i]!;
    this.maskTail();
  }

  count(): number {
    let n = 0;
    for (const b of this.bytes) n += POPCOUNT[b]!;
    return n;
  }

  isEmpty(): boolean {
    return this.bytes.every((b) => b === 0);
  }

  /** Set regions in ascending order, starting at `from`. Skips zero bytes quickly. */
  *iterate(from = 0): Generator<number> {
    for (let i = from >> 3; i < this.bytes.length; i++) {
      const b = this.bytes[i]!;
      if (b === 0) continue;
      for (let bit = 0; bit < 8; bit++) {
        const r = i * 8 + bit;
        if (r >= from && b & (1 << bit)) yield r;
      }
    }
  }

  /** First set region at or after `from`, or -1. */
  next(from: number): number {
    for (const r of this.iterate(from)) return r;
    return -1;
  }

  clone(): DirtyBitmap {
    return new DirtyBitmap(this.regions, this.bytes);
  }

  private check(region: number): void {
    if (!Number.isInteger(region) || region < 0 || region >= this.regions) {
      throw new RangeError(`region ${region} outside 0..${this.regions - 1}`);
    }
  }
}

const POPCOUNT = Uint8Array.from({ length: 256 }, (_, i) => {
  let n = 0;
  for (let v = i; v; v >>= 1) n += v & 1;
  return n;
});

/** Regions [first, last] touched by the byte range [offset, offset + length). */
export function regionsOf(offset: number, length: number, regionSize: number): [number, number] {
  const first = Math.floor(offset / regionSize);
  const last = Math.floor((offset + Math.max(length, 1) - 1) / regionSize);
  return [first, last];
}

export function regionCount(sizeBytes: number, regionSize: number): number {
  return Math.ceil(sizeBytes / regionSize);
}

/** Bitmap file pages are written whole; a page is the unit of a partial bitmap update. */
const PAGE = 4096;

/**
 * A DirtyBitmap mirrored in a file (raw bits, no header: the file's size is fixed by the
 * region count, and the generation record next to it names the region size).
 */
export class DirtyRegionStore {
  /** The bits callers asked for. */
  readonly image: DirtyBitmap;
  /** A conservative view of what is on disk: a bit is set here only when it is durably set. */
  private onDisk: DirtyBitmap;
  private flushing: Promise<void> | null = null;
  private flushWanted = false;
  private nextFlush: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } | null =
    null;
  private closed = false;
  /** Exact bytes last written (to find changed pages). */
  private onDiskBefore: Uint8Array;

  private constructor(
    private readonly fh: fsp.FileHandle,
    regions: number,
    initial: Uint8Array,
  ) {
    this.image = new DirtyBitmap(regions, initial);
    this.onDisk = this.image.clone();
    this.onDiskBefore = Uint8Array.from(this.image.bytes);
  }

  /** Opens (or creates, all clear) the bitmap file `files.dirtyBitmap` for `regions` regions. */
  static async open(files: Pick<MetadataFiles, "dirtyBitmap">, regions: number): Promise<DirtyRegionStore> {
    const path = files.dirtyBitmap;
    const bytes = Math.ceil(regions / 8);
    const fh = await fsp.open(path, fsc.O_RDWR | fsc.O_CREAT, 0o600);
    try {
      const { size } = await fh.stat();
      const buf = Buffer.alloc(bytes);
      if (size > 0) await fh.read(buf, 0, Math.min(bytes, size), 0);
      if (size !== bytes) {
        await fh.truncate(bytes);
        await fh.write(buf, 0, bytes, 0);
        await fh.datasync();
      }
      return new DirtyRegionStore(fh, regions, buf);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  get regions(): number {
    return this.image.regions;
  }

  /**
   * Sets the bits of regions [first, last] and resolves once they are durable. Costs nothing
   * when all of them already are.
   */
  markDurable(first: number, last: number): Promise<void> {
    let durable = true;
    for (let r = first; r <= last; r++) {
      this.image.set(r);
      if (!this.onDisk.test(r)) durable = false;
    }
    if (durable) return Promise.resolve();
    return this.requestFlush();
  }

  /**
   * Whether the bits of regions [first, last] are set and on disk, so that markDurable would
   * have nothing to do (checked without a promise on the per-write path).
   */
  isDurable(first: number, last: number): boolean {
    for (let r = first; r <= last; r++) if (!this.image.test(r) || !this.onDisk.test(r)) return false;
    return true;
  }

  /** Sets every bit in `bits` and resolves once durable. */
  markAllDurable(bits: DirtyBitmap): Promise<void> {
    this.image.merge(bits);
    return this.requestFlush();
  }

  /**
   * Extends the bitmap (in memory and in its file) to `regions` regions, all new ones clear, and
   * resolves once the file has its new size on disk. Waits for a flush in progress, so no page of
   * the old size is written after the file grew.
   */
  async grow(regions: number): Promise<void> {
    if (regions === this.image.regions) return;
    while (this.flushing) await this.flushing;
    // From here to requestFlush no flush can start: the swap is synchronous.
    this.image.grow(regions);
    this.onDisk.grow(regions);
    // onDiskBefore keeps the old length: every page past it counts as changed and is written.
    await this.requestFlush();
  }

  /** Clears a bit; it reaches the disk with the next flush. */
  clearLazy(region: number): void {
    this.image.clear(region);
  }

  /** Writes the image's changed pages and fdatasyncs; concurrent callers share one flush. */
  flush(): Promise<void> {
    return this.requestFlush();
  }

  private requestFlush(): Promise<void> {
    if (this.closed) return Promise.reject(new Error("dirty bitmap closed"));
    if (!this.nextFlush) {
      let resolve!: () => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.nextFlush = { promise, resolve, reject };
    }
    const waiter = this.nextFlush.promise;
    this.flushWanted = true;
    if (!this.flushing) this.flushing = this.runFlushes();
    return waiter;
  }

  private async runFlushes(): Promise<void> {
    while (this.flushWanted) {
      this.flushWanted = false;
      const batch = this.nextFlush!;
      this.nextFlush = null;
      try {
        await this.writeOnce();
        batch.resolve();
      } catch (e) {
        batch.reject(e instanceof Error ? e : new Error(String(e)));
      }
    }
    this.flushing = null;
  }

  private async writeOnce(): Promise<void> {
    const snapshot = this.image.clone();
    // Bits being cleared by this write are not durable from now on (the write may land).
    for (let i = 0; i < this.onDisk.bytes.length; i++) this.onDisk.bytes[i]! &= snapshot.bytes[i]!;
    const pages = changedPages(this.onDiskBefore, snapshot.bytes);
    for (const p of pages) {
      const start = p * PAGE;
      const end = Math.min(snapshot.bytes.length, start + PAGE);
      await this.fh.write(snapshot.bytes, start, end - start, start);
    }
    if (pages.length > 0) await this.fh.datasync();
    this.onDiskBefore = Uint8Array.from(snapshot.bytes);
    // Only bits set in the snapshot became durable; later sets wait for the next flush.
    this.onDisk = snapshot;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flushing;
    this.closed = true;
    await this.fh.close();
  }
}

function changedPages(old: Uint8Array, next: Uint8Array): number[] {
  const pages: number[] = [];
  const n = Math.ceil(next.length / PAGE);
  for (let p = 0; p < n; p++) {
    const s = p * PAGE;
    const e = Math.min(next.length, s + PAGE);
    if (old.length < e) {
      pages.push(p);
      continue;
    }
    for (let i = s; i < e; i++) {
      if (old[i] !== next[i]) {
        pages.push(p);
        break;
      }
    }
  }
  return pages;
}
