/**
 * The peer link's shared secret (the key `secret` that both target pods mount).
 *
 * A user-provided `spec.replication.peerSecretRef` is only mounted: the operator never writes it.
 * Otherwise the operator generates `<name>-peer` exactly once, with a create call: the API server
 * lets one create win, so two operator instances racing on a new target end with one value (the
 * loser's create answers 409 and it reads what exists). From then on the Secret in the cluster is
 * the only truth: it is never applied, patched or cached by value, so neither a reconcile pass, a
 * restart nor a second operator can give it a new value that a recreated pod would read while its
 * partner still holds the old one.
 */
import { randomBytes } from "node:crypto";
import type { HASanTarget } from "../api/target.js";
import { isConflict, type KubeClient } from "../kit/kube-client.js";
import { ownerReference, peerSecretName, type KubeObject } from "./desired-children.js";
import { FIELD_MANAGER, childName, commonLabels } from "./names.js";

export const PEER_SECRET_KEY = "secret";

/** What the operator reads of a Secret. */
export interface SecretView {
  metadata?: { name?: string; uid?: string };
  data?: Record<string, string>;
}

/** Where the pods' peer secret comes from. */
export type PeerSecretSource = { kind: "user" | "generated"; name: string };

export function peerSecretSource(t: HASanTarget): PeerSecretSource {
  return { kind: t.spec.replication?.peerSecretRef ? "user" : "generated", name: peerSecretName(t) };
}

/** 32 random bytes as 64 hex characters, base64-encoded for `data`. */
export function freshPeerSecretData(): string {
  return Buffer.from(randomBytes(32).toString("hex")).toString("base64");
}

/** The generated Secret as created (once). */
export function generatedPeerSecret(t: HASanTarget, data: string): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: childName.peerSecret(t.metadata),
      namespace: t.metadata.namespace,
      labels: commonLabels(t.metadata),
      ownerReferences: [ownerReference(t)],
    },
    type: "Opaque",
    data: { [PEER_SECRET_KEY]: data },
  };
}

/** Children the target owns that are created once and never applied: kept by prune while wanted. */
export function createdOnceChildren(t: HASanTarget): KubeObject[] {
  const s = peerSecretSource(t);
  if (s.kind !== "generated") return [];
  return [{ apiVersion: "v1", kind: "Secret", metadata: { name: s.name, namespace: t.metadata.namespace } }];
}

export type PeerSecretDecision =
  /** spec.replication.peerSecretRef: never written by the operator */
  | { action: "leave"; name: string }
  /** the generated Secret exists with a value: used as it is, never rewritten */
  | { action: "keep"; name: string }
  /** no generated Secret yet: create it (a create, not an apply: it fails if someone else was first) */
  | { action: "create"; name: string; object: KubeObject }
  /** the generated Secret exists without a usable value: reported, not overwritten */
  | { action: "refuse"; name: string; error: string };

/**
 * What to do about the peer Secret, given the live generated Secret (undefined: not found).
 * A pure decision: an existing value always wins over a new one.
 */
export function decidePeerSecret(
  t: HASanTarget,
  live: SecretView | undefined,
  fresh: () => string = freshPeerSecretData,
): PeerSecretDecision {
  const source = peerSecretSource(t);
  if (source.kind === "user") return { action: "leave", name: source.name };
  if (!live) return { action: "create", name: source.name, object: generatedPeerSecret(t, fresh()) };
  const value = live.data?.[PEER_SECRET_KEY];
  if (value && Buffer.from(value, "base64").length > 0) return { action: "keep", name: source.name };
  return {
    action: "refuse",
    name: source.name,
    error:
      `peer Secret ${source.name} has no value under key '${PEER_SECRET_KEY}'; the operator never ` +
      `overwrites an existing peer Secret: delete it to have a new one generated, or set ` +
      `spec.replication.peerSecretRef to a Secret of your own`,
  };
}

export interface EnsuredPeerSecret {
  name: string;
  /** user: spec.replication.peerSecretRef; existing: found; created: by this call; lostRace: another creator won */
  outcome: "user" | "existing" | "created" | "lostRace";
}

/**
 * Makes sure the peer Secret exists without ever replacing a value: reads it, creates it when
 * missing, and on 409 AlreadyExists reads the winner's Secret instead. Throws when the Secret
 * cannot be used as it is (the reason is meant for the target's status).
 */
export async function ensurePeerSecret(
  client: KubeClient,
  t: HASanTarget,
  fresh: () => string = freshPeerSecretData,
): Promise<EnsuredPeerSecret> {
  const ns = t.metadata.namespace;
  const get = (name: string) => client.getOrUndefined<SecretView>("v1", "Secret", ns, name);
  const source = peerSecretSource(t);
  if (source.kind === "user") {
    // Read only: the user's Secret is theirs to write and rotate.
    const live = await get(source.name);
    if (!live) throw new Error(`spec.replication.peerSecretRef: Secret ${source.name} not found`);
    if (!live.data?.[PEER_SECRET_KEY])
      throw new Error(
        `spec.replication.peerSecretRef: Secret ${source.name} has no key '${PEER_SECRET_KEY}'`,
      );
    return { name: source.name, outcome: "user" };
  }
  const d = decidePeerSecret(t, await get(source.name), fresh);
  if (d.action === "create") {
    try {
      await client.create(d.object, FIELD_MANAGER);
      return { name: d.name, outcome: "created" };
    } catch (e) {
      if (!isConflict(e)) throw e;
    }
    const again = decidePeerSecret(t, await get(d.name), fresh);
    if (again.action === "keep") return { name: again.name, outcome: "lostRace" };
    if (again.action === "refuse") throw new Error(again.error);
    throw new Error(`peer Secret ${d.name}: create conflicted, yet it is gone; retrying`);
  }
  if (d.action === "refuse") throw new Error(d.error);
  return { name: d.name, outcome: "existing" };
}
