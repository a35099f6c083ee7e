// The operator against the real API server: children with owner references, re-creation of deleted
// pods, pruning of children the spec no longer asks for, status, cleanup on deletion.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { hasanTargetCrd } from "../../operator/api/crd.js";
import type { KubeObjectLike } from "../../operator/kit/kube-client.js";
import { installCrd, OperatorHarness, type Child } from "./operator-harness.js";

let h: OperatorHarness;
const name = "vol";

/** Short, so the tests see several drift checks; production uses 60 s. */
const driftCheckMs = 2000;

before(async () => {
  h = await OperatorHarness.create("hst-children");
  await h.startOperator(["--drift-check-ms", String(driftCheckMs)]);
});

/** The operator's writes to the API so far, by "METHOD resource" (requests with a writing method). */
async function writesSoFar(): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${h.metricsPort}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const l of text.split("\n")) {
    const m = /^hasan_operator_api_requests_total\{method="(POST|PUT|PATCH|DELETE)",resource="([^"]*)"/.exec(
      l,
    );
    if (m) out[`${m[1]} ${m[2]}`] = (out[`${m[1]} ${m[2]}`] ?? 0) + Number(l.split(" ").pop());
  }
  return out;
}

after(async () => {
  await h?.cleanup();
});

const owned = (c: Child | undefined, uid: string) =>
  !!c && (c.metadata.ownerReferences ?? []).some((r) => r.uid === uid && r.controller === true);

test("a HASanTarget gets two pods on different nodes, PVCs, Services, RBAC, witness Lease, PDB and its PV", () =>
  h.guard(async () => {
    const t = await h.applyTarget(name, {
      capacity: "64Mi",
      export: { persistentVolume: { reclaimPolicy: "Delete" } },
    });
    const uid = t.metadata.uid;
    const expected: [string, string, string][] = [
      ["v1", "ServiceAccount", `${name}-target`],
      ["rbac.authorization.k8s.io/v1", "Role", `${name}-target`],
      ["rbac.authorization.k8s.io/v1", "RoleBinding", `${name}-target`],
      ["coordination.k8s.io/v1", "Lease", `${name}-witness`],
      ["v1", "Secret", `${name}-peer`],
      ["v1", "Secret", `${name}-chap`],
      ["v1", "Secret", `${name}-agent`],
      ["v1", "Service", `${name}-a`],
      ["v1", "Service", `${name}-b`],
      ["v1", "PersistentVolumeClaim", `${name}-a-data`],
      ["v1", "PersistentVolumeClaim", `${name}-b-data`],
      ["v1", "Pod", `${name}-a`],
      ["v1", "Pod", `${name}-b`],
      ["policy/v1", "PodDisruptionBudget", name],
    ];
    for (const [apiVersion, kind, child] of expected) {
      await h.waitFor(`${kind} ${child} owned by the target`, async () =>
        owned(await h.child(apiVersion, kind, child), uid),
      );
    }
    const secret = await h.child("v1", "Secret", `${name}-peer`);
    assert.equal(Buffer.from(secret!.data!.secret!, "base64").length, 64, "32 random bytes, hex encoded");

    const pv = await h.waitFor("exported PV", async () =>
      h.child("v1", "PersistentVolume", `hasan-${h.namespace}-${name}`, true),
    );
    assert.equal(pv.metadata.ownerReferences, undefined);
    assert.equal(pv.metadata.labels?.["hasan.dev/namespace"], h.namespace);
    const svcA = await h.child("v1", "Service", `${name}-a`);
    const svcB = await h.child("v1", "Service", `${name}-b`);
    const ipA = (svcA!.spec as { clusterIP: string }).clusterIP;
    const ipB = (svcB!.spec as { clusterIP: string }).clusterIP;
    const iscsi = (pv.spec as { iscsi: { targetPortal: string; portals: string[]; iqn: string } }).iscsi;
    assert.equal(iscsi.targetPortal, `${ipA}:3260`);
    assert.deepEqual(iscsi.portals, [`${ipB}:3260`]);
    assert.equal(iscsi.iqn, `iqn.2024-01.dev.hasan:${h.namespace}.${name}`);
    // CHAP by default: kubelet logs in with the generated Secret
    assert.deepEqual((pv.spec as { iscsi: { secretRef?: unknown } }).iscsi.secretRef, {
      name: `${name}-chap`,
      namespace: h.namespace,
    });

    const nodes = await h.waitFor("both pods scheduled", async () => {
      const a = (await h.child("v1", "Pod", `${name}-a`))?.spec?.nodeName as string | undefined;
      const b = (await h.child("v1", "Pod", `${name}-b`))?.spec?.nodeName as string | undefined;
      return a && b ? [a, b] : undefined;
    });
    assert.notEqual(nodes[0], nodes[1], "anti-affinity puts a and b on different nodes");

    const status = await h.waitFor("status with portals and nodes", async () => {
      const s = (await h.target(name))?.status;
      return s?.portals?.length === 2 && s.nodes?.length === 2 && s.persistentVolumeName ? s : undefined;
    });
    assert.deepEqual(status.portals, [`${ipA}:3260`, `${ipB}:3260`]);
    assert.equal(status.iqn, `iqn.2024-01.dev.hasan:${h.namespace}.${name}`);
    const types = (status.conditions ?? []).map((c) => c.type).sort();
    assert.deepEqual(types, [
      "AuthenticationRequired",
      "Capacity",
      "Degraded",
      "DisruptionAllowed",
      "Ready",
      "Resyncing",
      "SplitBrain",
      "Synchronized",
    ]);
    for (const c of status.conditions ?? []) assert.equal(c.observedGeneration, 1);
  }));

