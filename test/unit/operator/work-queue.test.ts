import { test } from "node:test";
import assert from "node:assert/strict";
import { Backoff } from "../../../operator/kit/backoff.js";
import { WorkQueue } from "../../../operator/kit/work-queue.js";

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("backoff doubles per key from 1 s to a 30 s cap and resets after success", () => {
  const b = new Backoff(1000, 30_000);
  assert.deepEqual(
    Array.from({ length: 7 }, () => b.next("x")),
    [1000, 2000, 4000, 8000, 16000, 30000, 30000],
  );
  assert.equal(b.next("y"), 1000, "keys are independent");
  b.forget("x");
  assert.equal(b.next("x"), 1000);
});

test("a key is processed by one worker at a time; changes during a pass cause exactly one more pass", async () => {
  let running = 0;
  let maxRunning = 0;
  let passes = 0;
  let release: () => void = () => {};
  const q = new WorkQueue(
    async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      passes++;
      if (passes === 1) await new Promise<void>((r) => (release = r));
      running--;
    },
    { concurrency: 4 },
  );
  q.start();
  q.add("ns/a");
  await until(() => passes === 1, "first pass");
  for (let i = 0; i < 5; i++) q.add("ns/a"); // coalesce into one follow-up pass
  release();
  await until(() => passes === 2 && running === 0, "second pass");
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(passes, 2);
  assert.equal(maxRunning, 1);
  await q.stop();
});

test("different keys run in parallel up to the worker count", async () => {
  let running = 0;
  let maxRunning = 0;
  const gate: (() => void)[] = [];
  const q = new WorkQueue(
    async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise<void>((r) => gate.push(r));
      running--;
    },
    { concurrency: 2 },
  );
  q.start();
  for (const k of ["a", "b", "c"]) q.add(k);
  await until(() => running === 2, "two in flight");
  assert.equal(q.length, 1);
  while (gate.length || running) {
    gate.shift()?.();
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(maxRunning, 2);
  await q.stop();
});

test("failures retry with growing per-key backoff; success resets it", async () => {
  const times: number[] = [];
  const errors: number[] = [];
  const q = new WorkQueue(
    async () => {
      times.push(Date.now());
      if (times.length < 4) throw new Error("boom");
    },
    { backoff: new Backoff(20, 1000), onError: (_k, _e, delay) => errors.push(delay) },
  );
  q.start();
  q.add("k");
  await until(() => times.length === 4, "four attempts");
  assert.deepEqual(errors, [20, 40, 80]);
  for (let i = 1; i < 4; i++) assert.ok(times[i]! - times[i - 1]! >= errors[i - 1]! - 2, `gap ${i}`);
  await q.stop();
});

test("requeue-after calls the handler again later; an earlier request wins over a later one", async () => {
  let passes = 0;
  const q = new WorkQueue(async () => {
    passes++;
    return passes === 1 ? { requeueAfterMs: 30 } : {};
  });
  q.start();
  q.add("k");
  await until(() => passes === 2, "requeued pass");
  q.addAfter("k", 60_000);
  q.addAfter("k", 10);
  await until(() => passes === 3, "earlier addAfter");
  await q.stop();
});
