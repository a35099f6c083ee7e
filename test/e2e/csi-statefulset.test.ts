// The CSI driver from the chart on the local cluster: a StatefulSet of three replicas gets three
// Bound PVCs of the StorageClass hasan, each backed by a HASanTarget that reaches Synchronized; one
// PVC grows from 1Gi to 2Gi (the HASanTarget's spec and the PV follow); a deleted PVC takes its
// HASanTarget, backing PVCs and Secrets with it; a StorageClass with a bad parameter gives the PVC
// a ProvisioningFailed Event naming the parameter. The StatefulSet's own pods cannot mount the
// volumes here (the local node agent has no iSCSI initiator and runs no CSI node plugin): they wait,
// and say why.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { quantityBytesOrNaN } from "../../operator/api/quantity.js";
import { ensureCluster, type Cluster } from "../support/cluster.js";
import { waitFor } from "../support/processes.js";
import {
  TargetJson,
  chartDir,
  condition,
  crdOwnership,
  dumpDiagnostics,
  getJson,
  helmOk,
  localClusterValues,
} from "./install-support.js";

const id = randomBytes(3).toString("hex");
const ns = `csi-${id}`;
const operatorNs = `csi-${id}-system`;
const release = `hasan-csi-${id}`;
const badClass = `hasan-bad-${id}`;
const sts = "web";
const replicas = 3;
const claim = (i: number) => `data-${sts}-${i}`;
// Three pairs are six target pods on a machine that may have two CPUs for everything.
const PAIR_TIMEOUT_MS = 900_000;
const GiB = 1024 ** 3;
// Quantities compare by bytes: the driver writes 2048Mi where a user writes 2Gi.
const bytes = (q: string) => quantityBytesOrNaN(q);

const PvcJson = z.object({
  metadata: z.object({ name: z.string(), uid: z.string() }),
  spec: z.object({ volumeName: z.string().optional(), storageClassName: z.string().optional() }),
  status: z.object({ phase: z.string().optional() }).optional(),
});
const PvJson = z.object({
  metadata: z.object({ name: z.string() }),
  spec: z.object({
    capacity: z.object({ storage: z.string() }),
    persistentVolumeReclaimPolicy: z.string(),
    csi: z.object({ driver: z.string(), volumeHandle: z.string() }),
  }),
});
const TargetSpecJson = z.object({ spec: z.object({ capacity: z.string() }) });
const Items = z.object({ items: z.array(z.object({ metadata: z.object({ name: z.string() }) })) });
const EventsJson = z.object({
  items: z.array(
    z.object({
      reason: z.string().optional(),
      message: z.string().optional(),
      involvedObject: z.object({ kind: z.string().optional(), name: z.string().optional() }),
    }),
  ),
});
const PodWaitingJson = z.object({
  status: z
    .object({
      containerStatuses: z
        .array(
          z.object({
            state: z.object({
              waiting: z.object({ reason: z.string().optional(), message: z.string().optional() }).optional(),
            }),
          }),
        )
        .optional(),
    })
    .optional(),
});

function statefulSet(): string {
  return JSON.stringify({
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name: sts, namespace: ns },
    spec: {
      replicas,
      serviceName: sts,
      // Parallel: the pods cannot become Ready here, and OrderedReady would wait for web-0.
      podManagementPolicy: "Parallel",
      selector: { matchLabels: { app: sts } },
      template: {
        metadata: { labels: { app: sts } },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: "app",
              image: "registry.k8s.io/pause:3.10",
              volumeMounts: [{ name: "data", mountPath: "/data" }],
            },
          ],
        },
      },
      volumeClaimTemplates: [
        {
          metadata: { name: "data" },
          spec: {
            storageClassName: "hasan",
            accessModes: ["ReadWriteOnce"],
            volumeMode: "Filesystem",
            resources: { requests: { storage: "1Gi" } },
          },
        },
      ],
    },
  });
}

