// Shared by the install and mission end-to-end tests: the chart installed with Helm on the local
// cluster, typed reads of HASanTargets and pods, and diagnostics when a test fails.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import type { Cluster } from "../support/cluster.js";
import { waitFor } from "../support/processes.js";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const chartDir = path.join(repoRoot, "charts/hasan");
const CRD = "hasantargets.hasan.dev";

const Meta = z.object({
  name: z.string(),
  uid: z.string(),
  annotations: z.record(z.string(), z.string()).optional(),
  labels: z.record(z.string(), z.string()).optional(),
});

export const PodJson = z.object({
  metadata: Meta,
  spec: z.object({ nodeName: z.string().optional() }),
  status: z
    .object({
      phase: z.string().optional(),
      containerStatuses: z.array(z.object({ name: z.string(), restartCount: z.int() })).optional(),
    })
    .optional(),
});
export type PodJson = z.infer<typeof PodJson>;

const Condition = z.object({ type: z.string(), status: z.string(), reason: z.string(), message: z.string() });
export const TargetJson = z.object({
  metadata: Meta,
  status: z
    .object({
      phase: z.string().optional(),
      iqn: z.string().optional(),
      portals: z.array(z.string()).optional(),
      persistentVolumeName: z.string().optional(),
      conditions: z.array(Condition).optional(),
      nodes: z
        .array(z.object({ name: z.string(), state: z.string(), pod: z.string().optional() }))
        .optional(),
    })
    .optional(),
});
export type TargetJson = z.infer<typeof TargetJson>;

/**
 * What every install on the local cluster sets: no CSI node plugin. Its DaemonSet needs an iSCSI
 * initiator (iscsid, multipathd) on each node and the node-driver-registrar image, and the local
 * node agent has neither; the CSI controller Deployment runs (its sidecars from their Go modules).
 */
export const localClusterValues = ["--set", "csi.node.enabled=false"];

export async function getJson<T>(c: Cluster, schema: z.ZodType<T>, args: string[]): Promise<T> {
  return schema.parse(JSON.parse(await c.kubectlOk([...args, "-o", "json"])));
}

export function condition(t: TargetJson, type: string): string | undefined {
  return t.status?.conditions?.find((x) => x.type === type)?.status;
}

export function nodeState(t: TargetJson, node: "a" | "b"): string | undefined {
  return t.status?.nodes?.find((n) => n.name === node)?.state;
}

