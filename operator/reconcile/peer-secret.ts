/**
 * The peer link's shared secret (the key `secret` that both target pods mount).
 *
 * A user-provided `spec.replication.peerSecretRef` is only mounted: the operator never writes it.
 * Otherwise the operator generates `<name>-peer` exactly once (created-once-secret.ts): never
 * applied, patched or cached by value, so no pass, restart or second operator can give it a new
 * value that a recreated pod would read while its partner still holds the old one.
 */
import { randomBytes } from "node:crypto";
import type { HASanTarget } from "../api/target.js";
import type { KubeClient } from "../kit/kube-client.js";
import {
  createdOnceObject,
  decideCreatedOnce,
  ensureCreatedOnce,
  type CreatedOnceSecret,
  type SecretView,
} from "./created-once-secret.js";
import { peerSecretName, type KubeObject } from "./desired-children.js";
import { childName } from "../pair/names.js";

export type { SecretView } from "./created-once-secret.js";

export const PEER_SECRET_KEY = "secret";

/** Where the pods' peer secret comes from. */
export type PeerSecretSource = { kind: "user" | "generated"; name: string };

export function peerSecretSource(t: HASanTarget): PeerSecretSource {
  return { kind: t.spec.replication?.peerSecretRef ? "user" : "generated", name: peerSecretName(t) };
}

/** 32 random bytes as 64 hex characters. */
const freshPeerSecret = (): string => randomBytes(32).toString("hex");

/** 32 random bytes as 64 hex characters, base64-encoded for `data`. */
export function freshPeerSecretData(): string {
  return Buffer.from(freshPeerSecret()).toString("base64");
}

/** The generated peer Secret, one of the operator's created-once Secrets. */
export const PEER_SECRET: CreatedOnceSecret = {
  what: "peer Secret",
  generatedName: (t) => (t.spec.replication?.peerSecretRef ? undefined : childName.peerSecret(t.metadata)),
  type: "Opaque",
  fresh: () => ({ [PEER_SECRET_KEY]: freshPeerSecret() }),
  problem: (_t, values) =>
    values[PEER_SECRET_KEY] ? undefined : `has no value under key '${PEER_SECRET_KEY}'`,
  remedy:
    "delete it to have a new one generated, or set spec.replication.peerSecretRef to a Secret of your own",
};

/** The generated Secret as created (once), with `data` as given (base64). */
export function generatedPeerSecret(t: HASanTarget, data: string): KubeObject {
  const o = createdOnceObject(PEER_SECRET, t, childName.peerSecret(t.metadata), {});
  return { ...o, data: { [PEER_SECRET_KEY]: data } };
}

export type PeerSecretDecision =
  /** spec.replication.peerSecretRef: never written by the operator */
  | { action: "leave"; name: string }
  | { action: "keep"; name: string }
  | { action: "create"; name: string; object: KubeObject }
  | { action: "refuse"; name: string; error: string };

const peerFresh = (fresh: () => string) => () => ({
  [PEER_SECRET_KEY]: Buffer.from(fresh(), "base64").toString("utf8"),
});

/** What to do about the peer Secret, given the live generated Secret (undefined: not found). */
export function decidePeerSecret(
  t: HASanTarget,
  live: SecretView | undefined,
  fresh: () => string = freshPeerSecretData,
): PeerSecretDecision {
  const d = decideCreatedOnce(PEER_SECRET, t, live, peerFresh(fresh));
  return d.action === "none" ? { action: "leave", name: peerSecretName(t) } : d;
}

export interface EnsuredPeerSecret {
  name: string;
  /** user: spec.replication.peerSecretRef; existing: found; created: by this call; lostRace: another creator won */
  outcome: "user" | "existing" | "created" | "lostRace";
}

/**
 * Makes sure the peer Secret exists without ever replacing a value; a user's Secret is only read.
 * Throws when the Secret cannot be used as it is (the reason is meant for the target's status).
 */
export async function ensurePeerSecret(
  client: KubeClient,
  t: HASanTarget,
  fresh: () => string = freshPeerSecretData,
): Promise<EnsuredPeerSecret> {
  const source = peerSecretSource(t);
  if (source.kind === "user") {
    // Read only: the user's Secret is theirs to write and rotate.
    const live = await client.getOrUndefined<SecretView>("v1", "Secret", t.metadata.namespace, source.name);
    if (!live) throw new Error(`spec.replication.peerSecretRef: Secret ${source.name} not found`);
    if (!live.data?.[PEER_SECRET_KEY])
      throw new Error(
        `spec.replication.peerSecretRef: Secret ${source.name} has no key '${PEER_SECRET_KEY}'`,
      );
    return { name: source.name, outcome: "user" };
  }
  const r = await ensureCreatedOnce(client, PEER_SECRET, t, peerFresh(fresh));
  if (!r) throw new Error("peer Secret: neither generated nor the user's"); // unreachable
  return r;
}
