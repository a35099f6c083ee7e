import { test } from "node:test";
import assert from "node:assert/strict";
import {
  installedOperatorConflicts,
  leaseOf,
  type DeploymentView,
  type LeaseView,
} from "../../../operator/scripts/installed-operator.js";

const OWN = "hasan-system/hasan-operator-local";
const now = new Date("2026-03-01T12:00:00Z");
const chart = (replicas: number, args: string[] = []): DeploymentView => ({
  metadata: {
    name: "hasan-operator",
    namespace: "hasan",
    labels: { "app.kubernetes.io/name": "hasan-operator" },
  },
  spec: {
    replicas,
    template: {
      spec: { containers: [{ args: ["--leader-elect", "--leader-election-namespace=hasan", ...args] }] },
    },
  },
  status: { replicas },
});
const lease = (key: string, holder: string, renewedSecondsAgo: number): LeaseView => {
  const [namespace, name] = key.split("/") as [string, string];
  return {
    metadata: { namespace, name },
    spec: {
      holderIdentity: holder,
      leaseDurationSeconds: 15,
      renewTime: new Date(now.getTime() - renewedSecondsAgo * 1000).toISOString(),
    },
  };
};

test("operator-up with the chart's operator Deployment running is refused, saying how to stop it", () => {
  const [reason, ...rest] = installedOperatorConflicts([chart(1)], [], OWN, now);
  assert.equal(rest.length, 0);
  assert.match(
    reason!,
    /runs as Deployment hasan\/hasan-operator \(1 replica, leader Lease hasan\/hasan-operator\)/,
  );
  assert.match(reason!, /kubectl -n hasan scale deployment hasan-operator --replicas=0/);
});

test("operator-up with the chart's operator scaled to 0 but its Lease renewed 3 s ago is refused; once expired it may run", () => {
  const d = chart(0, ["--leader-election-id=custom-id"]);
  assert.equal(leaseOf(d), "hasan/custom-id");
  const held = installedOperatorConflicts(
    [d],
    [lease("hasan/custom-id", "hasan-operator-7d9-x", 3)],
    OWN,
    now,
  );
  assert.equal(held.length, 1);
  assert.match(held[0]!, /Lease hasan\/custom-id is held by hasan-operator-7d9-x \(renewed 3s ago\)/);
  assert.deepEqual(installedOperatorConflicts([d], [lease("hasan/custom-id", "x", 120)], OWN, now), []);
});

test("operator-up finding a Lease named like the chart's held without any Deployment (an operator run elsewhere) is refused", () => {
  assert.equal(
    installedOperatorConflicts([], [lease("ops/hasan-operator", "someone", 1)], OWN, now).length,
    1,
  );
});

test("operator-up restarting itself (its own Lease held) and unrelated Leases are no conflict", () => {
  const leases = [
    lease(OWN, "host_1234", 1),
    lease("kube-node-lease/node-a", "node-a", 1),
    lease("kube-system/kube-scheduler", "x", 1),
  ];
  assert.deepEqual(installedOperatorConflicts([], leases, OWN, now), []);
});
