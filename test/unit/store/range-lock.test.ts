import { test } from "node:test";
import assert from "node:assert/strict";
import { RangeLock } from "../../../target/store/range-lock.js";

test("disjoint ranges are held at once; overlapping ones wait in arrival order", async () => {
  const lock = new RangeLock();
  const order: string[] = [];
  const r1 = await lock.acquire(0, 100);
  const r2 = await lock.acquire(100, 100); // disjoint: granted immediately
  const p3 = lock.acquire(50, 100).then((rel) => (order.push("3"), rel));
  const p4 = lock.acquire(90, 20).then((rel) => (order.push("4"), rel));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [], "overlapping acquirers wait");
  r1();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [], "still blocked by the second holder");
  r2();
  const r3 = await p3;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ["3"], "the later overlapping acquirer waits for the earlier one");
  r3();
  (await p4)();
  assert.deepEqual(order, ["3", "4"]);
  assert.equal(lock.size, 0);
});

test("with() releases on failure", async () => {
  const lock = new RangeLock();
  await assert.rejects(
    lock.with(0, 10, async () => {
      throw new Error("boom");
    }),
    /boom/,
  );
  assert.equal(lock.size, 0);
  assert.equal(await lock.with(0, 10, async () => 5), 5);
});
