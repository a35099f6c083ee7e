// The mission end to end on the local cluster: the operator installed with Helm, a HASanTarget with
// CHAP, data through the exported PV's two portals, a node failure with writes while degraded, a
// drain held (429) during the resync and completing once the pair is Working, data intact on both
// portals, a no-op helm upgrade that restarts nothing, and helm uninstall that keeps the data.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { ensureCluster, startDrain, type Cluster } from "../support/cluster.js";
import { qemuIo, qemuIoOk } from "../support/qemu.js";
import { waitFor } from "../support/processes.js";
import {
  removeInstall,
  PodJson,
  TargetJson,
  chartDir,
  condition,
  crdOwnership,
  dumpDiagnostics,
  getJson,
  helmOk,
  localClusterValues,
  nodeState,
  waitForTarget,
} from "./install-support.js";

const id = randomBytes(3).toString("hex");
const ns = `mission-${id}`;
const operatorNs = `mission-${id}-system`;
const release = `hasan-mission-${id}`;
const name = "vol";
const chapUser = "mission";
const chapPassword = randomBytes(12).toString("hex");
const MiB = 1024 * 1024;
// Small enough that the resync of the data written while degraded lasts long enough to watch a
// drain wait through several 5 s retries.
const resyncRate = "2Mi";
const degradedWrite = 80 * MiB;

/**
 * qemu-io that retries only a refused or dropped login (for up to a minute, as an initiator's own
 * login retries would) right after a node came back; any I/O error or pattern mismatch fails at once.
 */
async function qemuIoAfterRecovery(url: string, commands: string[]): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await qemuIo(url, commands);
    if (r.ok) return;
    const out = r.stdout + r.stderr;
    if (!/can't open device/.test(out) || Date.now() > deadline) {
      throw new Error(`qemu-io ${commands.join(" ; ")} on ${url} failed (${r.code}): ${out}`);
    }
    await new Promise((res) => setTimeout(res, 2000));
  }
}

const PvJson = z.object({
  spec: z.object({
    persistentVolumeReclaimPolicy: z.string(),
    iscsi: z.object({
      targetPortal: z.string(),
      portals: z.array(z.string()).optional(),
      iqn: z.string(),
      lun: z.int(),
      chapAuthSession: z.boolean().optional(),
    }),
  }),
});

