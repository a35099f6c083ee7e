/**
 * Applies the exported PersistentVolume, but only one that is absent or ours (pv-ownership.ts).
 * The PV is read before every write, under a per-name lock so two HASanTargets naming the same
 * PV cannot both find it absent; a PV that exists is written with its resourceVersion as a
 * precondition. Also the PV's drift check: it is read on periodic passes and re-applied only
 * when it differs from what the operator wants.
 */
import type { HASanTarget } from "../api/target.js";
import type { KeyedLock } from "../kit/keyed-lock.js";
import type { KubeClient } from "../kit/kube-client.js";
import type { ApplyCache } from "./apply-cache.js";
import { driftPath } from "./apply.js";
import type { KubeObject } from "./desired-children.js";
import { FIELD_MANAGER } from "../pair/names.js";
import { pvAction, type LivePersistentVolume } from "./pv-ownership.js";

export type PvSyncResult =
  | { outcome: "unchanged" | "applied" }
  /** the name belongs to another PV: a spec error, and nothing was written */
  | { outcome: "foreign"; specError: string }
  | { outcome: "failed"; applyError: string };

export async function syncExportedPv(
  client: KubeClient,
  t: HASanTarget,
  pv: KubeObject,
  o: { owner: string; applied: ApplyCache; periodic: boolean; lock: KeyedLock },
): Promise<PvSyncResult> {
  if (!o.periodic && !o.applied.needsApply(o.owner, pv)) return { outcome: "unchanged" };
  const name = pv.metadata.name;
  return await o.lock.run(`PersistentVolume/${name}`, async (): Promise<PvSyncResult> => {
    try {
      const live = await client.getOrUndefined<LivePersistentVolume>(
        "v1",
        "PersistentVolume",
        undefined,
        name,
      );
      const action = pvAction(t, name, live);
      if (action.kind === "refuse") {
        o.applied.forget(o.owner, pv);
        return { outcome: "foreign", specError: action.message };
      }
      if (live && driftPath(pv, live) === undefined && !o.applied.changedSinceApplied(o.owner, pv)) {
        o.applied.recordApplied(o.owner, pv);
        return { outcome: "unchanged" };
      }
      const body = action.resourceVersion
        ? { ...pv, metadata: { ...pv.metadata, resourceVersion: action.resourceVersion } }
        : pv;
      await client.apply(body, FIELD_MANAGER, true);
      o.applied.recordApplied(o.owner, pv);
      return { outcome: "applied" };
    } catch (e) {
      o.applied.forget(o.owner, pv);
      return { outcome: "failed", applyError: `PersistentVolume ${name}: ${(e as Error).message}` };
    }
  });
}
