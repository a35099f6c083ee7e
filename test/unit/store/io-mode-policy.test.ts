import { test } from "node:test";
import assert from "node:assert/strict";
import { IoModePolicy } from "../../../target/store/io-mode-policy.js";

const options = { maxInlineBytes: 65536, slowMs: 0.2, window: 8, slowPerWindow: 2, backoffMs: 100 };

test("small transfers run inline, large ones on the pool", () => {
  const p = new IoModePolicy(options);
  assert.equal(p.inline(4096, 0), true);
  assert.equal(p.inline(65536, 0), true);
  assert.equal(p.inline(65537, 0), false);
  assert.equal(new IoModePolicy(options, false).inline(512, 0), false, "disabled: always the pool");
});

test("a lone slow call is ignored; a window with many slow calls moves I/O to the pool for a while", () => {
  const p = new IoModePolicy(options);
  p.record(5, 0);
  for (let i = 0; i < 7; i++) p.record(0.01, 1);
  assert.equal(p.inline(4096, 2), true, "one slow call in a window");
  for (let i = 0; i < 6; i++) p.record(0.01, 3);
  p.record(3, 4);
  p.record(3, 4);
  assert.equal(p.backingOff(5), true);
  assert.equal(p.inline(4096, 50), false);
  assert.equal(p.inline(4096, 104), true, "tried again after the back-off");
});
