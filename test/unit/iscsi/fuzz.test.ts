import { test } from "node:test";
import assert from "node:assert/strict";
import { fuzzFraming, fuzzLogin, fuzzServer } from "./support/fuzz.js";
import { fuzzLimits } from "./support/fuzz-limits.js";

// Fixed seeds keep failures reproducible; `make fuzz` runs many more cases with fresh seeds.

test("PDU framing survives thousands of random and mutated streams", () => {
  const pdus = fuzzFraming(0x5eed1, 3000);
  assert.ok(pdus > 3000, `framed ${pdus} PDUs`);
});

test("the login state machine never throws, fails with defined codes, never skips CHAP", () => {
  const r = fuzzLogin(0x5eed2, 5000);
  assert.ok(r.completed > 50, `some logins complete (${r.completed})`);
  assert.ok(r.failed > 1000, `most random logins fail (${r.failed})`);
});

test("a live server survives random PDUs on logged-in sessions", async () => {
  await fuzzServer(0x5eed3, 24, 400);
});

test("hostile clients (half-open oversized logins, write floods without data, abrupt closes) never take the target past its write memory or connection limits, leak nothing, and good clients' writes read back", async () => {
  const r = await fuzzLimits(0x5eed4, 4, 80);
  assert.ok(r.goodWrites >= 32, `good clients wrote ${r.goodWrites} blocks`);
  // the run reached the limits it checks: otherwise it proves nothing
  assert.ok(r.writeMemoryRefusals > 0, "hostile writes reached the target's write memory limit");
  assert.ok(r.peakWriteMemory >= 6 * 1024 * 1024, `write memory peaked at ${r.peakWriteMemory}`);
  assert.ok(r.peakConnections >= 30, `connections peaked at ${r.peakConnections} of 40`);
  assert.ok(r.closedByTarget > 0, "the target closed hostile connections");
});
