import { test } from "node:test";
import assert from "node:assert/strict";
import { Code, CsiError } from "../../../operator/csi/errors.js";
import { VolumeLocks } from "../../../operator/csi/locks.js";

const isAborted = (e: unknown) => e instanceof CsiError && e.code === Code.ABORTED;

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

test("a call that finds its volume busy with another call is ABORTED at once", async () => {
  const locks = new VolumeLocks();
  const g = gate();
  const first = locks.run("v", () => g.opened);
  await assert.rejects(
    locks.run("v", async () => "second"),
    isAborted,
  );
  assert.equal(await locks.run("other", async () => "another volume"), "another volume");
  g.open();
  await first;
  assert.equal(await locks.run("v", async () => "after"), "after");
});

test("a call that finds its volume busy with background work (session repair) waits for it instead of failing", async () => {
  const locks = new VolumeLocks();
  const g = gate();
  const order: string[] = [];
  const repair = locks.runBackground("v", async () => {
    await g.opened;
    order.push("repair");
  });
  const publish = locks.run("v", async () => {
    order.push("publish");
    return "published";
  });
  // a second call arriving meanwhile still gets ABORTED once the first holds the volume
  const racing = locks.run("v", async () => "racing");
  g.open();
  await repair;
  assert.equal(await publish, "published");
  const outcomes = await Promise.allSettled([racing]);
  assert.equal(outcomes[0]!.status, "rejected");
  assert.ok(isAborted((outcomes[0] as PromiseRejectedResult).reason));
  assert.deepEqual(order, ["repair", "publish"]);
});

test("background work skips a volume busy with a call (ABORTED), and never waits", async () => {
  const locks = new VolumeLocks();
  const g = gate();
  const call = locks.run("v", () => g.opened);
  await assert.rejects(
    locks.runBackground("v", async () => "repair"),
    isAborted,
  );
  g.open();
  await call;
  assert.equal(await locks.runBackground("v", async () => "repair"), "repair");
});
