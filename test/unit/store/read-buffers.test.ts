import assert from "node:assert/strict";
import { test } from "node:test";
import { isRecyclableRead, recycleReadBuffer, takeReadBuffer } from "../../../target/store/read-buffers.js";

test("a large read buffer goes back to the pool once sent, and only the pool's own buffers do", () => {
  const size = 1 << 20;
  const a = takeReadBuffer(size);
  assert.equal(a.length, size);
  assert.equal(isRecyclableRead(a), true);
  assert.equal(isRecyclableRead(a.subarray(0, 4096)), false, "a view is never taken back");
  recycleReadBuffer(a);
  assert.equal(isRecyclableRead(a), false, "handed back once");
  recycleReadBuffer(a); // a second hand-back is ignored: the buffer must not be pooled twice
  const b = takeReadBuffer(size);
  const c = takeReadBuffer(size);
  assert.equal(b, a, "the next read of that size reuses it");
  assert.notEqual(c, a, "and only once");

  const foreign = Buffer.alloc(size);
  recycleReadBuffer(foreign);
  assert.notEqual(takeReadBuffer(size), foreign, "a buffer the pool did not hand out is not taken");
});
