import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ActiveExtents } from "../../../target/replication/active-extents.js";

describe("ActiveExtents (which dirty-bitmap regions have mutations in flight or recently)", () => {
  it("bounds a write by whole extents, clipped at the end of the device", () => {
    const x = new ActiveExtents(16, 40);
    assert.deepEqual(x.bounds(3, 3), [0, 15]);
    assert.deepEqual(x.bounds(15, 16), [0, 31]);
    assert.deepEqual(x.bounds(33, 39), [32, 39]);
  });

  it("an extent stays active while a mutation is in flight, however long ago it started", () => {
    const x = new ActiveExtents(16, 64);
    x.enter(0, 15, 1000);
    assert.equal(x.has(7), true);
    assert.equal(x.has(16), false);
    assert.deepEqual(x.idle(1_000_000, 1500), [], "in flight: never idle");
    x.leave(0, 15, 2000);
    assert.deepEqual(x.idle(3000, 1500), [], "idle for only 1 s");
    const [idle] = x.idle(3501, 1500);
    assert.deepEqual(idle, { extent: 0, lastUsed: 2000 });
    assert.deepEqual(
      x.forgetIfIdleSince(idle!),
      Array.from({ length: 16 }, (_, i) => i),
      "every region of the idle extent",
    );
    assert.equal(x.has(7), false);
  });

  it("an idle extent written again before it is forgotten stays active (its data may not be durable yet)", () => {
    const x = new ActiveExtents(16, 64);
    x.enter(0, 0, 0);
    x.leave(0, 0, 0);
    const [idle] = x.idle(2000, 1500);
    x.enter(0, 0, 2100); // a write lands while the flushes of both nodes run
    assert.equal(x.forgetIfIdleSince(idle!), null, "in flight");
    x.leave(0, 0, 2200);
    assert.equal(x.forgetIfIdleSince(idle!), null, "used since");
    assert.equal(x.has(0), true);
  });

  it("a mutation spanning two extents holds both; allRegions lists every region of the active ones", () => {
    const x = new ActiveExtents(4, 10);
    x.enter(3, 4, 0);
    assert.deepEqual(
      [...x.allRegions()].sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
    x.enter(8, 9, 0);
    assert.deepEqual(
      [...x.allRegions()].sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      "the last extent is clipped to the device",
    );
    x.clear();
    assert.deepEqual([...x.allRegions()], []);
  });

  it("refuses a nonsensical extent size", () => {
    assert.throws(() => new ActiveExtents(0, 10), /invalid extent size/);
  });
});
