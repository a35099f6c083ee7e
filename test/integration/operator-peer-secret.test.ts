// The generated peer Secret against the real API server: created once, never overwritten by
// reconcile passes, drift checks or a restart, and one value when creators race (reconcilers in
// one process, then two operators under two leader-election Leases, whose pods then pair up).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { OperatorHarness, type Child } from "./operator-harness.js";
import { HASanTargetSchema, type HASanTarget } from "../../operator/api/target.js";
import { ensurePeerSecret } from "../../operator/reconcile/peer-secret.js";
import { KubeClient } from "../../operator/kit/kube-client.js";

let h: OperatorHarness;
const driftCheckMs = 1000;
const fast = [
  "--status-poll-steady-ms",
  "500",
  "--status-poll-active-ms",
  "500",
  "--drift-check-ms",
  String(driftCheckMs),
];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const b64 = (s: string) => Buffer.from(s).toString("base64");

before(async () => {
  h = await OperatorHarness.create("hst-peersecret");
});

after(async () => {
  await h?.cleanup();
});

async function peerSecret(name: string): Promise<Child | undefined> {
  return await h.child("v1", "Secret", `${name}-peer`);
}

async function podSecretName(pod: string): Promise<string | undefined> {
  const p = (await h.child("v1", "Pod", pod)) as
    (Child & { spec: { volumes?: { name: string; secret?: { secretName: string } }[] } }) | undefined;
  return p?.spec.volumes?.find((v) => v.name === "peer")?.secret?.secretName;
}

test("an existing generated peer Secret is never overwritten: not by reconcile passes, drift checks or an operator restart", () =>
  h.guard(async () => {
    const t = await h.applyTarget("keep", { capacity: "64Mi" });
    // A value the operator did not choose, present before the operator first sees the target.
    const existing = await h.client.create<{
      apiVersion: string;
      kind: string;
      metadata: Record<string, unknown> & { resourceVersion?: string };
      data: Record<string, string>;
    }>({
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: "keep-peer",
        namespace: h.namespace,
        ownerReferences: [
          { apiVersion: t.apiVersion, kind: t.kind, name: "keep", uid: t.metadata.uid, controller: true },
        ],
      },
      data: { secret: b64("the value both pods already hold") },
    });
    const rv = existing.metadata.resourceVersion;
    await h.startOperator(fast);
    await h.waitFor(
      "both pods",
      async () => (await podSecretName("keep-a")) && (await podSecretName("keep-b")),
    );
    assert.equal(await podSecretName("keep-a"), "keep-peer");
    assert.equal(await podSecretName("keep-b"), "keep-peer");
    const passes = await h.metric("hasan_operator_reconciles_total");
    await h.waitFor(
      "passes over several drift checks",
      async () => (await h.metric("hasan_operator_reconciles_total")) >= passes + 6,
    );
    await sleep(3 * driftCheckMs);
    let s = await peerSecret("keep");
    assert.equal(s?.metadata.resourceVersion, rv, "never written by reconcile passes or drift checks");
    assert.equal(s?.data?.secret, b64("the value both pods already hold"));

    await h.stopOperator();
    await h.startOperator(fast);
    const again = await h.metric("hasan_operator_reconciles_total");
    await h.waitFor(
      "passes after the restart",
      async () => (await h.metric("hasan_operator_reconciles_total")) >= again + 6,
    );
    s = await peerSecret("keep");
    assert.equal(s?.metadata.resourceVersion, rv, "never written after a restart");
    assert.equal(s?.data?.secret, b64("the value both pods already hold"));
  }));

test("reconcilers racing to create the peer Secret of a new target (8 at once, 8 clients) end with one value", () =>
  h.guard(async () => {
    await h.stopOperator();
    const raw = await h.applyTarget("race", { capacity: "64Mi" });
    const t = HASanTargetSchema.parse(raw) as HASanTarget;
    const clients = Array.from({ length: 8 }, () =>
      KubeClient.fromOptions({ kubeconfig: h.cluster.kubeconfig }),
    );
    let n = 0;
    const results = await Promise.all(
      clients.map((c) => ensurePeerSecret(c, t, () => b64(`value of reconciler ${++n}`))),
    );
    for (const c of clients) c.close();
    const created = results.filter((r) => r.outcome === "created");
    assert.equal(created.length, 1, JSON.stringify(results));
    assert.ok(results.every((r) => ["created", "lostRace", "existing"].includes(r.outcome)));
    const s = await peerSecret("race");
    assert.match(Buffer.from(s!.data!.secret!, "base64").toString(), /^value of reconciler \d$/);
    // And then nobody writes it again.
    const rv = s!.metadata.resourceVersion;
    for (const c of [KubeClient.fromOptions({ kubeconfig: h.cluster.kubeconfig })]) {
      assert.equal((await ensurePeerSecret(c, t)).outcome, "existing");
      c.close();
    }
    assert.equal((await peerSecret("race"))!.metadata.resourceVersion, rv);
  }));

test("two operators under two leader-election Leases on a new target: one peer Secret value, written once, and the pair forms", () =>
  h.guard(async () => {
    await h.stopOperator();
    const le = (id: string) => [
      "--leader-elect",
      "--leader-election-namespace",
      h.namespace,
      "--leader-election-id",
      id,
    ];
    const one = await h.startOperator([...le("it-one"), ...fast]);
    const two = await h.startOperator([...le("it-two"), ...fast]);
    for (const o of [one, two])
      await h.waitFor(`${o.identity} leads its own Lease`, async () => {
        const text = await (await fetch(`http://127.0.0.1:${o.port}/metrics`)).text();
        return /^hasan_operator_leader 1$/m.test(text);
      });
    await h.applyTarget("two", { capacity: "64Mi" });
    const s = await h.waitFor("peer Secret", () => peerSecret("two"));
    const rv = s.metadata.resourceVersion;
    await h.waitFor(
      "both pods",
      async () => (await podSecretName("two-a")) && (await podSecretName("two-b")),
    );
    // Both pods mount the one Secret, and the pair authenticates: both hold the same value.
    await h.waitFor(
      "Synchronized",
      async () =>
        (await h.target("two"))?.status?.conditions?.some(
          (c) => c.type === "Synchronized" && c.status === "True",
        ),
      180_000,
    );
    await sleep(4 * driftCheckMs);
    const later = await peerSecret("two");
    assert.equal(later?.metadata.resourceVersion, rv, "the Secret was written once");
    assert.equal(later?.data?.secret, s.data?.secret);
    const log = h.operatorLog();
    assert.equal((log.match(/created the peer Secret/g) ?? []).length, 1, "one operator created it");
  }));
