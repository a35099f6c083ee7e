/**
 * Large read buffers come from a pool and go back once the data they carry has been sent (the
 * transport calls recycleReadBuffer). Only buffers taken here are ever taken back: a buffer the
 * pool did not hand out (a view, a peer's payload) is left to the garbage collector.
 */
import { BufferPool } from "./buffer-pool.js";

const pool = new BufferPool(32 * 1024 * 1024);
const handedOut = new WeakSet<Buffer>();

/** A buffer of `length` bytes for a read (contents undefined). */
export function takeReadBuffer(length: number): Buffer {
  const b = pool.take(length);
  handedOut.add(b);
  return b;
}

/** Whether recycleReadBuffer would take b back. */
export function isRecyclableRead(b: Buffer): boolean {
  return handedOut.has(b);
}

/** Hands back a read buffer once nothing refers to it any more; other buffers are ignored. */
export function recycleReadBuffer(b: Buffer): void {
  if (handedOut.delete(b)) pool.give(b);
}
