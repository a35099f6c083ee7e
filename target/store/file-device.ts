/**
 * A BlockDevice backed by one sparse file on the node's PV. All I/O is positional
 * through a single file handle, so many commands run concurrently on the libuv
 * pool; only overlapping writes (and COMPARE AND WRITE) are ordered, by a range lock.
 */
import { execFile } from "node:child_process";
import { constants as fsc, promises as fsp, readSync, writeSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import type { AllocationRun, BlockDevice, WriteOptions } from "./block-device.js";
import { takeReadBuffer } from "./read-buffers.js";
import { Slab } from "./slab.js";
import { RangeLock } from "./range-lock.js";
import { FileExtentTool } from "./file-extent-tool.js";
import { IoModePolicy, defaultIoModeOptions } from "./io-mode-policy.js";
import type { Logger } from "../log.js";

const execFileP = promisify(execFile);

/** Read buffers up to this size are cut from shared slabs instead of being allocated one by one. */
const SLAB_MAX_READ = 64 * 1024;
const smallReads = new Slab();

/** A buffer for a read: a slab view when small, from the read-buffer pool when large. */
function readBuffer(length: number): Buffer {
  return length > SLAB_MAX_READ ? takeReadBuffer(length) : smallReads.take(length);
}

/** Largest chunk written at once when zeroing a range without hole punching. */
const ZERO_CHUNK = 1024 * 1024;
let zeroChunk: Buffer | undefined;

export interface FileBlockDeviceOptions {
  /**
   * "adaptive" (default) runs small transfers inline while they are served from the page cache and
   * falls back to the thread pool when they are not; "pool" always uses the thread pool.
   */
  io?: "adaptive" | "pool";
}

export class FileBlockDevice implements BlockDevice {
  private readonly writeLock = new RangeLock();
  private readonly ioMode: IoModePolicy;
  private punchHoleWorks = true;
  private extents: Promise<FileExtentTool | undefined> | undefined;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fh: fsp.FileHandle,
    private size: number,
    private readonly logger?: Logger,
    options: FileBlockDeviceOptions = {},
  ) {
    this.ioMode = new IoModePolicy(defaultIoModeOptions, (options.io ?? "adaptive") === "adaptive");
  }

  /**
   * Opens the LUN file, creating it sparse when missing. An existing file keeps its data;
   * it grows to `sizeBytes` when smaller and is refused when larger (a LUN never shrinks).
   */
  static async open(
    path: string,
    sizeBytes: number,
    logger?: Logger,
    options: FileBlockDeviceOptions = {},
  ): Promise<FileBlockDevice> {
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) {
      throw new Error(`invalid LUN size ${sizeBytes}: must be a positive integer number of bytes`);
    }
    const fh = await fsp.open(path, fsc.O_RDWR | fsc.O_CREAT, 0o600);
    try {
      const { size } = await fh.stat();
      if (size > sizeBytes) {
        throw new Error(
          `LUN file ${path} holds ${size} bytes, more than the requested size ${sizeBytes}; shrinking a LUN would lose data`,
        );
      }
      if (size < sizeBytes) {
        await fh.truncate(sizeBytes);
        await fh.datasync();
        logger?.info({ path, from: size, to: sizeBytes }, size === 0 ? "created LUN file" : "grew LUN file");
      }
      return new FileBlockDevice(path, fh, sizeBytes, logger, options);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  get sizeBytes(): number {
    return this.size;
  }

  /**
   * Grows the LUN file to `sizeBytes` (sparse: the new space reads as zeros) and resolves once the
   * new size is durable. Growing to the current size does nothing; a LUN never shrinks.
   */
  async grow(sizeBytes: number): Promise<void> {
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes < this.size) {
      throw new Error(`LUN file ${this.path} holds ${this.size} bytes; it cannot become ${sizeBytes}`);
    }
    if (sizeBytes === this.size) return;
    const from = this.size;
    await this.fh.truncate(sizeBytes);
    await this.fh.datasync();
    this.size = sizeBytes;
    this.logger?.info({ path: this.path, from, to: sizeBytes }, "grew LUN file");
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const buf = readBuffer(length);
    const start = performance.now();
    if (this.ioMode.inline(length, start)) {
      this.readInline(buf, offset);
      this.ioMode.record(performance.now() - start, start);
      return buf;
    }
    await this.readInto(buf, offset);
    return buf;
  }

  private readInline(buf: Buffer, offset: number): void {
    let done = 0;
    while (done < buf.length) {
      const n = readSync(this.fh.fd, buf, done, buf.length - done, offset + done);
      if (n === 0) {
        buf.fill(0, done);
        return;
      }
      done += n;
    }
  }

  private async readInto(buf: Buffer, offset: number): Promise<void> {
    let done = 0;
    while (done < buf.length) {
      const { bytesRead } = await this.fh.read(buf, done, buf.length - done, offset + done);
      if (bytesRead === 0) {
        // Past the end of the file (cannot happen within sizeBytes); reads as zeros.
        buf.fill(0, done);
        return;
      }
      done += bytesRead;
    }
  }

  private async writeAll(data: Buffer, offset: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, offset + done);
      done += bytesWritten;
    }
  }

  async write(offset: number, data: Buffer, options?: WriteOptions): Promise<void> {
    const start = performance.now();
    // Inline only when no overlapping write is in flight: the inline write then cannot reorder with it.
    if (this.ioMode.inline(data.length, start) && !this.writeLock.overlaps(offset, data.length)) {
      for (let done = 0; done < data.length;) {
        done += writeSync(this.fh.fd, data, done, data.length - done, offset + done);
      }
      this.ioMode.record(performance.now() - start, start);
      if (options?.fua) await this.fh.datasync();
      return;
    }
    const release = await this.writeLock.acquire(offset, data.length);
    try {
      await this.writeAll(data, offset);
    } finally {
      release();
    }
    if (options?.fua) await this.fh.datasync();
  }

  async flush(): Promise<void> {
    await this.fh.datasync();
  }

  async unmap(offset: number, length: number): Promise<void> {
    if (length <= 0) return;
    const release = await this.writeLock.acquire(offset, length);
    try {
      if (this.punchHoleWorks && (await this.punchHole(offset, length))) return;
      await this.writeZeros(offset, length);
    } finally {
      release();
    }
  }

  private async punchHole(offset: number, length: number): Promise<boolean> {
    try {
      const tool = await this.extentTool();
      if (tool) await tool.punch(offset, length);
      else
        await execFileP("fallocate", [
          "--punch-hole",
          "--keep-size",
          "--offset",
          String(offset),
          "--length",
          String(length),
          this.path,
        ]);
      return true;
    } catch (err) {
      this.punchHoleWorks = false;
      this.logger?.warn(
        { path: this.path, err: err instanceof Error ? err.message : String(err) },
        "hole punching failed; unmapped ranges are zero-filled instead",
      );
      return false;
    }
  }

  private async writeZeros(offset: number, length: number): Promise<void> {
    zeroChunk ??= Buffer.alloc(ZERO_CHUNK);
    for (let done = 0; done < length;) {
      const n = Math.min(ZERO_CHUNK, length - done);
      await this.writeAll(zeroChunk.subarray(0, n), offset + done);
      done += n;
    }
  }

  async compareAndWrite(offset: number, expected: Buffer, data: Buffer): Promise<number> {
    if (expected.length !== data.length) {
      throw new Error(`compareAndWrite: expected ${expected.length} bytes and data ${data.length} differ`);
    }
    const release = await this.writeLock.acquire(offset, data.length);
    try {
      const current = await this.read(offset, expected.length);
      const mismatch = firstMismatch(current, expected);
      if (mismatch >= 0) return mismatch;
      await this.writeAll(data, offset);
      return -1;
    } finally {
      release();
    }
  }

  /** Whether any byte of the range is allocated (SEEK_DATA); reports mapped when it cannot tell. */
  async isMapped(offset: number, length: number): Promise<boolean> {
    const tool = await this.extentTool();
    if (!tool) return true;
    try {
      const data = await tool.nextData(offset);
      return data !== null && data < offset + length;
    } catch {
      return true;
    }
  }

  /** The run of allocated or deallocated bytes at `offset` (SEEK_DATA / SEEK_HOLE). */
  async allocationAt(offset: number): Promise<AllocationRun | undefined> {
    const tool = await this.extentTool();
    if (!tool || offset >= this.size) return undefined;
    try {
      const data = await tool.nextData(offset);
      if (data === null || data >= this.sizeBytes) return { mapped: false, length: this.sizeBytes - offset };
      if (data > offset) return { mapped: false, length: data - offset };
      const hole = (await tool.nextHole(offset)) ?? this.sizeBytes;
      return { mapped: true, length: Math.max(1, Math.min(hole, this.sizeBytes) - offset) };
    } catch {
      return undefined;
    }
  }

  private extentTool(): Promise<FileExtentTool | undefined> {
    this.extents ??= FileExtentTool.start(this.path);
    return this.extents;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    (await this.extents)?.close();
    await this.fh.close();
  }
}

/** Byte index of the first difference between two equally long buffers, or -1. */
export function firstMismatch(a: Buffer, b: Buffer): number {
  if (a.equals(b)) return -1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}
