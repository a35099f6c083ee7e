import { test } from "node:test";
import assert from "node:assert/strict";
import { KeyedLock } from "../../../operator/kit/keyed-lock.js";

const tick = () => new Promise((r) => setTimeout(r, 5));

test("sections of one key run one at a time, in call order; other keys do not wait", async () => {
  const lock = new KeyedLock();
  const log: string[] = [];
  const section = (key: string, name: string) =>
    lock.run(key, async () => {
      log.push(`${name} in`);
      await tick();
      log.push(`${name} out`);
    });
  await Promise.all([section("pv/x", "1"), section("pv/x", "2"), section("pv/y", "3")]);
  const at = (e: string) => log.indexOf(e);
  assert.ok(at("1 out") < at("2 in"), `2 waits for 1: ${log.join(", ")}`);
  assert.ok(at("3 in") < at("1 out"), `3 (another key) runs beside 1: ${log.join(", ")}`);
  assert.equal(log.length, 6);
  assert.equal(lock.size, 0, "keys are forgotten once idle");
});

test("a section that throws rejects its caller and does not block the next one", async () => {
  const lock = new KeyedLock();
  await assert.rejects(
    lock.run("k", () => Promise.reject(new Error("boom"))),
    /boom/,
  );
  assert.equal(await lock.run("k", () => Promise.resolve(7)), 7);
});
