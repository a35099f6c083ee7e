/**
 * How a pair authenticates its clients, as a pure function of the spec: CHAP is required unless
 * `spec.auth.chap: Disabled` says otherwise; the credentials are the user's Secret
 * (`spec.auth.chapSecretRef`) or the one the operator generates once (`<name>-chap`). The agent
 * API always requires the pair's token (`<name>-agent`, generated once).
 */
import type { AuthStatus } from "../api/status.js";
import type { HASanTarget } from "../api/target.js";
import { ANNOTATION_CHAP_DEFAULT, childName } from "../pair/names.js";

/**
 * Where the CHAP credentials come from: the user's Secret, a generated one, or none at all
 * (`keptOpen`: a target made before CHAP was the default, left without it so its clients keep
 * logging in, until its spec says otherwise).
 */
export type ChapSource =
  | { kind: "user"; name: string }
  | { kind: "generated"; name: string }
  | { kind: "disabled"; keptOpen: boolean };

export function chapSource(t: HASanTarget): ChapSource {
  const a = t.spec.auth;
  if (a?.chap === "Disabled") return { kind: "disabled", keptOpen: false };
  if (a?.chapSecretRef) return { kind: "user", name: a.chapSecretRef.name };
  if (a?.chap === undefined && t.metadata.annotations?.[ANNOTATION_CHAP_DEFAULT] === "Disabled")
    return { kind: "disabled", keptOpen: true };
  return { kind: "generated", name: childName.chapSecret(t.metadata) };
}

/** What the operator reads of a live target pod to tell who made it. */
export interface PodArgsView {
  spec?: { containers?: { name?: string; args?: string[] }[] };
}

/**
 * Whether a target runs pods an older operator made without CHAP, before CHAP was the default: its
 * spec asks nothing about CHAP and its pods take neither CHAP secret nor agent token. Such a
 * target is marked (ANNOTATION_CHAP_DEFAULT) to stay without CHAP, since turning CHAP on would
 * lock out the initiators that use it (an exported PV's iSCSI source cannot change); its status
 * says so, and `spec.auth.chap: Required` turns CHAP on.
 */
export function madeOpenBeforeChapDefault(t: HASanTarget, pods: readonly PodArgsView[]): boolean {
  const a = t.spec.auth;
  if (a?.chap !== undefined || a?.chapSecretRef || t.metadata.annotations?.[ANNOTATION_CHAP_DEFAULT])
    return false;
  const args = pods.map((p) => p.spec?.containers?.find((c) => c.name === "target")?.args);
  return (
    args.length > 0 &&
    args.every((x) => !!x && !x.includes("--agent-token-file") && !x.includes("--chap-secret-file"))
  );
}

/** The Secret the pods and the exported PV take CHAP credentials from; undefined without CHAP. */
export function chapSecretName(t: HASanTarget): string | undefined {
  const s = chapSource(t);
  return s.kind === "disabled" ? undefined : s.name;
}

/** What status.auth says: what an initiator needs, and where it finds it. */
export function authStatus(t: HASanTarget): AuthStatus {
  const s = chapSource(t);
  if (s.kind === "disabled")
    return s.keptOpen
      ? { mode: "Disabled", generated: false, keptOpen: true }
      : { mode: "Disabled", generated: false };
  return {
    mode: t.spec.auth?.mutual ? "MutualCHAP" : "CHAP",
    chapSecretName: s.name,
    generated: s.kind === "generated",
  };
}

/** Where the pods mount the agent token Secret. */
export const AGENT_TOKEN_DIR = "/etc/hasan/agent";
