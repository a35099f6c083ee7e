import { wasEverSynchronized } from "../../status/conditions.js";
import { evictionDecision } from "../../pair/eviction-decision.js";
import { partnerOf } from "../../pair/facts.js";
import type { NodeName } from "../../pair/names.js";
import { podAction, protocolUpgradeReplaces } from "../../pair/pod-action.js";
import { applyAll } from "../apply.js";
import type { KubeObject } from "../desired-children.js";
import type { ReconcileContext, Step } from "../pass.js";

/**
 * Creates missing target pods and replaces outdated ones, one node at a time and only when the
 * pair can spare that node (pod-action.ts). Needs: desired, nodes, facts, secretsError, imageError.
 */
export const rollPods: Step = async (pass, c) => {
  const t = pass.target;
  const namespace = t.metadata.namespace;
  const { desired, nodes, facts, log } = pass;
  const pods = pass.children.pods;
  const ever = facts.bothWorking || wasEverSynchronized(t.status?.conditions);
  for (const d of pass.imageError ? [] : desired.filter((x) => x.kind === "Pod")) {
    const node = d.metadata.labels?.["hasan.dev/node"] as NodeName;
    const existing = pods[node];
    const mayDisrupt =
      evictionDecision(
        {
          name: d.metadata.name,
          namespace,
          labels: d.metadata.labels ?? {},
          phase: existing?.status?.phase,
        },
        { nodes, everSynchronized: ever },
      ).allowed ||
      (facts.serving.length === 0 && !ever) ||
      protocolUpgradeReplaces(
        d,
        existing,
        desired.find((x) => x.kind === "Pod" && x.metadata.labels?.["hasan.dev/node"] === partnerOf(node)),
        pods[partnerOf(node)],
        nodes.find((x) => x.name === partnerOf(node))?.agent?.replication?.peer.authError?.kind,
      );
    const action = podAction(d, existing, mayDisrupt);
    const claim = action.kind === "create" && !pass.secretsError ? await terminatingClaim(c, d) : undefined;
    if (action.kind === "create" && pass.secretsError) {
      log.debug({ pod: d.metadata.name }, "pod waits for its generated Secrets");
    } else if (claim) {
      // A pod that names a terminating PVC holds it (pvc-protection) and would keep it terminating
      // forever; the PVC's deletion re-queues this target, and the next pass re-creates both.
      log.info({ pod: d.metadata.name, pvc: claim }, "pod waits until its deleted PVC is gone");
    } else if (action.kind === "create") {
      pass.applyError = (await applyAll(c.client, [d])) ?? pass.applyError;
      log.info({ pod: d.metadata.name }, "created target pod");
    } else if (action.kind === "replace") {
      await c.client.delete("v1", "Pod", namespace, d.metadata.name);
      log.info({ pod: d.metadata.name, why: action.why }, "replacing target pod");
      break; // one node at a time
    } else if (action.kind === "wait") {
      log.debug({ pod: d.metadata.name, why: action.why }, "pod waits");
    }
  }
};

/**
 * The name of a PVC the pod would mount that is being deleted, read from the API server (not the
 * cache: a pod created on a stale view would pin the claim). Only asked before creating a pod.
 */
async function terminatingClaim(c: ReconcileContext, pod: KubeObject): Promise<string | undefined> {
  const spec = pod.spec as { volumes?: { persistentVolumeClaim?: { claimName?: string } }[] } | undefined;
  for (const v of spec?.volumes ?? []) {
    const name = v.persistentVolumeClaim?.claimName;
    if (!name) continue;
    const live = await c.client
      .getOrUndefined<{ metadata: { deletionTimestamp?: string } }>(
        "v1",
        "PersistentVolumeClaim",
        pod.metadata.namespace,
        name,
      )
      .catch(() => undefined);
    if (live?.metadata.deletionTimestamp) return name;
  }
  return undefined;
}
