/**
 * The Secrets the operator generates once per target (created-once-secret.ts): the peer link's
 * secret, the CHAP credentials (unless the user names a Secret or disables CHAP) and the agent
 * token. Pods are created only once all of them exist.
 */
import type { HASanTarget } from "../api/target.js";
import type { KubeClient } from "../kit/kube-client.js";
import { AGENT_TOKEN_SECRET } from "./agent-token-secret.js";
import { GENERATED_CHAP_SECRET } from "./chap-secret.js";
import {
  createdOnceNames,
  ensureCreatedOnce,
  type CreatedOnceSecret,
  type EnsuredSecret,
} from "./created-once-secret.js";
import type { KubeObject } from "./desired-children.js";
import { PEER_SECRET } from "./peer-secret.js";

export function generatedSecretKinds(): readonly CreatedOnceSecret[] {
  return [PEER_SECRET, GENERATED_CHAP_SECRET, AGENT_TOKEN_SECRET];
}

/** Children the target owns that are created once and never applied: kept by prune while wanted. */
export function createdOnceChildren(t: HASanTarget): KubeObject[] {
  return createdOnceNames(t, generatedSecretKinds());
}

export interface GeneratedSecretsResult {
  ensured: (EnsuredSecret & { what: string })[];
  /** problems, one per Secret that could not be ensured (for the status) */
  errors: string[];
}

/** Ensures each generated Secret of the target; one failing does not stop the others. */
export async function ensureGeneratedSecrets(
  client: KubeClient,
  t: HASanTarget,
  kinds: readonly CreatedOnceSecret[] = generatedSecretKinds(),
): Promise<GeneratedSecretsResult> {
  const out: GeneratedSecretsResult = { ensured: [], errors: [] };
  for (const k of kinds) {
    try {
      const r = await ensureCreatedOnce(client, k, t);
      if (r) out.ensured.push({ ...r, what: k.what });
    } catch (e) {
      out.errors.push((e as Error).message);
    }
  }
  return out;
}
