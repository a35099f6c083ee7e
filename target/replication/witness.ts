/**
 * The witness decides which node of a pair may go on alone when the partner is lost.
 *
 * It holds one small record: who holds it (`a`, `b`, or null while the pair confirms it
 * together) and the generation of the data the holder (or the pair) had. The rules, pure
 * functions below, make it safe without timing assumptions:
 * - A node may go on alone only if it is consistent and the record is empty, already its own,
 *   or the pair's at exactly this node's current generation. A node that lost a race (or was
 *   isolated while the other wrote) no longer matches and can never claim it later without
 *   first receiving the data.
 * - While Working, both nodes periodically confirm the pair at their common generation; a
 *   confirmation only succeeds while the record still names that generation, so a late
 *   confirmation cannot undo the partner's claim.
 *
 * Implementations: `none` (always allows: demos only, split brain is possible), `file:PATH`
 * (compare-and-swap through exclusively created version files, for one machine) and
 * `lease:NAMESPACE/NAME` (a coordination.k8s.io/v1 Lease replaced with its resourceVersion).
 */
import type { Logger } from "../log.js";

export type NodeName = "a" | "b";

export interface WitnessRecord {
  holder: NodeName | null;
  generation: string;
  /** ms since the epoch of the last change or renewal */
  renewedAt: number;
}

export interface ClaimRequest {
  node: NodeName;
  /** this node's generation before the claim */
  current: string;
  /** the generation this node will write under once it holds the witness (a new one after a split from a pair) */
  next: string;
  consistent: boolean;
  initialized: boolean;
}

export interface Witness {
  readonly kind: "none" | "file" | "lease";
  /** Tries to become the sole holder; true when this node may serve alone. */
  tryAcquire(claim: ClaimRequest): Promise<boolean>;
  /** Records that both nodes hold `generation` (Working); false when the record moved on. */
  confirmPair(generation: string): Promise<boolean>;
  /** Gives up sole holding without a pair confirmation (e.g. on shutdown): nothing to do by design. */
  release(): Promise<void>;
  /** The current record, null when none was ever written. */
  holder(): Promise<WitnessRecord | null>;
}

/** The record after a successful claim, or null when the claim must fail. */
export function evaluateClaim(
  record: WitnessRecord | null,
  claim: ClaimRequest,
  now: number,
): WitnessRecord | null {
  if (!claim.consistent) return null;
  const granted: WitnessRecord = { holder: claim.node, generation: claim.next, renewedAt: now };
  if (record === null) return granted;
  if (!claim.initialized) return null;
  if (record.holder === claim.node) return granted;
  if (record.holder === null && record.generation === claim.current) return granted;
  return null;
}

/** A pair confirmation younger than this is not rewritten (saves API writes every few seconds). */
export const CONFIRM_REFRESH_MS = 60_000;

/**
 * The record after a successful pair confirmation, "keep" when the record already says so
 * (recently), or null when it must fail.
 */
export function evaluateConfirm(
  record: WitnessRecord | null,
  generation: string,
  now: number,
): WitnessRecord | "keep" | null {
  if (record !== null && record.generation !== generation) return null;
  if (record?.holder === null && now - record.renewedAt < CONFIRM_REFRESH_MS) return "keep";
  return { holder: null, generation, renewedAt: now };
}

export class NoWitness implements Witness {
  readonly kind = "none" as const;
  async tryAcquire(): Promise<boolean> {
    return true;
  }
  async confirmPair(): Promise<boolean> {
    return true;
  }
  async release(): Promise<void> {}
  async holder(): Promise<WitnessRecord | null> {
    return null;
  }
}

export type WitnessSpec =
  { kind: "none" } | { kind: "file"; path: string } | { kind: "lease"; namespace: string; name: string };

/** Parses `none`, `file:PATH` or `lease:NAMESPACE/NAME`. */
export function parseWitnessSpec(s: string): WitnessSpec {
  if (s === "none") return { kind: "none" };
  if (s.startsWith("file:") && s.length > 5) return { kind: "file", path: s.slice(5) };
  const m = /^lease:([a-z0-9-]+)\/([a-z0-9.-]+)$/.exec(s);
  if (m) return { kind: "lease", namespace: m[1]!, name: m[2]! };
  throw new Error(`invalid witness "${s}": use none, file:PATH or lease:NAMESPACE/NAME`);
}

export async function createWitness(spec: WitnessSpec, logger: Logger): Promise<Witness> {
  switch (spec.kind) {
    case "none":
      logger.warn(
        "witness none: a node that loses its partner always goes on alone; split brain is possible",
      );
      return new NoWitness();
    case "file": {
      const { FileWitness } = await import("./witness-file.js");
      return new FileWitness(spec.path);
    }
    case "lease": {
      const { LeaseWitness } = await import("./witness-lease.js");
      return LeaseWitness.create(spec.namespace, spec.name, logger);
    }
  }
}
