// What a HASanTarget can reach, against the real API server: a PersistentVolume it did not create
// (refused, untouched, kept on deletion), images outside the operator's allow-list (no pods),
// and the pair's NetworkPolicies (accepted, kept applied, gone with the target). The local
// cluster enforces no NetworkPolicy: what the policies admit is decided in the unit tests.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { OperatorHarness, type Child } from "./operator-harness.js";
import { KubeApiError } from "../../operator/kit/kube-client.js";

let h: OperatorHarness;
const driftCheckMs = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let foreignPv = "";

before(async () => {
  h = await OperatorHarness.create("hst-reach");
  foreignPv = `someone-elses-${h.namespace}`;
  await h.startOperator([
    "--drift-check-ms",
    String(driftCheckMs),
    "--operator-namespace",
    "hasan-system",
    "--operator-pod-labels",
    "app.kubernetes.io/name=hasan-operator,app.kubernetes.io/instance=hasan",
  ]);
});

after(async () => {
  await h?.client.delete("v1", "PersistentVolume", undefined, foreignPv).catch(() => undefined);
  await h?.cleanup();
});

const owned = (c: Child | undefined, uid: string) =>
  !!c && (c.metadata.ownerReferences ?? []).some((r) => r.uid === uid && r.controller === true);

async function readyCondition(name: string) {
  return (await h.target(name))?.status?.conditions?.find((c) => c.type === "Ready");
}

test("a PersistentVolume of the exported name that someone else made is refused, left untouched and kept when the target goes", () =>
  h.guard(async () => {
    await h.client.create({
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name: foreignPv, labels: { owner: "another-team" } },
      spec: {
        capacity: { storage: "1Gi" },
        accessModes: ["ReadWriteOnce"],
        persistentVolumeReclaimPolicy: "Retain",
        hostPath: { path: "/srv/another-team" },
      },
    });
    // The control plane's PV controller writes the new PV's status (phase Available) once; the
    // snapshot is taken after that, so any later write is someone else's.
    const before = await h.waitFor("the PV Available", async () => {
      const pv = (await h.child("v1", "PersistentVolume", foreignPv, true)) as
        (Child & { status?: { phase?: string } }) | undefined;
      return pv?.status?.phase === "Available" ? pv : undefined;
    });
    const t = await h.applyTarget("grab", {
      capacity: "64Mi",
      export: { persistentVolume: { name: foreignPv, reclaimPolicy: "Delete" } },
    });
    const ready = await h.waitFor("Ready=False InvalidSpec naming the PV", async () => {
      const c = await readyCondition("grab");
      return c?.reason === "InvalidSpec" ? c : undefined;
    });
    assert.equal(ready.status, "False");
    assert.match(
      ready.message,
      new RegExp(
        `spec\\.export\\.persistentVolume\\.name: PersistentVolume ${foreignPv} exists and belongs to something else`,
      ),
    );
    // The rest of the pair is made as usual; only the PV is left alone.
    await h.waitFor("pods of the target", async () =>
      owned(await h.child("v1", "Pod", "grab-a"), t.metadata.uid),
    );
    await sleep(3 * driftCheckMs); // several drift checks and prunes go by
    const during = await h.child("v1", "PersistentVolume", foreignPv, true);
    assert.equal(during?.metadata.resourceVersion, before.metadata.resourceVersion, "never written");
    assert.deepEqual(during?.metadata.labels, before.metadata.labels);
    assert.deepEqual(during?.spec, before.spec);
    assert.equal((await h.target("grab"))?.status?.persistentVolumeName, undefined);

    await h.client.delete("hasan.dev/v1alpha1", "HASanTarget", h.namespace, "grab");
    await h.waitFor("target gone", async () => !(await h.target("grab")), 120_000);
    const afterDelete = await h.child("v1", "PersistentVolume", foreignPv, true);
    assert.ok(afterDelete && !afterDelete.metadata.deletionTimestamp, "reclaimPolicy Delete left it");
    assert.equal(afterDelete.metadata.resourceVersion, before.metadata.resourceVersion);
    assert.deepEqual(afterDelete.spec, before.spec);
  }));

test("the bad peers of spec.network.iscsiFrom are refused by the API server with the rule", async () => {
  for (const [peer, message] of [
    [{ ipBlock: { cidr: "10.0.0.0/8" }, podSelector: {} }, /ipBlock goes alone/],
    [{ ipBlock: { cidr: "10.0.0.1/8" } }, /no bits set past its prefix/],
    [{ ipBlock: { cidr: "10.0.0.0/16", except: ["10.1.0.0/24"] } }, /strictly inside cidr/],
    [{ podSelector: { matchExpressions: [{ key: "a", operator: "In" }] } }, /In and NotIn need values/],
  ] as const) {
    try {
      await h.applyTarget("bad-peer", { capacity: "64Mi", network: { iscsiFrom: [peer] } });
      assert.fail(`accepted ${JSON.stringify(peer)}`);
    } catch (e) {
      assert.ok(e instanceof KubeApiError && e.code === 422, String(e));
      assert.match(e.message, message);
    }
  }
});

