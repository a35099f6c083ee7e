import { test } from "node:test";
import assert from "node:assert/strict";
import { fuzzFraming, fuzzLogin, fuzzServer } from "./support/fuzz.js";

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