test("drift checks read the children and write nothing while nothing changed; drifted children are put back", () =>
  h.guard(async () => {
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    // Steady state: once the pair is in sync and its status settled, drift checks go by without a write.
    await h.waitFor(
      "Synchronized",
      async () =>
        (await h.target(name))?.status?.conditions?.some(
          (c) => c.type === "Synchronized" && c.status === "True",
        ),
      120_000,
    );
    let last = "";
    await h.waitFor(
      "no writes for one drift period",
      async () => {
        const now = JSON.stringify(await writesSoFar());
        const quiet = now === last;
        last = now;
        if (!quiet) await sleep(driftCheckMs);
        return quiet;
      },
      60_000,
    );
    const w0 = await writesSoFar();
    await sleep(4 * driftCheckMs);
    assert.deepEqual(await writesSoFar(), w0, "steady state: the drift checks wrote nothing");

    // Someone edits children behind the operator's back: an unwatched kind and a watched one.
    const role = await h.child("rbac.authorization.k8s.io/v1", "Role", `${name}-target`);
    const rules = (role as unknown as { rules: unknown[] }).rules;
    assert.ok(rules.length > 0);
    await h.client.mergePatch("rbac.authorization.k8s.io/v1", "Role", h.namespace, `${name}-target`, {
      rules: [],
    });
    const pdb = await h.child("policy/v1", "PodDisruptionBudget", name);
    const minAvailable = (pdb as unknown as { spec: { minAvailable: unknown } }).spec.minAvailable;
    await h.client.mergePatch("policy/v1", "PodDisruptionBudget", h.namespace, name, {
      spec: { minAvailable: 0 },
    });
    const svcBefore = await h.child("v1", "Service", `${name}-b`);
    const selector = (svcBefore as unknown as { spec: { selector: Record<string, string> } }).spec.selector;
    await h.client.mergePatch("v1", "Service", h.namespace, `${name}-b`, { spec: { selector: { x: "y" } } });

    await h.waitFor(
      "drifted Role, PDB and Service put back",
      async () => {
        const r = (await h.child("rbac.authorization.k8s.io/v1", "Role", `${name}-target`)) as unknown as {
          rules: unknown[];
        };
        const p = (await h.child("policy/v1", "PodDisruptionBudget", name)) as unknown as {
          spec: { minAvailable: unknown };
        };
        const v = (await h.child("v1", "Service", `${name}-b`)) as unknown as {
          spec: { selector: Record<string, string> };
        };
        try {
          assert.deepEqual(r.rules, rules);
          assert.deepEqual(p.spec.minAvailable, minAvailable);
          // The stray selector key stays (another manager owns it); the operator's keys are back.
          for (const [k, val] of Object.entries(selector)) assert.equal(v.spec.selector[k], val);
          return true;
        } catch {
          return false;
        }
      },
      10 * driftCheckMs,
    );
  }));

test("a deleted pod is re-created", () =>
  h.guard(async () => {
    const before = await h.child("v1", "Pod", `${name}-b`);
    await h.client.delete("v1", "Pod", h.namespace, `${name}-b`);
    await h.waitFor(
      "a new pod b",
      async () => {
        const p = await h.child("v1", "Pod", `${name}-b`);
        return p && p.metadata.uid !== before!.metadata.uid && !p.metadata.deletionTimestamp;
      },
      120_000,
    );
  }));

test("a deleted PVC is re-created (with its pod, which held it)", () =>
  h.guard(async () => {
    const pvcBefore = await h.child("v1", "PersistentVolumeClaim", `${name}-b-data`);
    await h.client.delete("v1", "PersistentVolumeClaim", h.namespace, `${name}-b-data`);
    await h.client.delete("v1", "Pod", h.namespace, `${name}-b`);
    await h.waitFor(
      "a new PVC b",
      async () => {
        const c = await h.child("v1", "PersistentVolumeClaim", `${name}-b-data`);
        return c && c.metadata.uid !== pvcBefore!.metadata.uid && !c.metadata.deletionTimestamp;
      },
      120_000,
    );
    await h.waitFor(
      "pod b back",
      async () => {
        const p = await h.child("v1", "Pod", `${name}-b`);
        return p && !p.metadata.deletionTimestamp;
      },
      120_000,
    );
  }));

