/**
 * Mutual authentication of the peer link (peer protocol 3, whose handshake is version 2's). Each
 * side holds one or more secrets it accepts (more than one only during a rotation: the current
 * value and the previous one, see peer-secrets.ts), proves knowledge of every one of them, and
 * accepts the partner when at least one of the partner's proofs matches one of its own secrets:
 *
 *   dialer (a)   → hello       {node:"a", nonce Na, version: 7, minVersion: 6}
 *   acceptor (b) → helloReply  {node:"b", nonce Nb, macs: [HMAC(s, "hasan-peer-v2|b|Na|Nb") for s in b's], version: 7, records}
 *   dialer (a)   → helloFinish {macs: [HMAC(s, "hasan-peer-v2|a|Na|Nb") for s in a's], records}
 *
 * Why this is sound:
 * - Replay: every MAC covers both fresh nonces, so a proof from one connection is worthless on another.
 * - Reflection: every MAC names the node that made it, and a node only accepts proofs made by its
 *   partner's name, so a node's own proofs sent back to it never pass.
 * - Downgrade: a MAC proves one secret; a node accepts only secrets it holds itself. Dropping proofs
 *   from the list (an attacker on the path can) can only make a check fail or match an older secret
 *   that this node still accepts anyway; a previous secret is accepted only for a bounded grace
 *   time after a rotation, and no longer once the partner proved the current one.
 * - The dialer sends its proofs even when the acceptor's failed, so both ends learn of (and report)
 *   a mismatch; its proofs bind its own fresh nonce, so they give the acceptor nothing to reuse.
 * - At most MAX_PEER_SECRETS proofs per side: no unbounded work for an unauthenticated partner.
 *
 * Versions. The hello carries the range of peer protocol versions the dialer speaks (`minVersion`
 * to `version`; hellos before version 6 carry their one `version`); the acceptor picks the highest
 * version both speak and names it in its helloReply, or refuses the hello with a clear reason when
 * they have none in common. The dialer refuses a reply naming a version outside its own range. So
 * a node that speaks a range of versions links with an older or newer partner during an upgrade.
 *
 * Version 1 sent a single MAC and heartbeats without acknowledgements (protocol.ts); version 2 sent
 * the frames after the handshake unprotected. After this handshake, both ends derive session keys
 * from the secrets both proved (peer-keys.ts) and seal every frame (frame-seal.ts).
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { NodeName } from "./witness.js";

import { MAX_PEER_SECRETS, MIN_PEER_PROTOCOL_VERSION, PEER_PROTOCOL_VERSION } from "./protocol.js";
export { MAX_PEER_SECRETS, MIN_PEER_PROTOCOL_VERSION, PEER_PROTOCOL_VERSION };

export function newNonce(): string {
  return randomBytes(32).toString("hex");
}

export function peerMac(secret: Buffer, node: NodeName, dialerNonce: string, acceptorNonce: string): string {
  return createHmac("sha256", secret)
    .update(`hasan-peer-v2|${node}|${dialerNonce}|${acceptorNonce}`)
    .digest("hex");
}

export function macMatches(expected: string, received: string): boolean {
  const a = Buffer.from(expected, "hex");
  const b = Buffer.from(received, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The proofs `node` sends: one MAC per secret it accepts. */
export function peerProofs(
  secrets: readonly Buffer[],
  node: NodeName,
  dialerNonce: string,
  acceptorNonce: string,
): string[] {
  return secrets.slice(0, MAX_PEER_SECRETS).map((s) => peerMac(s, node, dialerNonce, acceptorNonce));
}

/**
 * Which of `mine` the partner (`from`) proved: the first of this node's secrets (current first)
 * that one of its proofs matches, or undefined when none does. Every pair is compared, so the time
 * taken does not tell which one matched.
 */
export function provenSecret(
  mine: readonly Buffer[],
  from: NodeName,
  dialerNonce: string,
  acceptorNonce: string,
  proofs: readonly string[],
): Buffer | undefined {
  let found: Buffer | undefined;
  for (const s of mine.slice(0, MAX_PEER_SECRETS)) {
    const want = peerMac(s, from, dialerNonce, acceptorNonce);
    let hit = false;
    for (const p of proofs.slice(0, MAX_PEER_SECRETS)) hit = macMatches(want, p) || hit;
    if (hit && !found) found = s;
  }
  return found;
}

/**
 * Every one of `mine` that the partner proved (all pairs compared, as in provenSecret): the
 * secrets both nodes hold, from which both derive the session keys (peer-keys.ts).
 */
export function commonSecrets(
  mine: readonly Buffer[],
  from: NodeName,
  dialerNonce: string,
  acceptorNonce: string,
  proofs: readonly string[],
): Buffer[] {
  const common: Buffer[] = [];
  for (const s of mine.slice(0, MAX_PEER_SECRETS)) {
    const want = peerMac(s, from, dialerNonce, acceptorNonce);
    let hit = false;
    for (const p of proofs.slice(0, MAX_PEER_SECRETS)) hit = macMatches(want, p) || hit;
    if (hit) common.push(s);
  }
  return common;
}

/** What kind of authentication failure: a secret mismatch, another protocol version, a wrong node. */
export type PeerAuthFailureKind = "secret" | "version" | "identity";

/** The versions of peer protocol a node speaks, both ends included. */
export interface VersionRange {
  min: number;
  max: number;
}

/** What this node speaks. */
export const OUR_VERSIONS: VersionRange = { min: MIN_PEER_PROTOCOL_VERSION, max: PEER_PROTOCOL_VERSION };

function numbers(r: VersionRange): string {
  return r.min === r.max ? `${r.max}` : `${r.min} to ${r.max}`;
}

/**
 * The highest version both `partner` and `ours` speak, or why there is none (the acceptor's
 * choice for the connection).
 */
export function chooseVersion(
  partner: VersionRange,
  ours: VersionRange = OUR_VERSIONS,
): { version: number } | { refusal: string } {
  const version = Math.min(partner.max, ours.max);
  if (partner.min <= partner.max && version >= Math.max(partner.min, ours.min)) return { version };
  const upgrade = partner.max < ours.min ? "upgrade both nodes" : "run one version on both nodes";
  const protocols = partner.min === partner.max ? "protocol" : "protocols";
  return {
    refusal: `partner speaks peer ${protocols} ${numbers(partner)}, this node ${numbers(ours)}: ${upgrade}`,
  };
}

/** Why the version the acceptor chose is refused (it is not one this node speaks), or undefined. */
export function chosenVersionRefusal(version: number, ours: VersionRange = OUR_VERSIONS): string | undefined {
  if (version >= ours.min && version <= ours.max) return undefined;
  return `partner chose peer protocol ${version}, this node speaks ${numbers(ours)}: run one version on both nodes`;
}

/** The reason given when the partner proved none of this node's secrets. */
export function secretMismatchText(accepted: number, source: string | undefined): string {
  const what = accepted === 1 ? "the peer secret" : `any of the ${accepted} peer secrets`;
  const from = source ? ` (${source})` : "";
  return (
    `peer failed authentication (wrong secret): the partner proved no knowledge of ${what} this node ` +
    `accepts${from}; the two nodes hold different peer secrets`
  );
}
