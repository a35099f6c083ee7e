import { test } from "node:test";
import assert from "node:assert/strict";
import { IoModePolicy } from "../../../target/store/io-mode-policy.js";

const options = {
  maxInlineBytes: 65536,
  slowMs: 0.2,
  window: 8,
  slowPerWindow: 2,
  backoffMs: 100,
  maxBackoffMs: 350,
};

test("small transfers run inline, large ones on the pool", () => {
  const p = new IoModePolicy(options);
  assert.equal(p.inline(4096, 0), true);
  assert.equal(p.inline(65536, 0), true);
  assert.equal(p.inline(65537, 0), false);
  assert.equal(new IoModePolicy(options, false).inline(512, 0), false, "disabled: always the pool");
});

test("a lone slow call is ignored; repeated slow calls move I/O to the pool at once", () => {
  const p = new IoModePolicy(options);
  p.record(5, 0);
  for (let i = 0; i < 7; i++) p.record(0.01, 1);
  assert.equal(p.inline(4096, 2), true, "one slow call in a window");
  p.record(3, 4);
  assert.equal(p.inline(4096, 4), true);
  p.record(3, 4);
  assert.equal(p.backingOff(5), true, "the second slow call in the window switches immediately");
  assert.equal(p.inline(4096, 50), false);
  assert.equal(p.inline(4096, 104), true, "tried again after the back-off");
});

test("the back-off doubles while probes stay slow and resets after a good window", () => {
  const p = new IoModePolicy(options);
  const slowPair = (now: number) => {
    p.record(3, now);
    p.record(3, now);
  };
  slowPair(0);
  assert.equal(p.inline(4096, 99), false);
  slowPair(100); // probe at 100 is slow again: back-off 200
  assert.equal(p.inline(4096, 299), false);
  assert.equal(p.inline(4096, 300), true);
  slowPair(300); // back-off 350 (capped)
  assert.equal(p.inline(4096, 649), false);
  assert.equal(p.inline(4096, 650), true);
  for (let i = 0; i < 8; i++) p.record(0.01, 650);
  slowPair(700);
  assert.equal(p.inline(4096, 800), true, "after a good window the back-off is short again");
});
