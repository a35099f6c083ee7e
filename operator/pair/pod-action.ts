import { ANNOTATION_TEMPLATE_HASH } from "./names.js";

/** The parts of a desired target pod the decision reads. */
export interface DesiredPod {
  metadata: { name: string; annotations?: Record<string, string> };
}

export interface ExistingPod {
  metadata: { name: string; annotations?: Record<string, string>; deletionTimestamp?: string };
  status?: { phase?: string };
}

export type PodAction =
  { kind: "create" } | { kind: "keep" } | { kind: "wait"; why: string } | { kind: "replace"; why: string };

/**
 * What to do with one target pod. Pod specs are immutable, so a changed template means delete and
 * re-create; that happens only when taking this node down is safe right now (mayDisrupt), so a spec
 * change rolls through the pair one node at a time, waiting for Working in between.
 */
export function podAction(
  desired: DesiredPod,
  existing: ExistingPod | undefined,
  mayDisrupt: boolean,
): PodAction {
  if (!existing) return { kind: "create" };
  if (existing.metadata.deletionTimestamp) return { kind: "wait", why: "pod is terminating" };
  // A pod that ended (Succeeded/Failed) never runs again; like a StatefulSet, start a new one.
  const phase = existing.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") return { kind: "replace", why: `pod ended (${phase})` };
  const want = desired.metadata.annotations?.[ANNOTATION_TEMPLATE_HASH];
  const have = existing.metadata.annotations?.[ANNOTATION_TEMPLATE_HASH];
  if (want === have) return { kind: "keep" };
  if (!mayDisrupt)
    return { kind: "wait", why: "pod template changed; waiting until the pair can spare this node" };
  return { kind: "replace", why: `pod template changed (${have ?? "none"} → ${want})` };
}

/**
 * Whether an outdated pod may be replaced although the pair cannot spare it: its partner already
 * runs the desired template and refuses this node's peer protocol version (an image change across
 * protocol versions). The two can never link, so waiting for Working would stall the rollout
 * forever; replacing this pod restarts it on its own volume with the partner's version (a short
 * pause of I/O while it restarts; its data stays on its volume).
 */
export function protocolUpgradeReplaces(
  desired: DesiredPod,
  existing: ExistingPod | undefined,
  partnerDesired: DesiredPod | undefined,
  partner: ExistingPod | undefined,
  partnerAuthErrorKind: string | undefined,
): boolean {
  if (!existing || !partner || !partnerDesired || partnerAuthErrorKind !== "version") return false;
  const hash = (o: { metadata: { annotations?: Record<string, string> } }) =>
    o.metadata.annotations?.[ANNOTATION_TEMPLATE_HASH];
  return hash(existing) !== hash(desired) && hash(partner) === hash(partnerDesired);
}
