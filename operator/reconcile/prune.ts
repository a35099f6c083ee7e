import type { HASanTarget } from "../api/target.js";
import type { KubeClient } from "../kit/kube-client.js";
import type { KubeObject } from "./desired-children.js";
import { LABEL_NAMESPACE, LABEL_TARGET } from "./names.js";

/**
 * Kinds whose presence depends on the spec. Pods and PVCs are always desired while the target exists
 * (they are only briefly absent from the desired set, e.g. before Service IPs exist), so they are never
 * pruned: they go with the finalizer.
 */
const PRUNABLE: { apiVersion: string; kind: string; clusterScoped?: boolean }[] = [
  { apiVersion: "v1", kind: "Secret" },
  { apiVersion: "v1", kind: "Service" },
  { apiVersion: "v1", kind: "ServiceAccount" },
  { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role" },
  { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding" },
  { apiVersion: "coordination.k8s.io/v1", kind: "Lease" },
  { apiVersion: "policy/v1", kind: "PodDisruptionBudget" },
  { apiVersion: "v1", kind: "PersistentVolume", clusterScoped: true },
];

interface Listed {
  metadata: { name: string; uid: string; ownerReferences?: { uid: string; controller?: boolean }[] };
}

/** Objects owned by this target (owner reference, or labels for the cluster-scoped PV) that are not desired. */
export function unwanted(
  t: HASanTarget,
  kind: string,
  existing: readonly Listed[],
  desired: readonly KubeObject[],
): string[] {
  const keep = new Set(desired.filter((d) => d.kind === kind).map((d) => d.metadata.name));
  return existing
    .filter((o) =>
      kind === "PersistentVolume"
        ? true // listed by target and namespace labels
        : (o.metadata.ownerReferences ?? []).some((r) => r.uid === t.metadata.uid && r.controller),
    )
    .map((o) => o.metadata.name)
    .filter((name) => !keep.has(name));
}

/** Deletes children that the spec no longer asks for; returns their "Kind/name". */
export async function pruneChildren(
  client: KubeClient,
  t: HASanTarget,
  desired: readonly KubeObject[],
): Promise<string[]> {
  const pruned: string[] = [];
  for (const r of PRUNABLE) {
    const selector = r.clusterScoped
      ? `${LABEL_TARGET}=${t.metadata.name},${LABEL_NAMESPACE}=${t.metadata.namespace}`
      : `${LABEL_TARGET}=${t.metadata.name}`;
    const list = await client.list<Listed>(
      r.apiVersion,
      r.kind,
      r.clusterScoped ? undefined : t.metadata.namespace,
      {
        labelSelector: selector,
      },
    );
    for (const name of unwanted(t, r.kind, list.items, desired)) {
      await client.delete(r.apiVersion, r.kind, r.clusterScoped ? undefined : t.metadata.namespace, name);
      pruned.push(`${r.kind}/${name}`);
    }
  }
  return pruned;
}
