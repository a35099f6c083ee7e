import assert from "node:assert/strict";
import { test } from "node:test";
import { IoGate } from "../../../target/replication/io-gate.js";

test("a transition waits for entered I/O and holds new I/O back until it is done", async () => {
  const gate = new IoGate();
  const leave = gate.tryEnter();
  assert.ok(leave, "an open gate admits at once");
  const steps: string[] = [];
  const transition = gate.exclusive(async () => {
    steps.push("transition");
  });
  assert.equal(gate.tryEnter(), undefined, "closed while a transition waits");
  const later = gate.enter().then((l) => (steps.push("later I/O"), l));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(steps, [], "the transition waits for the I/O in flight");
  leave();
  await transition;
  (await later)();
  assert.deepEqual(steps, ["transition", "later I/O"]);
  assert.equal(gate.inFlight, 0);
});
