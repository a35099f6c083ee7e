import type { HASanTarget } from "../api/target.js";
import { FINALIZER } from "../api/target.js";
import type { KubeClient } from "../kit/kube-client.js";
import { persistentVolumeName } from "./desired-children.js";
import { NODE_NAMES, childName } from "../pair/names.js";
import { pvCleanup, type LivePersistentVolume } from "./pv-ownership.js";

export type ReclaimPolicy = "Retain" | "Delete";

/** Retain unless the exported PV says Delete: deleting a HASanTarget never drops data by default. */
export function reclaimPolicyOf(t: HASanTarget): ReclaimPolicy {
  return t.spec.export?.persistentVolume?.reclaimPolicy ?? "Retain";
}

/** The backing PVCs follow spec.storage.reclaimPolicy when set (CSI volumes have no exported PV). */
export function storageReclaimPolicyOf(t: HASanTarget): ReclaimPolicy {
  return t.spec.storage?.reclaimPolicy ?? reclaimPolicyOf(t);
}

/**
 * Cleanup on deletion. Pods go first (so nothing writes), then, honouring the reclaim policy, the PV
 * and the PVCs are either deleted or kept (PVCs lose their owner reference so garbage collection
 * leaves them). Everything else follows the owner references.
 */
export async function finalize(client: KubeClient, t: HASanTarget): Promise<string[]> {
  const ns = t.metadata.namespace;
  const done: string[] = [];
  for (const n of NODE_NAMES) {
    await client.delete("v1", "Pod", ns, childName.pod(t.metadata, n));
  }
  const policy = reclaimPolicyOf(t);
  const pvcPolicy = storageReclaimPolicyOf(t);
  const pv = persistentVolumeName(t);
  for (const n of NODE_NAMES) {
    const pvc = childName.pvc(t.metadata, n);
    if (pvcPolicy === "Delete") {
      await client.delete("v1", "PersistentVolumeClaim", ns, pvc);
      done.push(`deleted PersistentVolumeClaim/${pvc}`);
    } else {
      try {
        await client.mergePatch("v1", "PersistentVolumeClaim", ns, pvc, {
          metadata: { ownerReferences: null },
        });
        done.push(`kept PersistentVolumeClaim/${pvc}`);
      } catch (e) {
        if ((e as { code?: number }).code !== 404) throw e;
      }
    }
  }
  if (pv) {
    // Only a PV whose labels carry this target's uid is ours to delete; the uid precondition
    // makes sure it is still the PV that was read.
    const live = await client.getOrUndefined<LivePersistentVolume>("v1", "PersistentVolume", undefined, pv);
    const cleanup = pvCleanup(t, pv, live, policy);
    if (cleanup.kind === "delete") {
      await client.delete("v1", "PersistentVolume", undefined, pv, { uid: cleanup.uid });
      done.push(`deleted PersistentVolume/${pv}`);
    } else if (cleanup.kind === "keep") {
      done.push(`kept PersistentVolume/${pv} (${cleanup.why})`);
    }
  }
  return done;
}

/** Removes the finalizer with the resourceVersion read, so a concurrent change is not overwritten. */
export async function removeFinalizer(client: KubeClient, t: HASanTarget): Promise<void> {
  const finalizers = (t.metadata.finalizers ?? []).filter((f) => f !== FINALIZER);
  await client.mergePatch(t.apiVersion, t.kind, t.metadata.namespace, t.metadata.name, {
    metadata: { finalizers, resourceVersion: t.metadata.resourceVersion },
  });
}

export async function addFinalizer(client: KubeClient, t: HASanTarget): Promise<void> {
  await client.mergePatch(t.apiVersion, t.kind, t.metadata.namespace, t.metadata.name, {
    metadata: {
      finalizers: [...(t.metadata.finalizers ?? []), FINALIZER],
      resourceVersion: t.metadata.resourceVersion,
    },
  });
}
