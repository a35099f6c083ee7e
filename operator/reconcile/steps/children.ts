import { applyAll, driftPath } from "../apply.js";
import { heldPvcExpansions, runningLunSizes } from "../capacity-growth.js";
import { desiredChildren, type KubeObject } from "../desired-children.js";
import { createdOnceChildren } from "../generated-secrets.js";
import { joinErrors, type Step } from "../pass.js";
import { pruneChildren } from "../prune.js";
import { syncExportedPv } from "../pv-export.js";

/**
 * Pods, the exported PV and PVC expansions go their own ways (roll-pods.ts, pv-export.ts,
 * capacity.ts: a refused expansion is reported and stops no other child).
 */
const generic = (held: ReadonlySet<KubeObject>) => (d: KubeObject) =>
  d.kind !== "Pod" && d.kind !== "PersistentVolume" && !held.has(d);

/** Computes every child the pair should have (desired-children.ts, pure). Needs: children, facts, chap. */
export const planChildren: Step = (pass, c) => {
  const o = c.options;
  pass.desired = desiredChildren(
    pass.target,
    {
      serviceIPs: pass.children.serviceIPs,
      chap: pass.chap,
      bothWorking: pass.facts.bothWorking,
      lunSizes: runningLunSizes(pass.children.pods),
    },
    { image: o.image, networkPolicies: o.networkPolicies, resources: o.targetResources },
  );
  pass.expansions = heldPvcExpansions(pass.desired, (n) => c.pvcs.get(n, pass.target.metadata.namespace));
  return Promise.resolve();
};

/**
 * On a full pass, drift correction for kinds the operator does not watch: each child is read and
 * only what someone changed is re-applied, so a steady state makes no writes. Needs: desired, periodic.
 */
export const correctDrift: Step = async (pass, c) => {
  if (!pass.periodic) return;
  const owner = pass.target.metadata.uid;
  for (const d of pass.desired.filter(generic(pass.expansions))) {
    const live = await c.client
      .getOrUndefined(d.apiVersion, d.kind, d.metadata.namespace, d.metadata.name)
      .catch(() => undefined);
    const at = live === undefined ? "(missing)" : driftPath(d, live);
    if (at === undefined && c.applied.changedSinceApplied(owner, d)) {
      // The spec changed this child: applyAll sends it (a dropped field shows in no read back).
    } else if (at !== undefined) {
      pass.log[live === undefined ? "debug" : "info"](
        { kind: d.kind, child: d.metadata.name, at },
        "child drifted or missing; re-applying",
      );
      c.applied.forget(owner, d);
    } else c.applied.recordApplied(owner, d);
  }
};

/** Server-side applies the children other than pods and the PV that changed or went missing. Needs: desired. */
export const applyChildren: Step = async (pass, c) => {
  const watched: Record<string, { get(name: string, namespace?: string): unknown }> = {
    Service: c.services,
    PersistentVolumeClaim: c.pvcs,
    Lease: c.leases,
  };
  const missing = (o: KubeObject) => {
    const inf = watched[o.kind];
    return !!inf && !inf.get(o.metadata.name, o.metadata.namespace);
  };
  const owner = pass.target.metadata.uid;
  pass.applyError = joinErrors(
    pass.secretsError,
    await applyAll(c.client, pass.desired.filter(generic(pass.expansions)), {
      owner,
      applied: c.applied,
      missing,
    }),
  );
};

/** Writes the exported PV, but only one that is absent or ours (pv-export.ts). Needs: desired, periodic. */
export const exportPv: Step = async (pass, c) => {
  const pv = pass.desired.find((d) => d.kind === "PersistentVolume");
  if (!pv) return;
  pass.pvSync = await syncExportedPv(c.client, pass.target, pv, {
    owner: pass.target.metadata.uid,
    applied: c.applied,
    periodic: pass.periodic,
    lock: c.pvLock,
  });
  if (pass.pvSync.outcome === "foreign") pass.specError = joinErrors(pass.specError, pass.pvSync.specError);
  if (pass.pvSync.outcome === "failed") pass.applyError = joinErrors(pass.applyError, pass.pvSync.applyError);
};

/**
 * On a full pass, deletes children no longer desired; with nothing failed to apply, the full pass
 * counts as done. Needs: desired, periodic, applyError.
 */
export const pruneStaleChildren: Step = async (pass, c) => {
  if (!pass.periodic) return;
  const t = pass.target;
  const pruned = await pruneChildren(c.client, t, [...pass.desired, ...createdOnceChildren(t)]);
  if (pruned.length) pass.log.info({ pruned }, "pruned children no longer desired");
  if (!pass.applyError) c.applied.recordPeriodic(t.metadata.uid, t.metadata.generation ?? 0);
};
