import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { nextRun, parseSchedule, type VerifySchedule } from "../../../operator/api/verify-schedule.js";
import { HASanTargetSpecSchema } from "../../../operator/api/spec.js";

function parsed(text: string): VerifySchedule {
  const s = parseSchedule(text);
  if ("error" in s) assert.fail(`${text}: ${s.error}`);
  return s;
}

const at = (iso: string) => new Date(iso);
const next = (text: string, after: string) => nextRun(parsed(text), at(after))?.toISOString();

describe("spec.verify.schedule", () => {
  it("intervals: units add up and count from the given time", () => {
    assert.deepEqual(parsed("24h"), { kind: "interval", ms: 86_400_000 });
    assert.deepEqual(parsed("1h30m"), { kind: "interval", ms: 5_400_000 });
    assert.deepEqual(parsed("7d"), { kind: "interval", ms: 7 * 86_400_000 });
    assert.equal(next("24h", "2026-12-06T15:00:00.000Z"), "2026-12-07T15:00:00.000Z");
    assert.match((parseSchedule("30s") as { error: string }).error, /shorter than one minute/);
  });

  it("cron: the next matching minute strictly after, in UTC", () => {
    assert.equal(next("0 3 * * *", "2026-12-06T15:00:00.000Z"), "2026-12-07T03:00:00.000Z");
    assert.equal(next("0 3 * * *", "2026-12-06T02:59:59.000Z"), "2026-12-06T03:00:00.000Z");
    assert.equal(next("0 3 * * *", "2026-12-06T03:00:00.000Z"), "2026-12-07T03:00:00.000Z", "strictly after");
    assert.equal(next("*/15 * * * *", "2026-12-06T15:07:10.000Z"), "2026-12-06T15:15:00.000Z");
    // 2026-12-06 is a Sunday: weekly on Sunday (0 and 7 both mean Sunday).
    assert.equal(next("30 2 * * 0", "2026-12-06T03:00:00.000Z"), "2026-12-13T02:30:00.000Z");
    assert.equal(next("30 2 * * 7", "2026-12-06T03:00:00.000Z"), "2026-12-13T02:30:00.000Z");
    assert.equal(next("0 0 1 1,7 *", "2026-12-06T00:00:00.000Z"), "2027-01-01T00:00:00.000Z");
    assert.equal(next("0 12 10-12 * *", "2026-12-06T00:00:00.000Z"), "2026-12-10T12:00:00.000Z");
    // Both day fields restricted: either matches (the 15th, or the next Monday, 2026-12-07).
    assert.equal(next("0 0 15 * 1", "2026-12-06T12:00:00.000Z"), "2026-12-07T00:00:00.000Z");
    // Leap day: four years ahead at most.
    assert.equal(next("0 0 29 2 *", "2026-12-06T00:00:00.000Z"), "2028-02-29T00:00:00.000Z");
  });

  it("wrong expressions are refused with the reason, at the spec's boundary too", () => {
    for (const [text, why] of [
      ["60 * * * *", /minute field "60": 60 is outside 0-59/],
      ["0 24 * * *", /hour/],
      ["0 0 31 2 *", /never matches/],
      ["* * * *", /neither an interval/],
      ["daily", /neither an interval/],
      ["0 0 * * MON", /cannot read "MON"/],
      ["5-1 * * * *", /outside/],
    ] as const) {
      const r = parseSchedule(text);
      assert.ok("error" in r, text);
      assert.match(r.error, why);
      const spec = HASanTargetSpecSchema.safeParse({ capacity: "1Gi", verify: { schedule: text } });
      assert.equal(spec.success, false, text);
    }
    assert.ok(
      HASanTargetSpecSchema.safeParse({ capacity: "1Gi", verify: { schedule: "0 3 * * 0" } }).success,
    );
    assert.ok(
      HASanTargetSpecSchema.safeParse({
        capacity: "1Gi",
        verify: { schedule: "24h", rateLimit: "100Mi", source: "b" },
      }).success,
    );
    assert.equal(
      HASanTargetSpecSchema.safeParse({ capacity: "1Gi", verify: { source: "c" } }).success,
      false,
    );
  });
});
