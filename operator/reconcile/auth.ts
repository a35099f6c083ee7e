/**
 * How a pair authenticates its clients, as a pure function of the spec: CHAP is required unless
 * `spec.auth.chap: Disabled` says otherwise; the credentials are the user's Secret
 * (`spec.auth.chapSecretRef`) or the one the operator generates once (`<name>-chap`). The agent
 * API always requires the pair's token (`<name>-agent`, generated once).
 */
import type { AuthStatus } from "../api/status.js";
import type { HASanTarget } from "../api/target.js";
import { childName } from "./names.js";

/** Where the CHAP credentials come from: the user's Secret, a generated one, or none at all. */
export type ChapSource =
  { kind: "user"; name: string } | { kind: "generated"; name: string } | { kind: "disabled" };

export function chapSource(t: HASanTarget): ChapSource {
  const a = t.spec.auth;
  if (a?.chap === "Disabled") return { kind: "disabled" };
  if (a?.chapSecretRef) return { kind: "user", name: a.chapSecretRef.name };
  return { kind: "generated", name: childName.chapSecret(t.metadata) };
}

/** The Secret the pods and the exported PV take CHAP credentials from; undefined without CHAP. */
export function chapSecretName(t: HASanTarget): string | undefined {
  const s = chapSource(t);
  return s.kind === "disabled" ? undefined : s.name;
}

/** What status.auth says: what an initiator needs, and where it finds it. */
export function authStatus(t: HASanTarget): AuthStatus {
  const s = chapSource(t);
  if (s.kind === "disabled") return { mode: "Disabled", generated: false };
  return {
    mode: t.spec.auth?.mutual ? "MutualCHAP" : "CHAP",
    chapSecretName: s.name,
    generated: s.kind === "generated",
  };
}

/** The key of the agent token Secret, and where the pods mount it. */
export const AGENT_TOKEN_KEY = "token";
export const AGENT_TOKEN_DIR = "/etc/hasan/agent";

export function agentTokenSecretName(t: Pick<HASanTarget, "metadata">): string {
  return childName.agentToken(t.metadata);
}
