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

test("tryAcquire takes a free range at once, refuses an overlapping one, and waiters queue behind it", async () => {
  const lock = new RangeLock();
  const r1 = lock.tryAcquire(0, 100);
  assert.ok(r1, "a free range is granted synchronously");
  assert.equal(lock.tryAcquire(50, 10), undefined, "an overlapping range is not");
  const r2 = lock.tryAcquire(100, 10);
  assert.ok(r2, "a disjoint one is");
  let got = false;
  const p = lock.acquire(99, 2).then((rel) => ((got = true), rel));
  await new Promise((r) => setImmediate(r));
  assert.equal(got, false, "acquire waits for both holders it overlaps");
  assert.equal(lock.tryAcquire(0, 1), undefined, "the waiter's range is held too, in arrival order");
  r1();
  await new Promise((r) => setImmediate(r));
  assert.equal(got, false, "still held by the second one");
  assert.equal(lock.size, 2);
  r2();
  (await p)();
  assert.equal(got, true);
  assert.equal(lock.size, 0);
});
