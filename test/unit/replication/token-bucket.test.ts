import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TokenBucket, type Clock } from "../../../target/replication/token-bucket.js";

/** A clock that only moves when someone sleeps. */
function fakeClock(): Clock & { t: number } {
  const c = {
    t: 0,
    now: () => c.t,
    sleep: async (ms: number) => {
      c.t += ms;
    },
  };
  return c;
}

describe("TokenBucket", () => {
  it("caps the long-run rate", async () => {
    const clock = fakeClock();
    const b = new TokenBucket(1_000_000, 100_000, clock);
    for (let i = 0; i < 100; i++) await b.take(64 * 1024);
    // 6.5 MB at 1 MB/s, minus the initial burst: at least 6.4 s of (fake) time.
    const seconds = clock.t / 1000;
    assert.ok(seconds >= 6.4 && seconds <= 6.7, `took ${seconds}s`);
  });

  it("lets a burst through without waiting", async () => {
    const clock = fakeClock();
    const b = new TokenBucket(1000, 5000, clock);
    await b.take(5000);
    assert.equal(clock.t, 0);
  });

  it("serves requests larger than the burst", async () => {
    const clock = fakeClock();
    const b = new TokenBucket(1000, 1000, clock);
    await b.take(3000);
    await b.take(1000);
    assert.ok(clock.t >= 2900, `waited ${clock.t} ms`);
  });
});
