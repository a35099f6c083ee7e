import { test } from "node:test";
import assert from "node:assert/strict";
import { BufferPool } from "../../../target/store/buffer-pool.js";

test("large buffers are reused by size, small and sliced ones never, within a byte budget", () => {
  const pool = new BufferPool(3 * 1024 * 1024);
  const a = pool.take(1024 * 1024);
  pool.give(a);
  assert.equal(pool.take(1024 * 1024), a, "same size comes back");
  assert.notEqual(pool.take(1024 * 1024), a, "a buffer is handed out once");
  const small = pool.take(4096);
  pool.give(small);
  assert.notEqual(pool.take(4096), small, "small buffers are left to the allocator");
  const big = Buffer.allocUnsafeSlow(2 * 1024 * 1024);
  pool.give(big.subarray(0, 1024 * 1024));
  assert.notEqual(pool.take(1024 * 1024).buffer, big.buffer, "views into other memory are not pooled");
  const held = [pool.take(1 << 20), pool.take(1 << 20), pool.take(1 << 20), pool.take(1 << 20)];
  for (const b of held) pool.give(b);
  const back = [pool.take(1 << 20), pool.take(1 << 20), pool.take(1 << 20), pool.take(1 << 20)];
  assert.equal(back.filter((b) => held.includes(b)).length, 3, "no more than the budget is kept");
});
