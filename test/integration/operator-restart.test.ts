// Restarting the operator changes nothing it already applied, and leader election lets only one
// of two replicas reconcile, with a quick hand-over when the leader stops.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { OperatorHarness, metricValue, type Child } from "./operator-harness.js";

let h: OperatorHarness;
const fast = ["--status-poll-steady-ms", "500", "--status-poll-active-ms", "500"];
/** Operator flags for leader election on the Lease `id` in the test namespace. */
const leaderElection = (id: string) => [
  "--leader-elect",
  "--leader-election-namespace",
  h.namespace,
  "--leader-election-id",
  id,
  ...fast,
];

before(async () => {
  h = await OperatorHarness.create("hst-restart");
});

after(async () => {
  await h?.cleanup();
});

interface ManagedChild extends Child {
  metadata: Child["metadata"] & { managedFields?: { manager: string; operation: string; time?: string }[] };
}

const children: [string, string, string][] = [
  ["v1", "ServiceAccount", "r-target"],
  ["rbac.authorization.k8s.io/v1", "Role", "r-target"],
  ["rbac.authorization.k8s.io/v1", "RoleBinding", "r-target"],
  ["v1", "Secret", "r-peer"],
  ["v1", "Secret", "r-chap"],
  ["v1", "Secret", "r-agent"],
  ["v1", "Service", "r-a"],
  ["v1", "Service", "r-b"],
  ["v1", "PersistentVolumeClaim", "r-a-data"],
  ["v1", "PersistentVolumeClaim", "r-b-data"],
  ["v1", "Pod", "r-a"],
  ["v1", "Pod", "r-b"],
  ["coordination.k8s.io/v1", "Lease", "r-witness"],
  ["policy/v1", "PodDisruptionBudget", "r"],
];
/** The PDB's budget follows the pair's state (one disruption only while both nodes are Working), so its
 * apply time may move for a real reason; for it only the object's identity is compared. */
const stateDependent = new Set(["PodDisruptionBudget"]);
/** Kinds the operator creates once and never applies. */
const createdOnce = new Set(["Secret"]);
/** Kinds no one but the operator writes: their resourceVersion must not move at all. */
const ownedOnly = new Set(["ServiceAccount", "Role", "RoleBinding", "Secret", "Service"]);

async function snapshot(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [apiVersion, kind, name] of children) {
    const c = (await h.child(apiVersion, kind, name)) as ManagedChild | undefined;
    assert.ok(c, `${kind} ${name} exists`);
    // The generated Secrets (peer, CHAP, agent token) are created once (an Update entry), everything
    // else applied; the Secrets' resourceVersions must not move (never rewritten).
    const operation = createdOnce.has(kind) ? "Update" : "Apply";
    const applied = c.metadata.managedFields?.find(
      (m) => m.manager === "hasan-operator" && m.operation === operation,
    );
    assert.ok(applied, `${kind} ${name} is written by hasan-operator (${operation})`);
    out.set(
      `${kind}/${name}`,
      `${c.metadata.uid} ${stateDependent.has(kind) ? "" : applied.time} ${ownedOnly.has(kind) ? c.metadata.resourceVersion : ""}`,
    );
  }
  return out;
}

test("no child churn on operator restart: same objects, same apply times, same resourceVersions", () =>
  h.guard(async () => {
    await h.startOperator(fast);
    await h.applyTarget("r", { capacity: "64Mi" });
    await h.waitFor(
      "all children",
      async () => {
        for (const [v, k, n] of children) if (!(await h.child(v, k, n))) return false;
        return true;
      },
      120_000,
    );
    // Let the pods settle (scheduling, PDB status) before taking the reference snapshot.
    await h.waitFor(
      "pods scheduled",
      async () => {
        const a = await h.child("v1", "Pod", "r-a");
        const b = await h.child("v1", "Pod", "r-b");
        return !!a?.spec?.nodeName && !!b?.spec?.nodeName;
      },
      120_000,
    );
    const before = await snapshot();
    await h.stopOperator();
    await h.startOperator(fast);
    const passes = await h.metric("hasan_operator_reconciles_total");
    await h.waitFor(
      "several reconcile passes after the restart",
      async () => (await h.metric("hasan_operator_reconciles_total")) >= passes + 4,
    );
    assert.deepEqual(await snapshot(), before);
  }));

test("with leader election only one replica reconciles; a stopping leader hands over at once", () =>
  h.guard(async () => {
    await h.stopOperator();
    const le = leaderElection("it-leader");
    const first = await h.startOperator(le);
    await h.waitFor(
      "first replica leads",
      async () => (await metricValue(first.port, "hasan_operator_leader")) === 1,
    );
    const second = await h.startOperator(le);
    await new Promise((r) => setTimeout(r, 3000)); // a few retry periods of the standby
    assert.equal(await metricValue(second.port, "hasan_operator_leader"), 0);
    assert.equal(
      await metricValue(second.port, "hasan_operator_reconciles_total"),
      0,
      "the standby does not reconcile",
    );
    const lease = await h.client.get<{ spec: { holderIdentity: string } }>(
      "coordination.k8s.io/v1",
      "Lease",
      h.namespace,
      "it-leader",
    );
    assert.equal(lease.spec.holderIdentity, first.identity);

    const t0 = Date.now();
    await h.stopOperator(first);
    await h.waitFor(
      "standby takes over",
      async () => (await metricValue(second.port, "hasan_operator_leader")) === 1,
      30_000,
    );
    const handOverMs = Date.now() - t0;
    assert.ok(handOverMs < 10_000, `hand-over took ${handOverMs} ms`);
    await h.applyTarget("after", { capacity: "64Mi" });
    await h.waitFor("the new leader reconciles", async () => h.child("v1", "Service", "after-a"));
  }));

test("a leader that cannot renew its lease (taken by someone else) exits", () =>
  h.guard(async () => {
    await h.stopOperator();
    const le = leaderElection("it-lost");
    const leader = await h.startOperator(le);
    await h.waitFor("leader", async () => (await metricValue(leader.port, "hasan_operator_leader")) === 1);
    const exited = new Promise<number | null>((resolve) =>
      leader.child.once("exit", (code) => resolve(code)),
    );
    const lease = await h.client.get<{
      apiVersion: string;
      kind: string;
      metadata: { name: string; namespace: string };
      spec: Record<string, unknown>;
    }>("coordination.k8s.io/v1", "Lease", h.namespace, "it-lost");
    const now = new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
    await h.client.replace({
      ...lease,
      spec: { ...lease.spec, holderIdentity: "intruder", renewTime: now, leaseDurationSeconds: 300 },
    });
    const t0 = Date.now();
    const code = await Promise.race([
      exited,
      new Promise<string>((r) => setTimeout(() => r("still running"), 40_000)),
    ]);
    assert.equal(code, 1, "exits with status 1 once the renew deadline passed");
    const ms = Date.now() - t0;
    assert.ok(ms >= 8_000, `gave up after ${ms} ms, before the 10 s renew deadline`);
  }));
