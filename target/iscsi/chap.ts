/**
 * CHAP authentication (RFC 1994 as profiled by RFC 7143 §12.1.3), one-way and mutual.
 * Pure except for the random challenge source, which callers inject.
 */
import { createHash, timingSafeEqual } from "node:crypto";

/** CHAP_A values we implement, in the order we prefer them when an initiator offers several. */
export const CHAP_ALGORITHMS: Readonly<Record<number, { hash: string; length: number }>> = {
  5: { hash: "md5", length: 16 },
  6: { hash: "sha1", length: 20 },
  7: { hash: "sha256", length: 32 },
  8: { hash: "sha3-256", length: 32 },
};

export interface ChapCredentials {
  user: string;
  secret: string;
}

export interface ChapConfig {
  /** What the initiator must prove it knows. */
  initiator: ChapCredentials;
  /** What the target proves to initiators that ask for mutual CHAP; absent = mutual CHAP refused. */
  target?: ChapCredentials;
}

/**
 * Picks the first algorithm from the initiator's list that we implement (its list is in its
 * order of preference). Unknown numbers and junk entries are skipped.
 */
export function selectAlgorithm(offer: string): number | undefined {
  for (const item of offer.split(",")) {
    const n = /^[0-9]{1,5}$/.test(item) ? Number(item) : NaN;
    if (Number.isFinite(n) && CHAP_ALGORITHMS[n]) return n;
  }
  return undefined;
}

/** Decodes a CHAP binary value: 0x/0X hexadecimal or 0b/0B base64 (RFC 7143 §6.1). */
export function decodeBinary(v: string): Buffer | undefined {
  if (/^0[xX]([0-9a-fA-F]{2})+$/.test(v)) return Buffer.from(v.slice(2), "hex");
  if (/^0[xX][0-9a-fA-F]+$/.test(v)) return Buffer.from("0" + v.slice(2), "hex");
  if (/^0[bB][A-Za-z0-9+/]+={0,2}$/.test(v)) {
    const b = Buffer.from(v.slice(2), "base64");
    return b.length ? b : undefined;
  }
  return undefined;
}

export function encodeHex(b: Buffer): string {
  return "0x" + b.toString("hex");
}

/** The CHAP response: H(identifier || secret || challenge). */
export function chapDigest(algorithm: number, id: number, secret: string, challenge: Buffer): Buffer {
  const alg = CHAP_ALGORITHMS[algorithm];
  if (!alg) throw new Error(`unsupported CHAP algorithm ${algorithm}`);
  return createHash(alg.hash)
    .update(Buffer.from([id & 0xff]))
    .update(Buffer.from(secret, "utf8"))
    .update(challenge)
    .digest();
}

/** Constant-time comparison of two byte strings (length mismatch is not secret). */
export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export type ChapState =
  | { step: "await-algorithm" }
  | { step: "await-response"; algorithm: number; id: number; challenge: Buffer }
  | { step: "done" };

export interface ChapStepResult {
  state: ChapState;
  /** Keys to send in the Login Response. */
  response: [string, string][];
  /** Set when authentication failed; the login ends with status 0x0201. */
  failure?: string;
}

/**
 * Advances the CHAP exchange by one Login Request worth of keys (only CHAP_* keys matter).
 * `random(n)` supplies challenge and identifier bytes.
 */
export function chapStep(
  state: ChapState,
  keys: ReadonlyMap<string, string>,
  config: ChapConfig,
  random: (n: number) => Buffer,
): ChapStepResult {
  switch (state.step) {
    case "await-algorithm": {
      const offer = keys.get("CHAP_A");
      if (offer === undefined) return { state, response: [] };
      const algorithm = selectAlgorithm(offer);
      if (algorithm === undefined) {
        return {
          state,
          response: [["CHAP_A", "Reject"]],
          failure: `no supported CHAP algorithm in "${offer}"`,
        };
      }
      const length = CHAP_ALGORITHMS[algorithm]!.length;
      const id = random(1)[0]!;
      const challenge = random(length);
      return {
        state: { step: "await-response", algorithm, id, challenge },
        response: [
          ["CHAP_A", String(algorithm)],
          ["CHAP_I", String(id)],
          ["CHAP_C", encodeHex(challenge)],
        ],
      };
    }
    case "await-response": {
      const name = keys.get("CHAP_N");
      const resp = keys.get("CHAP_R");
      if (name === undefined || resp === undefined) {
        return { state, response: [], failure: "CHAP_N and CHAP_R expected" };
      }
      const got = decodeBinary(resp);
      if (!got) return { state, response: [], failure: "CHAP_R is not a hex or base64 value" };
      const want = chapDigest(state.algorithm, state.id, config.initiator.secret, state.challenge);
      const nameOk = sameBytes(Buffer.from(name, "utf8"), Buffer.from(config.initiator.user, "utf8"));
      const respOk = sameBytes(got, want);
      if (!nameOk || !respOk)
        return { state, response: [], failure: `CHAP authentication failed for user "${name}"` };

      // mutual CHAP: the initiator challenges us in the same PDU
      const mi = keys.get("CHAP_I");
      const mc = keys.get("CHAP_C");
      if (mi === undefined && mc === undefined) return { state: { step: "done" }, response: [] };
      if (mi === undefined || mc === undefined) {
        return { state, response: [], failure: "mutual CHAP needs both CHAP_I and CHAP_C" };
      }
      if (!config.target)
        return { state, response: [], failure: "initiator asked for mutual CHAP, none configured" };
      const id = /^[0-9]{1,3}$/.test(mi) ? Number(mi) : NaN;
      if (!(id >= 0 && id <= 255)) return { state, response: [], failure: `invalid CHAP_I "${mi}"` };
      const challenge = decodeBinary(mc);
      if (!challenge) return { state, response: [], failure: "CHAP_C is not a hex or base64 value" };
      // a reflected challenge would let the initiator make us answer our own question
      if (sameBytes(challenge, state.challenge)) {
        return { state, response: [], failure: "initiator reflected the target's CHAP challenge" };
      }
      if (challenge.length > 1024) return { state, response: [], failure: "CHAP_C too long" };
      const answer = chapDigest(state.algorithm, id, config.target.secret, challenge);
      return {
        state: { step: "done" },
        response: [
          ["CHAP_N", config.target.user],
          ["CHAP_R", encodeHex(answer)],
        ],
      };
    }
    case "done":
      return { state, response: [] };
  }
}