export async function helmOk(c: Cluster, args: string[], timeoutMs = 600_000): Promise<string> {
  const r = await c.helm(args, { timeoutMs });
  if (r.code !== 0) throw new Error(`helm ${args.join(" ")}: exit ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/**
 * The chart owns the cluster-wide CRD. One applied without Helm (operator-up, integration tests) or
 * left by a release that is gone is adopted for this release; one owned by a live release stays
 * with it and this release installs without it. Afterwards a CRD this release owned (kept by
 * crds.keep) is handed back: Helm's ownership marks are removed so the next installer may adopt it.
 */
export async function crdOwnership(
  c: Cluster,
  release: string,
  namespace: string,
): Promise<{ flags: string[]; restore: () => Promise<void> }> {
  const restore = async () => {
    const got = await c.kubectl(["get", "crd", CRD, "-o", "json"]);
    if (got.code !== 0) return;
    const crd = z.object({ metadata: Meta }).parse(JSON.parse(got.stdout));
    if (crd.metadata.annotations?.["meta.helm.sh/release-name"] !== release) return;
    await c.kubectl(["label", "crd", CRD, "app.kubernetes.io/managed-by-"]);
    await c.kubectl([
      "annotate",
      "crd",
      CRD,
      "meta.helm.sh/release-name-",
      "meta.helm.sh/release-namespace-",
      "helm.sh/resource-policy-",
    ]);
  };
  const got = await c.kubectl(["get", "crd", CRD, "-o", "json"]);
  if (got.code !== 0) return { flags: [], restore };
  const crd = z.object({ metadata: Meta }).parse(JSON.parse(got.stdout));
  const owner = crd.metadata.annotations?.["meta.helm.sh/release-name"];
  const ownerNs = crd.metadata.annotations?.["meta.helm.sh/release-namespace"];
  if (owner && ownerNs && (await c.helm(["status", owner, "-n", ownerNs])).code === 0) {
    return { flags: ["--set", "crds.enabled=false"], restore: async () => {} };
  }
  await c.kubectlOk(["label", "crd", CRD, "app.kubernetes.io/managed-by=Helm", "--overwrite"]);
  await c.kubectlOk([
    "annotate",
    "crd",
    CRD,
    `meta.helm.sh/release-name=${release}`,
    `meta.helm.sh/release-namespace=${namespace}`,
    "--overwrite",
  ]);
  return { flags: [], restore };
}

export async function waitForTarget(
  c: Cluster,
  namespace: string,
  name: string,
  what: string,
  ok: (t: TargetJson) => boolean,
  timeoutMs = 300_000,
): Promise<TargetJson> {
  return await waitFor(
    `${namespace}/${name}: ${what}`,
    async () => {
      const t = await getJson(c, TargetJson, ["-n", namespace, "get", "hst", name]);
      return ok(t) ? t : undefined;
    },
    timeoutMs,
    500,
  );
}

/** Operator logs, events by time, pod descriptions and the HASanTargets: printed when a test fails. */
export async function dumpDiagnostics(c: Cluster, operatorNs: string, namespaces: string[]): Promise<void> {
  const out: string[] = [];
  const pods = await c.kubectl(["-n", operatorNs, "get", "pods", "-o", "name"]);
  for (const p of pods.stdout.split("\n").filter(Boolean)) {
    const name = p.replace(/^pod\//, "");
    const log = await c.podLogs(operatorNs, name).catch((e: unknown) => String(e));
    out.push(`--- operator ${name} (tail) ---\n${log.slice(-8000)}`);
  }
  for (const ns of [operatorNs, ...namespaces]) {
    const ev = await c.kubectl(["-n", ns, "get", "events", "--sort-by=.lastTimestamp"]);
    out.push(`--- events ${ns} ---\n${ev.stdout}${ev.stderr}`);
    const desc = await c.kubectl(["-n", ns, "describe", "pods"]);
    out.push(`--- pods ${ns} ---\n${desc.stdout.slice(-12000)}`);
  }
  for (const ns of namespaces) {
    const hst = await c.kubectl(["-n", ns, "get", "hst", "-o", "yaml"]);
    out.push(`--- HASanTargets ${ns} ---\n${hst.stdout}`);
    const targets = await c.kubectl(["-n", ns, "get", "pods", "-o", "name"]);
    for (const p of targets.stdout.split("\n").filter(Boolean)) {
      const name = p.replace(/^pod\//, "");
      const log = await c.podLogs(ns, name).catch((e: unknown) => String(e));
      out.push(`--- ${ns}/${name} (tail) ---\n${log.slice(-4000)}`);
    }
  }
  process.stderr.write(`${out.join("\n")}\n`);
}

/**
 * Removes what an install test left: the release (when installed), the target's finalizer (with no
 * operator nothing removes it), the test's namespace with its data, its exported PVs, the
 * operator's namespace, and the CRD's ownership as it was.
 */
export async function removeInstall(
  c: Cluster,
  o: { release: string; operatorNs: string; ns: string; target: string; installed: boolean },
  restoreCrd: () => Promise<void>,
): Promise<void> {
  if (o.installed) await c.helm(["uninstall", o.release, "-n", o.operatorNs, "--wait", "--timeout", "2m"]);
  await c.kubectl([
    "-n",
    o.ns,
    "patch",
    "hst",
    o.target,
    "--type=merge",
    "-p",
    '{"metadata":{"finalizers":null}}',
  ]);
  const deleteNamespace = (n: string) =>
    c.kubectl(["delete", "namespace", n, "--ignore-not-found", "--timeout=180s"], { timeoutMs: 200_000 });
  await deleteNamespace(o.ns);
  await c.kubectl(["delete", "pv", "-l", `hasan.dev/namespace=${o.ns}`, "--ignore-not-found"]);
  await deleteNamespace(o.operatorNs);
  await restoreCrd();
}