describe("CSI driver from the chart: a StatefulSet's volumes as HASanTargets", () => {
  let c: Cluster;
  let ok = false;
  let installed = false;
  let restoreCrd = async () => {};
  const pvOf = new Map<string, string>();

  const pvc = (name: string) => getJson(c, PvcJson, ["-n", ns, "get", "pvc", name]);
  const target = (name: string) => getJson(c, TargetJson, ["-n", ns, "get", "hst", name]);
  const gone = async (args: string[]) => {
    const r = await c.kubectl([...args, "--ignore-not-found", "-o", "name"]);
    return r.code === 0 && r.stdout.trim() === "";
  };

  before(async () => {
    c = await ensureCluster();
    const crd = await crdOwnership(c, release, operatorNs);
    restoreCrd = crd.restore;
    await c.kubectlOk(["create", "namespace", ns]);
    installed = true;
    await helmOk(c, [
      "install",
      release,
      chartDir,
      "-n",
      operatorNs,
      "--create-namespace",
      ...localClusterValues,
      ...crd.flags,
      "--wait",
      "--timeout",
      "8m",
    ]);
  });

  after(async () => {
    if (!ok && c) await dumpDiagnostics(c, operatorNs, [ns]).catch((e: unknown) => console.error(e));
    if (!c) return;
    // Volumes first, while the provisioner runs: it deletes each PV's HASanTarget and then the PV.
    await c.kubectl(["-n", ns, "delete", "statefulset", sts, "--ignore-not-found", "--wait=false"]);
    await c.kubectl(["-n", ns, "delete", "pvc", "--all", "--wait=false"]);
    const pvsGone = await waitFor(
      "the test's PVs deleted",
      async () => {
        const r = await c.kubectl(["get", "pv", "-o", "json"]);
        const left = z
          .object({
            items: z.array(
              z.object({ spec: z.object({ claimRef: z.object({ namespace: z.string() }).optional() }) }),
            ),
          })
          .parse(JSON.parse(r.stdout))
          .items.filter((p) => p.spec.claimRef?.namespace === ns);
        return left.length === 0;
      },
      300_000,
      2000,
    ).catch(() => false);
    if (!pvsGone) {
      for (const pv of pvOf.values())
        await c.kubectl(["patch", "pv", pv, "--type=merge", "-p", '{"metadata":{"finalizers":null}}']);
    }
    await c.kubectl(["delete", "storageclass", badClass, "--ignore-not-found"]);
    if (installed) await c.helm(["uninstall", release, "-n", operatorNs, "--wait", "--timeout", "3m"]);
    await c.kubectl(["delete", "namespace", ns, "--ignore-not-found", "--timeout=180s"], {
      timeoutMs: 200_000,
    });
    await c.kubectl(["delete", "namespace", operatorNs, "--ignore-not-found", "--timeout=180s"], {
      timeoutMs: 200_000,
    });
    await restoreCrd();
  });

  it(
    "provisions, grows and deletes a StatefulSet's volumes, and names a bad StorageClass parameter",
    { timeout: 2_400_000 },
    async (t) => {
      const step = (s: string) => t.diagnostic(`${new Date().toISOString()} ${s}`);

      step("StatefulSet of 3 replicas with a 1Gi volumeClaimTemplate of StorageClass hasan");
      await c.kubectlOk(["apply", "-f", "-"], { input: statefulSet() });

      step("3 PVCs Bound (each waits for its pair to be Synchronized)");
      for (let i = 0; i < replicas; i++) {
        const p = await waitFor(
          `${ns}/${claim(i)} Bound`,
          async () => {
            const r = await c.kubectl(["-n", ns, "get", "pvc", claim(i), "-o", "json"]);
            if (r.code !== 0) return undefined;
            const got = PvcJson.parse(JSON.parse(r.stdout));
            return got.status?.phase === "Bound" && got.spec.volumeName ? got : undefined;
          },
          PAIR_TIMEOUT_MS,
          2000,
        );
        pvOf.set(claim(i), p.spec.volumeName!);
        step(`${claim(i)} Bound to ${p.spec.volumeName}`);
      }

      step("each PV is the driver's, and its HASanTarget (named after the PV) is Ready and Synchronized");
      for (let i = 0; i < replicas; i++) {
        const pvName = pvOf.get(claim(i))!;
        assert.equal(pvName, `pvc-${(await pvc(claim(i))).metadata.uid}`);
        const pv = await getJson(c, PvJson, ["get", "pv", pvName]);
        assert.equal(pv.spec.csi.driver, "iscsi.hasan.dev");
        assert.equal(pv.spec.csi.volumeHandle, `${ns}/${pvName}`);
        assert.equal(pv.spec.persistentVolumeReclaimPolicy, "Delete");
        assert.equal(bytes(pv.spec.capacity.storage), GiB);
        const tgt = await target(pvName);
        assert.equal(condition(tgt, "Ready"), "True", JSON.stringify(tgt.status?.conditions));
        assert.equal(condition(tgt, "Synchronized"), "True", JSON.stringify(tgt.status?.conditions));
        assert.equal(tgt.metadata.labels?.["csi.hasan.dev/pvc-name"], claim(i));
      }

      step("the StatefulSet's pods wait for a volume this node agent cannot mount, and say so");
      const waiting = await waitFor(
        `${ns}/${sts}-0 waiting on its CSI volume`,
        async () => {
          const r = await c.kubectl(["-n", ns, "get", "pod", `${sts}-0`, "-o", "json"]);
          if (r.code !== 0) return undefined;
          const w = PodWaitingJson.parse(JSON.parse(r.stdout)).status?.containerStatuses?.[0]?.state.waiting;
          return w?.message?.includes("iscsi.hasan.dev") ? w : undefined;
        },
        120_000,
        1000,
      );
      assert.equal(waiting.reason, "ContainerCreating");
      assert.match(waiting.message ?? "", /CSI driver "iscsi\.hasan\.dev"/);

      step(`grow ${claim(0)} from 1Gi to 2Gi`);
      const grown = pvOf.get(claim(0))!;
      await c.kubectlOk([
        "-n",
        ns,
        "patch",
        "pvc",
        claim(0),
        "--type=merge",
        "-p",
        JSON.stringify({ spec: { resources: { requests: { storage: "2Gi" } } } }),
      ]);
      await waitFor(
        `HASanTarget ${grown} spec.capacity 2Gi`,
        async () =>
          bytes((await getJson(c, TargetSpecJson, ["-n", ns, "get", "hst", grown])).spec.capacity) ===
          2 * GiB,
        300_000,
        1000,
      );
      await waitFor(
        `PV ${grown} capacity 2Gi`,
        async () => bytes((await getJson(c, PvJson, ["get", "pv", grown])).spec.capacity.storage) === 2 * GiB,
        300_000,
        1000,
      );
      for (const i of [1, 2]) {
        const other = await getJson(c, TargetSpecJson, ["-n", ns, "get", "hst", pvOf.get(claim(i))!]);
        assert.equal(bytes(other.spec.capacity), GiB, "the other volumes keep their size");
      }

      const deleted = pvOf.get(claim(2))!;
      step(`delete ${claim(2)} (reclaim Delete): its HASanTarget ${deleted}, backing PVCs and Secrets go`);
      const backing = await getJson(c, Items, ["-n", ns, "get", "pvc", "-l", `hasan.dev/target=${deleted}`]);
      assert.equal(backing.items.length, 2, "two backing PVCs while the pair exists");
      const secrets = await getJson(c, Items, [
        "-n",
        ns,
        "get",
        "secret",
        "-l",
        `hasan.dev/target=${deleted}`,
      ]);
      assert.ok(
        secrets.items.some((s) => s.metadata.name === `${deleted}-chap`),
        `the generated CHAP Secret among ${secrets.items.map((s) => s.metadata.name).join(", ")}`,
      );
      // The pod holds the claim (pvc-protection) until the StatefulSet no longer runs it.
      await c.kubectlOk(["-n", ns, "scale", "statefulset", sts, "--replicas=2"]);
      await c.kubectlOk(["-n", ns, "delete", "pvc", claim(2), "--wait=false"]);
      await waitFor(
        `HASanTarget ${deleted} gone`,
        () => gone(["-n", ns, "get", "hst", deleted]),
        300_000,
        2000,
      );
      await waitFor(`PV ${deleted} gone`, () => gone(["get", "pv", deleted]), 300_000, 2000);
      await waitFor(
        `backing PVCs of ${deleted} gone`,
        () => gone(["-n", ns, "get", "pvc", "-l", `hasan.dev/target=${deleted}`]),
        300_000,
        2000,
      );
      await waitFor(
        `Secrets of ${deleted} gone`,
        () => gone(["-n", ns, "get", "secret", "-l", `hasan.dev/target=${deleted}`]),
        300_000,
        2000,
      );
      assert.equal((await target(pvOf.get(claim(1))!)).metadata.name, pvOf.get(claim(1)), "the others stay");

      step(`StorageClass ${badClass} with resyncRateLimit: fast → ProvisioningFailed naming it`);
      await c.kubectlOk(["apply", "-f", "-"], {
        input: JSON.stringify({
          apiVersion: "storage.k8s.io/v1",
          kind: "StorageClass",
          metadata: { name: badClass },
          provisioner: "iscsi.hasan.dev",
          parameters: { resyncRateLimit: "fast" },
        }),
      });
      await c.kubectlOk(["-n", ns, "apply", "-f", "-"], {
        input: JSON.stringify({
          apiVersion: "v1",
          kind: "PersistentVolumeClaim",
          metadata: { name: "bad", namespace: ns },
          spec: {
            storageClassName: badClass,
            accessModes: ["ReadWriteOnce"],
            resources: { requests: { storage: "1Gi" } },
          },
        }),
      });
      const event = await waitFor(
        "ProvisioningFailed Event on PVC bad",
        async () => {
          const ev = await getJson(c, EventsJson, ["-n", ns, "get", "events"]);
          return ev.items.find(
            (e) =>
              e.involvedObject.kind === "PersistentVolumeClaim" &&
              e.involvedObject.name === "bad" &&
              e.reason === "ProvisioningFailed",
          );
        },
        180_000,
        1000,
      );
      step(`event: ${event.message}`);
      assert.match(event.message ?? "", /resyncRateLimit/);
      assert.match(event.message ?? "", /InvalidArgument/);
      assert.equal((await pvc("bad")).status?.phase, "Pending");
      assert.ok(
        await gone(["-n", ns, "get", "hst", "-l", "csi.hasan.dev/pvc-name=bad"]),
        "no HASanTarget made",
      );
      ok = true;
    },
  );
});
