/**
 * Whose is the exported PersistentVolume? PVs are cluster-scoped and named freely by
 * spec.export.persistentVolume.name, so a name alone proves nothing: a HASanTarget may change,
 * keep or delete only a PV whose labels carry its own uid. Pure decisions; pv-export.ts and the
 * finalizer do the I/O.
 */
import type { HASanTarget } from "../api/target.js";
import { LABEL_NAMESPACE, LABEL_TARGET, LABEL_TARGET_UID, commonLabels } from "../pair/names.js";

/** What the decisions need of a live PV. */
export interface LivePersistentVolume {
  metadata: { name: string; uid?: string; resourceVersion?: string; labels?: Record<string, string> };
}

/** The labels the operator puts on the PV it creates: the owner's namespace, name and uid. */
export function persistentVolumeLabels(t: HASanTarget): Record<string, string> {
  return {
    ...commonLabels(t.metadata),
    [LABEL_TARGET]: t.metadata.name,
    [LABEL_NAMESPACE]: t.metadata.namespace,
    [LABEL_TARGET_UID]: t.metadata.uid,
  };
}

export type PvOwnership = { kind: "absent" } | { kind: "ours" } | { kind: "foreign"; message: string };

/**
 * absent: no PV of that name. ours: its uid label is this target's uid, or it has no uid label
 * but names this target's namespace and name (made by an operator before uid labels; only the
 * operator or a cluster administrator can label a PV so). Anything else is foreign.
 */
export function pvOwnership(
  t: HASanTarget,
  name: string,
  live: LivePersistentVolume | undefined,
): PvOwnership {
  if (!live) return { kind: "absent" };
  const labels = live.metadata.labels ?? {};
  const uid = labels[LABEL_TARGET_UID];
  const sameTarget =
    labels[LABEL_NAMESPACE] === t.metadata.namespace && labels[LABEL_TARGET] === t.metadata.name;
  if (uid === t.metadata.uid || (uid === undefined && sameTarget)) return { kind: "ours" };
  const field = "spec.export.persistentVolume.name";
  const hint = sameTarget
    ? ` (kept from an earlier HASanTarget ${t.metadata.namespace}/${t.metadata.name} with uid ${uid}; ` +
      "delete that PersistentVolume to let this one create its own)"
    : "; choose another name";
  return {
    kind: "foreign",
    message: `${field}: PersistentVolume ${name} exists and belongs to something else${hint}`,
  };
}

export type PvAction =
  /**
   * Server-side apply; for an existing PV with its resourceVersion as a precondition, so a PV
   * replaced between the read and the write is not taken over.
   */
  { kind: "apply"; resourceVersion?: string } | { kind: "refuse"; message: string };

/** What to do with the desired PV given the live one: never touch a PV that is not ours. */
export function pvAction(t: HASanTarget, name: string, live: LivePersistentVolume | undefined): PvAction {
  const own = pvOwnership(t, name, live);
  if (own.kind === "foreign") return { kind: "refuse", message: own.message };
  if (own.kind === "absent") return { kind: "apply" };
  return { kind: "apply", resourceVersion: live?.metadata.resourceVersion };
}

export type PvCleanup = { kind: "delete"; uid?: string } | { kind: "keep"; why: string } | { kind: "none" };

/** On deletion of the target: delete its PV under reclaimPolicy Delete, and never a PV that is not its own. */
export function pvCleanup(
  t: HASanTarget,
  name: string,
  live: LivePersistentVolume | undefined,
  policy: "Retain" | "Delete",
): PvCleanup {
  const own = pvOwnership(t, name, live);
  if (own.kind === "absent") return { kind: "none" };
  if (own.kind === "foreign") return { kind: "keep", why: "not created for this HASanTarget" };
  if (policy === "Delete") return { kind: "delete", uid: live?.metadata.uid };
  return { kind: "keep", why: "reclaimPolicy Retain" };
}
