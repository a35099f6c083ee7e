/**
 * Session keys of an authenticated peer link (peer protocol 3). Once the handshake proved that
 * both nodes hold a common peer secret (peer-auth.ts), each derives, for each direction, a traffic
 * secret bound to that secret and to both fresh nonces of this handshake:
 *
 *   ikm      = the peer secrets both nodes proved, in byte order, each as u32 length ‖ bytes
 *   salt     = dialer nonce ‖ acceptor nonce (32 bytes each)
 *   traffic  = HKDF-SHA256(ikm, salt, "hasan-peer-v3 frames a->b" or "... b->a", 32 bytes), and
 *              on a link whose records are authenticated only, with " authenticated" appended
 *   key(e)   = HKDF-SHA256(traffic, "", "hasan-peer-v3 record key e", 32 bytes), e = 0, 1, ...
 *
 * - Both ends compute the same ikm: each proves every secret it accepts and keeps the ones the
 *   partner proved, so both keep the intersection of their secrets, whatever their order (during a
 *   rotation each node may list the old and the new value in another order).
 * - Fresh nonces on both sides make every connection's keys new: nothing sealed on one connection
 *   opens on another, and a record counter never repeats under one key.
 * - The direction in the label makes a node's own records worthless when reflected back to it.
 * - The protection in the label makes a handshake altered to weaken the records fail: each end
 *   derives its keys from what it saw agreed, and the first record of a disagreeing pair fails.
 * - The record key changes every REKEY_BYTES (frame-seal.ts), far below AES-GCM's usage limits;
 *   the traffic secret is kept for that, the peer secret is not needed after the handshake.
 */
import { hkdfSync } from "node:crypto";
import type { LinkProtection } from "./protocol.js";
import type { NodeName } from "./witness.js";

export const KEY_BYTES = 32;
const LABEL = "hasan-peer-v3";

/** Traffic secrets of one end: what it seals with and what it opens with. */
export interface SessionKeys {
  send: Buffer;
  receive: Buffer;
}

function hkdf(ikm: Buffer, salt: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync("sha256", ikm, salt, info, KEY_BYTES));
}

/** The key material both ends agree on: every common secret, in byte order, length-prefixed. */
function keyMaterial(common: readonly Buffer[]): Buffer {
  if (common.length === 0) throw new Error("no common peer secret to derive session keys from");
  const parts: Buffer[] = [];
  for (const s of [...common].sort(Buffer.compare)) {
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(s.length, 0);
    parts.push(len, s);
  }
  return Buffer.concat(parts);
}

/** The traffic secret of records sent from `from` to the other node. */
export function trafficSecret(
  common: readonly Buffer[],
  from: NodeName,
  dialerNonce: string,
  acceptorNonce: string,
  protection: LinkProtection = "encrypted",
): Buffer {
  const to = from === "a" ? "b" : "a";
  const salt = Buffer.from(dialerNonce + acceptorNonce, "hex");
  const suffix = protection === "authenticated" ? " authenticated" : "";
  return hkdf(keyMaterial(common), salt, `${LABEL} frames ${from}->${to}${suffix}`);
}

/** Node `self`'s session keys after a handshake that proved `common` with these nonces. */
export function sessionKeys(
  common: readonly Buffer[],
  self: NodeName,
  dialerNonce: string,
  acceptorNonce: string,
  protection: LinkProtection = "encrypted",
): SessionKeys {
  const peer = self === "a" ? "b" : "a";
  return {
    send: trafficSecret(common, self, dialerNonce, acceptorNonce, protection),
    receive: trafficSecret(common, peer, dialerNonce, acceptorNonce, protection),
  };
}

/** The AES-256-GCM key of records in `epoch` of one direction. */
export function recordKey(traffic: Buffer, epoch: number): Buffer {
  return hkdf(traffic, Buffer.alloc(0), `${LABEL} record key ${epoch}`);
}
