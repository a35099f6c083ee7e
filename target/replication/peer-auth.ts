/**
 * Mutual authentication of the peer link: each side proves knowledge of the shared secret
 * with HMAC-SHA256 over both nonces and its own node name, so a reply cannot be reflected
 * back or replayed on another connection.
 *
 *   dialer (a) → hello {node:"a", nonce Na}
 *   acceptor (b) → helloReply {node:"b", nonce Nb, mac: HMAC(secret, "hasan-peer|b|Na|Nb")}
 *   dialer (a) → helloFinish {mac: HMAC(secret, "hasan-peer|a|Na|Nb")}
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export function newNonce(): string {
  return randomBytes(32).toString("hex");
}

export function peerMac(secret: Buffer, node: "a" | "b", dialerNonce: string, acceptorNonce: string): string {
  return createHmac("sha256", secret)
    .update(`hasan-peer|${node}|${dialerNonce}|${acceptorNonce}`)
    .digest("hex");
}

export function macMatches(expected: string, received: string): boolean {
  const a = Buffer.from(expected, "hex");
  const b = Buffer.from(received, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}