test("children the spec no longer asks for are pruned: generated peer secret, exported PV", () =>
  h.guard(async () => {
    await h.client.create({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "own-peer", namespace: h.namespace },
      stringData: { secret: "a shared secret of our own" },
    });
    await h.applyTarget(name, { capacity: "64Mi", replication: { peerSecretRef: { name: "own-peer" } } });
    await h.waitFor(
      "generated peer secret pruned",
      async () => !(await h.child("v1", "Secret", `${name}-peer`)),
    );
    await h.waitFor(
      "exported PV pruned",
      async () => !(await h.child("v1", "PersistentVolume", `hasan-${h.namespace}-${name}`, true)),
    );
    assert.ok(await h.child("v1", "Secret", "own-peer"), "the user's secret stays");
    const status = await h.waitFor("status without a PV", async () => {
      const s = (await h.target(name))?.status;
      return s && s.observedGeneration === 2 && !s.persistentVolumeName ? s : undefined;
    });
    assert.equal(status.persistentVolumeName, undefined);
  }));

test("deleting the target with reclaim policy Retain keeps both PVCs and removes the rest", () =>
  h.guard(async () => {
    await h.applyTarget("keep", { capacity: "64Mi" });
    await h.waitFor("pvc of keep", async () => h.child("v1", "PersistentVolumeClaim", "keep-a-data"));
    await h.waitFor("finalizer", async () =>
      (
        (await h.target("keep")) as { metadata: { finalizers?: string[] } } | undefined
      )?.metadata.finalizers?.includes("hasan.dev/cleanup"),
    );
    await h.client.delete("hasan.dev/v1alpha1", "HASanTarget", h.namespace, "keep");
    await h.waitFor("target gone", async () => !(await h.target("keep")), 120_000);
    await h.waitFor(
      "pods gone",
      async () => !(await h.child("v1", "Pod", "keep-a")) && !(await h.child("v1", "Pod", "keep-b")),
      120_000,
    );
    for (const n of ["a", "b"]) {
      const pvc = await h.child("v1", "PersistentVolumeClaim", `keep-${n}-data`);
      assert.ok(pvc && !pvc.metadata.deletionTimestamp, `PVC keep-${n}-data kept`);
      assert.equal(pvc.metadata.ownerReferences, undefined);
    }
  }));

test("a spec stored before the API server checked it (an older CRD) is reported as InvalidSpec, with no pods", () =>
  h.guard(async () => {
    // The CRD as an older release had it, without the capacity rule, for the time of one create.
    const crd = hasanTargetCrd() as { spec: { versions: { schema: { openAPIV3Schema: unknown } }[] } };
    const capacity = (
      crd.spec.versions[0]!.schema.openAPIV3Schema as {
        properties: {
          spec: { properties: { capacity: { "x-kubernetes-validations": { rule: string }[] } } };
        };
      }
    ).properties.spec.properties.capacity;
    capacity["x-kubernetes-validations"] = capacity["x-kubernetes-validations"].filter(
      (r) => !r.rule.includes("quantity('1Mi')"),
    );
    try {
      await h.client.apply(crd as unknown as KubeObjectLike, "hasan-operator");
      await h.waitFor("the older CRD in effect", async () => {
        try {
          await h.applyTarget("odd", { capacity: "1000001" });
          return true;
        } catch {
          return false;
        }
      });
    } finally {
      await installCrd(h.client);
    }
    const ready = await h.waitFor("Ready=False InvalidSpec", async () => {
      const c = (await h.target("odd"))?.status?.conditions?.find((x) => x.type === "Ready");
      return c?.reason === "InvalidSpec" ? c : undefined;
    });
    assert.equal(ready.status, "False");
    assert.match(ready.message, /spec\.capacity: must be at least 1Mi and a multiple of 512 bytes/);
    assert.equal(await h.child("v1", "Pod", "odd-a"), undefined);
    // The problem is a Warning Event too, one however many passes see it.
    const events = await h.waitFor("the InvalidSpec Event", async () => {
      const list = await h.client.list<{ type: string; reason: string; involvedObject: { name: string } }>(
        "v1",
        "Event",
        h.namespace,
      );
      const e = list.items.filter((x) => x.involvedObject.name === "odd" && x.reason === "InvalidSpec");
      return e.length ? e : undefined;
    });
    assert.equal(events[0]?.type, "Warning");
    assert.equal(events.length, 1);
  }));