test("the pair's NetworkPolicies are accepted, re-applied when changed and follow spec.network; its PV carries its uid", () =>
  h.guard(async () => {
    const t = await h.applyTarget("fenced", {
      capacity: "64Mi",
      export: { persistentVolume: { reclaimPolicy: "Delete" } },
      network: {
        iscsiFrom: [
          { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "apps" } } },
          { ipBlock: { cidr: "192.168.0.0/16", except: ["192.168.7.0/24"] } },
        ],
      },
    });
    const uid = t.metadata.uid;
    for (const n of ["a", "b"]) {
      await h.waitFor(`NetworkPolicy fenced-${n} owned by the target`, async () =>
        owned(await h.child("networking.k8s.io/v1", "NetworkPolicy", `fenced-${n}`), uid),
      );
    }
    type Rules = { ingress: { ports: { port: number }[]; from?: unknown[] }[] };
    const rules = async (n: string) =>
      ((await h.child("networking.k8s.io/v1", "NetworkPolicy", `fenced-${n}`))?.spec as unknown as Rules)
        .ingress;
    const iscsi = (await rules("a")).find((r) => r.ports[0]?.port === 3260);
    assert.equal(iscsi?.from?.length, 2);
    assert.ok(
      (await rules("a")).some((r) => r.ports[0]?.port === 8080),
      "agent rule for the operator's pods",
    );

    // Someone opens the policy: the drift check puts it back.
    await h.client.mergePatch("networking.k8s.io/v1", "NetworkPolicy", h.namespace, "fenced-a", {
      spec: { ingress: [{}] },
    });
    await h.waitFor(
      "NetworkPolicy fenced-a put back",
      async () =>
        (await rules("a")).length === 3 && (await rules("a")).some((r) => r.ports[0]?.port === 3261),
      10 * driftCheckMs,
    );
    // iscsiFrom removed: port 3260 is open to all again (a rule without `from`).
    await h.applyTarget("fenced", {
      capacity: "64Mi",
      export: { persistentVolume: { reclaimPolicy: "Delete" } },
    });
    await h.waitFor("iSCSI rule without from", async () => {
      const r = (await rules("b")).find((x) => x.ports[0]?.port === 3260);
      return r !== undefined && r.from === undefined;
    });

    // The PV is ours by uid; one that lost its uid label but names this target is taken back.
    const pvName = `hasan-${h.namespace}-fenced`;
    const pv = await h.waitFor("exported PV", async () => h.child("v1", "PersistentVolume", pvName, true));
    assert.equal(pv.metadata.labels?.["hasan.dev/target-uid"], uid);
    await h.client.mergePatch("v1", "PersistentVolume", undefined, pvName, {
      metadata: { labels: { "hasan.dev/target-uid": null } },
    });
    await h.waitFor(
      "uid label back",
      async () =>
        (await h.child("v1", "PersistentVolume", pvName, true))?.metadata.labels?.["hasan.dev/target-uid"] ===
        uid,
      10 * driftCheckMs,
    );

    await h.client.delete("hasan.dev/v1alpha1", "HASanTarget", h.namespace, "fenced");
    await h.waitFor("target gone", async () => !(await h.target("fenced")), 120_000);
    await h.waitFor(
      "NetworkPolicies gone with the target",
      async () =>
        !(await h.child("networking.k8s.io/v1", "NetworkPolicy", "fenced-a")) &&
        !(await h.child("networking.k8s.io/v1", "NetworkPolicy", "fenced-b")),
      60_000,
    );
    await h.waitFor(
      "its own PV deleted (reclaimPolicy Delete)",
      async () => !(await h.child("v1", "PersistentVolume", pvName, true)),
    );
  }));

test("an image outside allowedTargetImages gets InvalidSpec naming the setting and no pods; running pods stay", () =>
  h.guard(async () => {
    await h.applyTarget("miner", { capacity: "64Mi", pod: { image: "evil.example/miner:1" } });
    const c = await h.waitFor("Ready=False InvalidSpec", async () => {
      const r = await readyCondition("miner");
      return r?.reason === "InvalidSpec" ? r : undefined;
    });
    assert.match(
      c.message,
      /spec\.pod\.image: evil\.example\/miner:1 is not allowed by the operator's allowedTargetImages/,
    );
    await h.waitFor("its Services", async () => h.child("v1", "Service", "miner-b"));
    await sleep(2 * driftCheckMs);
    assert.equal(await h.child("v1", "Pod", "miner-a"), undefined);
    assert.equal(await h.child("v1", "Pod", "miner-b"), undefined);

    // A running pair whose image changes to a refused one keeps its pods as they are.
    await h.applyTarget("steady", { capacity: "64Mi" });
    const pods = await h.waitFor("both pods", async () => {
      const a = await h.child("v1", "Pod", "steady-a");
      const b = await h.child("v1", "Pod", "steady-b");
      return a && b ? [a, b] : undefined;
    });
    await h.applyTarget("steady", { capacity: "64Mi", pod: { image: "evil.example/miner:1" } });
    await h.waitFor(
      "Ready=False InvalidSpec",
      async () => (await readyCondition("steady"))?.reason === "InvalidSpec",
    );
    await sleep(2 * driftCheckMs);
    for (const p of pods) {
      const now = await h.child("v1", "Pod", p.metadata.name);
      assert.equal(now?.metadata.uid, p.metadata.uid, `${p.metadata.name} not replaced`);
      assert.ok(!now?.metadata.deletionTimestamp);
    }
  }));
