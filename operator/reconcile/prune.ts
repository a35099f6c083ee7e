import type { HASanTarget } from "../api/target.js";
import type { KubeClient } from "../kit/kube-client.js";
import type { KubeObject } from "./desired-children.js";
import { LABEL_NAMESPACE, LABEL_TARGET } from "../pair/names.js";
import { pvOwnership } from "./pv-ownership.js";

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
  { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy" },
  { apiVersion: "v1", kind: "PersistentVolume", clusterScoped: true },
];

interface Listed {
  metadata: {
    name: string;
    uid: string;
    labels?: Record<string, string>;
    ownerReferences?: { uid: string; controller?: boolean }[];
  };
}

/**
 * Objects owned by this target that are not desired: by controller owner reference, or for the
 * cluster-scoped PV by its owner labels with this target's uid (a label selector on namespace and
 * name alone would also find a PV kept from an earlier target of the same name).
 */
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
        ? pvOwnership(t, o.metadata.name, o).kind === "ours"
        : (o.metadata.ownerReferences ?? []).some((r) => r.uid === t.metadata.uid && r.controller),
    )
    .filter((o) => !keep.has(o.metadata.name))
    .map((o) => o.metadata.name);
}

/** The uid precondition of a prune's delete: only the object that was listed goes. */
function listedUid(list: readonly Listed[], name: string): string | undefined {
  return list.find((o) => o.metadata.name === name)?.metadata.uid;
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
      await client.delete(r.apiVersion, r.kind, r.clusterScoped ? undefined : t.metadata.namespace, name, {
        uid: listedUid(list.items, name),
      });
      pruned.push(`${r.kind}/${name}`);
    }
  }
  return pruned;
}
