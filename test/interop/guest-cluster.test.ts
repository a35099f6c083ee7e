/**
 * A HASanTarget on the local cluster, used the way kubelet uses its exported PersistentVolume,
 * from a Linux guest: read the PV, log in to every portal with the CHAP secret, wait for the
 * multipath device, make the filesystem (ext4, then xfs), mount it, and run a workload writing
 * files with checksums while, in turn, the node of a is drained and uncordoned, the node of b is
 * drained and uncordoned, the pods are replaced by a change to the pod template, and a node fails
 * and is restored. At the end: no I/O error, every file's checksum good, the filesystem check
 * clean.
 */
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { after, before, describe, it, type TestContext } from "node:test";
import { OperatorHarness, type TargetObject } from "../integration/operator-harness.js";
import { Guest } from "../support/guest.js";
import { describeView, logoutScript, multipathView } from "../support/guest-iscsi.js";
import {
  chapFromSecret,
  IscsiPvSchema,
  stageVolume,
  stopWorkload,
  verifyVolume,
  workloadFiles,
  workloadScript,
} from "../support/guest-volume.js";

interface PodJson {
  metadata: { uid: string };
  spec: { nodeName?: string };
  status?: { phase?: string };
}

describe(
  "a filesystem on an exported PV through drains, a template change and a node failure",
  { timeout: 3_600_000 },
  () => {
    let h: OperatorHarness;
    let guest: Guest;
    const cordoned = new Set<string>();
    let failed: string | undefined;

    before(async () => {
      [h, guest] = await Promise.all([OperatorHarness.create("hst-guest"), Guest.boot({ name: "kubelet" })]);
      await h.startOperator(["--status-poll-steady-ms", "1000"]);
    });

    after(async () => {
      if (failed) await h.cluster.restoreNode(failed).catch(() => undefined);
      for (const n of cordoned) await h.cluster.kubectl(["uncordon", n]);
      if (guest) process.stderr.write(`guest logs: ${await guest.saveLogs()}\n`);
      await guest?.stop();
      await h?.cleanup();
    });

    const condition = (t: TargetObject | undefined, type: string) =>
      t?.status?.conditions?.find((c) => c.type === type)?.status;
    const waitSynchronized = (name: string, what: string) =>
      h.waitFor(
        `${name}: ${what}`,
        async () => {
          const t = await h.target(name);
          return (
            condition(t, "Synchronized") === "True" &&
            t?.status?.nodes?.every((n) => n.state === "Working") === true &&
            t
          );
        },
        600_000,
      );
    const pod = async (name: string, n: "a" | "b") =>
      JSON.parse(
        await h.cluster.kubectlOk(["-n", h.namespace, "get", "pod", `${name}-${n}`, "-o", "json"]),
      ) as PodJson;

    async function drainAndUncordon(t: TestContext, name: string, n: "a" | "b") {
      const before = await pod(name, n);
      const node = before.spec.nodeName!;
      t.diagnostic(`drain ${node} (runs ${name}-${n}), files so far: ${await workloadFiles(guest)}`);
      cordoned.add(node);
      await h.cluster.kubectlOk(
        [
          "drain",
          node,
          `--pod-selector=hasan.dev/target=${name}`,
          "--ignore-daemonsets",
          "--delete-emptydir-data",
          "--timeout=600s",
        ],
        { timeoutMs: 660_000 },
      );
      await h.waitFor(
        `${name}-${n} gone from ${node}`,
        async () => {
          const p = await pod(name, n).catch(() => undefined);
          return !p || p.metadata.uid !== before.metadata.uid;
        },
        120_000,
      );
      // The other node serves alone meanwhile; let the workload run on it for a while.
      await sleep(15_000);
      t.diagnostic(`uncordon ${node}, files so far: ${await workloadFiles(guest)}`);
      await h.cluster.kubectlOk(["uncordon", node]);
      cordoned.delete(node);
      await waitSynchronized(name, `Synchronized after ${node} came back`);
    }

    for (const [fsType, mutual] of [
      ["ext4", false],
      ["xfs", true],
    ] as const) {
      it(`${fsType} (${mutual ? "mutual " : ""}CHAP): no I/O error, every checksum good, fsck clean`, async (t) =>
        h.guard(async () => {
          const name = `vol-${fsType}`;
          const secret = `${name}-chap`;
          const creds = {
            "node.session.auth.username": `user-${fsType}`,
            "node.session.auth.password": randomBytes(12).toString("hex"),
            ...(mutual
              ? {
                  "node.session.auth.username_in": `target-${fsType}`,
                  "node.session.auth.password_in": randomBytes(12).toString("hex"),
                }
              : {}),
          };
          await h.cluster.kubectlOk(["-n", h.namespace, "apply", "-f", "-"], {
            input: JSON.stringify({
              apiVersion: "v1",
              kind: "Secret",
              metadata: { name: secret },
              type: "kubernetes.io/iscsi-chap",
              stringData: creds,
            }),
          });
          await h.applyTarget(name, {
            capacity: "512Mi",
            auth: { chapSecretRef: { name: secret }, ...(mutual ? { mutual: true } : {}) },
            export: { persistentVolume: { fsType, reclaimPolicy: "Delete" } },
          });
          const ready = await waitSynchronized(name, "Synchronized");
          const pvName = ready.status?.persistentVolumeName;
          assert.ok(pvName, "status names the exported PV");

          // As kubelet: the PV says where and how; the Secret it names holds the credentials.
          const pv = IscsiPvSchema.parse(
            JSON.parse(await h.cluster.kubectlOk(["get", "pv", pvName, "-o", "json"])),
          );
          assert.equal(pv.spec.iscsi.fsType, fsType);
          assert.equal(pv.spec.iscsi.chapAuthSession, true);
          const ref = pv.spec.iscsi.secretRef!;
          const secretJson = JSON.parse(
            await h.cluster.kubectlOk([
              "-n",
              ref.namespace ?? h.namespace,
              "get",
              "secret",
              ref.name,
              "-o",
              "json",
            ]),
          ) as { data: Record<string, string> };
          const staged = await stageVolume(guest, pv, chapFromSecret(secretJson.data));
          t.diagnostic(
            `staged ${staged.device} (${staged.made ? "made" : "found"} ${fsType}): ${describeView([staged.view])}`,
          );
          assert.ok(staged.made, "a new volume is blank: the filesystem is made once");

          await guest.run(workloadScript());
          await sleep(10_000);
          await drainAndUncordon(t, name, "a");
          await drainAndUncordon(t, name, "b");

          const [a0, b0] = [await pod(name, "a"), await pod(name, "b")];
          t.diagnostic(`change the pod template, files so far: ${await workloadFiles(guest)}`);
          await h.client.mergePatch("hasan.dev/v1alpha1", "HASanTarget", h.namespace, name, {
            spec: { pod: { terminationGracePeriodSeconds: 45 } },
          });
          await h.waitFor(
            "both pods replaced",
            async () => {
              const [a, b] = [await pod(name, "a").catch(() => a0), await pod(name, "b").catch(() => b0)];
              return a.metadata.uid !== a0.metadata.uid && b.metadata.uid !== b0.metadata.uid;
            },
            900_000,
          );
          await waitSynchronized(name, "Synchronized after the template change");

          const node = (await pod(name, "a")).spec.nodeName!;
          t.diagnostic(`fail ${node}, files so far: ${await workloadFiles(guest)}`);
          failed = node;
          await h.cluster.failNode(node);
          await h.waitFor(
            "b serving alone",
            async () =>
              (await h.target(name))?.status?.nodes?.find((x) => x.name === "b")?.state === "Failed",
            120_000,
          );
          await sleep(20_000);
          t.diagnostic(`restore ${node}, files so far: ${await workloadFiles(guest)}`);
          await h.cluster.restoreNode(node);
          failed = undefined;
          await waitSynchronized(name, "Synchronized after the node came back");
          await sleep(10_000);

          const wl = await stopWorkload(guest);
          t.diagnostic(`workload: ${wl.files} files written and checked; ${wl.status}`);
          t.diagnostic(`paths at the end: ${describeView(await multipathView(guest))}`);
          const kernel = await guest.run(
            "dmesg | grep -E 'I/O error|EXT4-fs error|XFS.*(error|corrupt)|Failing path|Reinstating path|alua: port group' | tail -40",
          );
          for (const line of kernel.trim().split("\n")) t.diagnostic(line);
          assert.doesNotMatch(
            kernel,
            /I\/O error, dev dm-|Buffer I\/O error on dev dm-|EXT4-fs error|XFS.*(error|corrupt)/i,
          );
          const verdict = await verifyVolume(guest, staged.device, fsType);
          t.diagnostic(`verify: ${verdict}`);
          assert.ok(wl.files > 20, `the workload made progress: ${wl.files} files`);
          await guest.run(logoutScript(pv.spec.iscsi.iqn));
        }));
    }
  },
);

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}
