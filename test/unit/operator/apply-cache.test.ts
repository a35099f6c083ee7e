import { test } from "node:test";
import assert from "node:assert/strict";
import { ApplyCache } from "../../../operator/reconcile/apply-cache.js";
import type { KubeObject } from "../../../operator/reconcile/desired-children.js";

const svc = (port: number): KubeObject => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name: "s", namespace: "n" },
  spec: { ports: [{ port }] },
});

test("unchanged objects are never re-applied by age alone; changed, missing or forgotten ones are", () => {
  let now = 0;
  const c = new ApplyCache(60_000, () => now);
  assert.equal(c.needsApply("uid", svc(1)), true);
  c.recordApplied("uid", svc(1));
  assert.equal(c.needsApply("uid", svc(1)), false);
  assert.equal(c.needsApply("uid", svc(2)), true, "content changed");
  assert.equal(c.needsApply("uid", svc(1), true), true, "deleted behind our back");
  // A status pass long after the last apply sends nothing: only the periodic drift check (which
  // reads the live object and forgets it when it drifted) may cause a re-apply.
  now = 10 * 60_000;
  assert.equal(c.needsApply("uid", svc(1)), false, "age alone is no reason to write");
  c.forget("uid", svc(1));
  assert.equal(c.needsApply("uid", svc(1)), true, "drifted");
});

test("periodic passes are due on a new generation or after the resync period", () => {
  let now = 0;
  const c = new ApplyCache(60_000, () => now);
  assert.equal(c.periodicDue("uid", 1), true);
  c.recordPeriodic("uid", 1);
  assert.equal(c.periodicDue("uid", 1), false);
  assert.equal(c.periodicDue("uid", 2), true);
  now = 61_000;
  assert.equal(c.periodicDue("uid", 1), true);
});

test("an object whose content changed since its last apply is reported changed (a read back cannot show a dropped field)", () => {
  const c = new ApplyCache();
  assert.equal(c.changedSinceApplied("uid", svc(1)), false, "nothing applied yet: the read back decides");
  c.recordApplied("uid", svc(1));
  assert.equal(c.changedSinceApplied("uid", svc(1)), false);
  assert.equal(c.changedSinceApplied("uid", svc(2)), true);
  c.forget("uid", svc(1));
  assert.equal(c.changedSinceApplied("uid", svc(2)), false);
});