describe("mission: HA iSCSI pair installed with Helm, through failure, resync and drain", () => {
  let c: Cluster;
  let ok = false;
  let installed = false;
  let failedNode: string | undefined;
  const cordoned = new Set<string>();
  let restoreCrd = async () => {};

  before(async () => {
    c = await ensureCluster();
  });

  after(async () => {
    if (!ok && c) await dumpDiagnostics(c, operatorNs, [ns]).catch((e: unknown) => console.error(e));
    if (!c) return;
    if (failedNode) await c.restoreNode(failedNode).catch(() => undefined);
    for (const n of cordoned) await c.kubectl(["uncordon", n]);
    await removeInstall(c, { release, operatorNs, ns, target: name, installed }, restoreCrd);
  });

  it(
    "keeps data safe and drains waiting, from helm install to helm uninstall",
    { timeout: 1_800_000 },
    async (t) => {
      const step = (s: string) => t.diagnostic(`${new Date().toISOString()} ${s}`);

      // Install.
      const crd = await crdOwnership(c, release, operatorNs);
      restoreCrd = crd.restore;
      // With watchNamespace the chart puts the operator's Role in that namespace: it must exist first.
      await c.kubectlOk(["create", "namespace", ns]);
      step(`helm install ${release} (watching ${ns})`);
      installed = true;
      await helmOk(c, [
        "install",
        release,
        chartDir,
        "-n",
        operatorNs,
        "--create-namespace",
        "--set",
        `operator.watchNamespace=${ns}`,
        "--set",
        "operator.statusPollActiveMs=500",
        ...localClusterValues,
        ...crd.flags,
        "--wait",
        "--timeout",
        "5m",
      ]);
      const operatorPods = async () =>
        (
          await getJson(c, z.object({ items: z.array(PodJson) }), [
            "-n",
            operatorNs,
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/name=hasan-operator",
          ])
        ).items;
      assert.equal((await operatorPods()).length, 2, "two operator replicas");

      // A HASanTarget with CHAP, exported as a PersistentVolume.
      await c.kubectlOk([
        "-n",
        ns,
        "create",
        "secret",
        "generic",
        "vol-chap",
        "--type=kubernetes.io/iscsi-chap",
        `--from-literal=node.session.auth.username=${chapUser}`,
        `--from-literal=node.session.auth.password=${chapPassword}`,
      ]);
      await c.kubectlOk(["-n", ns, "apply", "-f", "-"], {
        input: JSON.stringify({
          apiVersion: "hasan.dev/v1alpha1",
          kind: "HASanTarget",
          metadata: { name },
          spec: {
            capacity: "256Mi",
            auth: { chapSecretRef: { name: "vol-chap" } },
            replication: { resyncRateLimit: resyncRate },
            export: { persistentVolume: { reclaimPolicy: "Retain" } },
          },
        }),
      });
      step("waiting for both nodes Working");
      const ready = await waitForTarget(
        c,
        ns,
        name,
        "Synchronized",
        (x) => condition(x, "Synchronized") === "True",
      );
      assert.equal(nodeState(ready, "a"), "Working");
      assert.equal(nodeState(ready, "b"), "Working");

      // The exported PV names both portals; initiators use them with the CHAP credentials.
      const pvName = ready.status?.persistentVolumeName;
      assert.ok(pvName, "status names the exported PV");
      const pv = await getJson(c, PvJson, ["get", "pv", pvName]);
      assert.equal(pv.spec.persistentVolumeReclaimPolicy, "Retain");
      assert.equal(pv.spec.iscsi.chapAuthSession, true);
      const portalA = pv.spec.iscsi.targetPortal;
      const portalB = pv.spec.iscsi.portals?.[0];
      assert.ok(portalB, "the PV lists the second portal");
      assert.deepEqual(ready.status?.portals, [portalA, portalB]);
      const url = (portal: string) =>
        `iscsi://${chapUser}%${chapPassword}@${portal}/${pv.spec.iscsi.iqn}/${pv.spec.iscsi.lun}`;
      // Without the CHAP secret the target refuses the login.
      await assert.rejects(qemuIoOk(`iscsi://${portalA}/${pv.spec.iscsi.iqn}/0`, ["read 0 4k"]));

      step(`write 16 MiB through ${portalA}, read through ${portalB}`);
      await qemuIoOk(url(portalA), ["write -P 0x11 0 16M"]);
      await qemuIoOk(url(portalB), ["read -P 0x11 0 16M"]);

      // Node b's machine fails: a goes on alone and records what b misses.
      const podB = await getJson(c, PodJson, ["-n", ns, "get", "pod", `${name}-b`]);
      const podA = await getJson(c, PodJson, ["-n", ns, "get", "pod", `${name}-a`]);
      failedNode = podB.spec.nodeName;
      assert.ok(failedNode && podA.spec.nodeName && failedNode !== podA.spec.nodeName, "pods on two nodes");
      step(`failing ${failedNode} (runs ${name}-b)`);
      await c.failNode(failedNode);
      // Failed alone is not serving yet: a waits out b's read lease first; phase Degraded says a serves.
      await waitForTarget(
        c,
        ns,
        name,
        "a serves alone (Failed, phase Degraded)",
        (x) => nodeState(x, "a") === "Failed" && x.status?.phase === "Degraded",
      );
      step(`write ${degradedWrite / MiB} MiB through ${portalA} while b is down`);
      await qemuIoOk(url(portalA), [`write -P 0x22 16M ${degradedWrite}`]);
      await qemuIoOk(url(portalA), ["read -P 0x11 0 16M", `read -P 0x22 16M ${degradedWrite}`]);

      step(`restoring ${failedNode}`);
      await c.restoreNode(failedNode);
      const restored = failedNode;
      failedNode = undefined;
      await waitForTarget(c, ns, name, "resync in flight", (x) => condition(x, "Resyncing") === "True");

      // Drain a's node while the resync runs: the webhook answers 429 with the progress and kubectl
      // retries every 5 s; once the pair is Working the eviction goes through and the drain ends.
      const drainNode = podA.spec.nodeName!;
      const unschedulable = await c.kubectlOk([
        "get",
        "node",
        drainNode,
        "-o",
        "jsonpath={.spec.unschedulable}",
      ]);
      if (unschedulable !== "true") cordoned.add(drainNode);
      let drainOk = false;
      await t.test(
        "a drain waits (429) during the resync and completes once the pair is Working",
        async () => {
          step(`kubectl drain ${drainNode} during the resync`);
          const drain = startDrain(c, drainNode, name, "600s");
          let workingAt: number | undefined;
          let sawResyncWhileDraining = false;
          for (;;) {
            const tgt = await getJson(c, TargetJson, ["-n", ns, "get", "hst", name]).catch(() => undefined);
            if (tgt && condition(tgt, "Resyncing") === "True") sawResyncWhileDraining = true;
            if (tgt && nodeState(tgt, "a") === "Working" && nodeState(tgt, "b") === "Working") {
              workingAt = Date.now();
              break;
            }
            if (drain.process.exitCode !== null) break;
            await new Promise((r) => setTimeout(r, 500));
          }
          // Once Working, the next retry (5 s) evicts; allow generously for a loaded machine.
          const exit = await Promise.race([
            drain.exited,
            new Promise<undefined>((r) => setTimeout(() => r(undefined), 120_000)),
          ]);
          if (!exit) drain.process.kill("SIGTERM");
          const pdb = await c.kubectl(["-n", ns, "get", "pdb", name, "-o", "jsonpath={.spec} {.status}"]);
          step(`drain output:\n${drain.output()}\nPodDisruptionBudget: ${pdb.stdout}`);
          assert.ok(sawResyncWhileDraining, "the resync was in flight while the drain waited");
          assert.match(
            drain.output(),
            /\(will retry after 5s\): admission webhook "eviction\.hasan\.dev" denied the request: resync in flight: \d+% done/,
          );
          assert.ok(workingAt !== undefined, "the pair became Working");
          assert.ok(
            exit,
            `the drain completes once the pair is Working (PDB ${pdb.stdout}): ${drain.output()}`,
          );
          assert.equal(exit.code, 0, drain.output());
          assert.ok(exit.at >= workingAt, "the drain finished only after the pair was Working");
          drainOk = true;
        },
      );

      // The evicted pod comes back once its node (and its local PV) is schedulable again.
      if (cordoned.delete(drainNode)) await c.kubectlOk(["uncordon", drainNode]);
      step("waiting for the pair to be Working again after the drain");
      await waitForTarget(
        c,
        ns,
        name,
        "Working again",
        (x) =>
          condition(x, "Synchronized") === "True" &&
          nodeState(x, "a") === "Working" &&
          nodeState(x, "b") === "Working",
      );
      for (const p of [portalA, portalB]) {
        step(`verify all data through ${p}`);
        await qemuIoAfterRecovery(url(p), ["read -P 0x11 0 16M", `read -P 0x22 16M ${degradedWrite}`]);
      }
      assert.ok(restored);

      // helm upgrade with nothing changed: no operator rollout, no target restart.
      const snapshot = async () => {
        const targets = (
          await getJson(c, z.object({ items: z.array(PodJson) }), [
            "-n",
            ns,
            "get",
            "pods",
            "-l",
            `hasan.dev/target=${name}`,
          ])
        ).items;
        const ops = await operatorPods();
        return [...targets, ...ops]
          .map(
            (p) =>
              `${p.metadata.name} ${p.metadata.uid} ${(p.status?.containerStatuses ?? []).map((s) => s.restartCount).join(",")}`,
          )
          .sort();
      };
      const before = await snapshot();
      step("helm upgrade with no change");
      await helmOk(c, [
        "upgrade",
        release,
        chartDir,
        "-n",
        operatorNs,
        "--reuse-values",
        "--wait",
        "--timeout",
        "5m",
      ]);
      // Two steady status periods of the operator: anything it would restart, it restarts by then.
      const until = Date.now() + 15_000;
      while (Date.now() < until) {
        assert.deepEqual(await snapshot(), before, "helm upgrade without changes restarts nothing");
        await new Promise((r) => setTimeout(r, 1000));
      }

      // helm uninstall: the operator goes; the CRD, the HASanTarget, both data PVCs and the exported PV
      // (reclaim policy Retain) stay, and the pair keeps serving.
      step("helm uninstall");
      await helmOk(c, ["uninstall", release, "-n", operatorNs, "--wait", "--timeout", "2m"]);
      installed = false;
      // Garbage collection removes the ReplicaSet's pods after the Deployment is gone.
      await waitFor(
        "operator pods to be gone",
        async () => (await operatorPods()).length === 0,
        180_000,
        1000,
      );
      await c.kubectlOk(["get", "crd", "hasantargets.hasan.dev"]);
      await c.kubectlOk(["-n", ns, "get", "hst", name]);
      for (const n of ["a", "b"]) {
        const pvc = z
          .object({ spec: z.object({ volumeName: z.string() }), status: z.object({ phase: z.string() }) })
          .parse(JSON.parse(await c.kubectlOk(["-n", ns, "get", "pvc", `${name}-${n}-data`, "-o", "json"])));
        assert.equal(pvc.status.phase, "Bound", `PVC of node ${n} stays bound`);
        await c.kubectlOk(["get", "pv", pvc.spec.volumeName]);
      }
      assert.equal(
        (await getJson(c, PvJson, ["get", "pv", pvName])).spec.persistentVolumeReclaimPolicy,
        "Retain",
      );
      for (const p of [portalA, portalB]) await qemuIoOk(url(p), ["read -P 0x11 0 16M"]);
      ok = drainOk;
    },
  );
});
