/**
 * The witness decides which node of a pair may go on alone when the partner is lost.
 *
 * It holds one small record: who holds it (`a`, `b`, or null while the pair confirms it
 * together), the generation of the data the holder (or the pair) had, and, for a pair record,
 * which nodes confirmed it. The rules, pure functions below, make it safe without timing
 * assumptions:
 * - A node may go on alone only if it is consistent and the record is already its own, or the
 *   pair's at exactly this node's current generation, confirmed by both nodes. A node that lost
 *   a race (or was isolated while the other wrote) no longer matches and can never claim it
 *   later without first receiving the data.
 * - A missing record grants nothing: it may have been deleted while one node wrote alone, and
 *   the other cannot know. It comes back in two ways only. The node that holds the witness (in
 *   memory) writes its own record again (`renewAlone`); or, while Working, both nodes confirm
 *   the pair at their common generation. On a missing record one confirmation makes a
 *   half-confirmed record, which grants nothing until the other node confirms too: a late
 *   confirmation from a node that was cut off (and fenced) cannot make its old generation
 *   claimable, because its partner, writing alone under a newer generation, never confirms it.
 * - A confirmation only succeeds while the record names that generation, so a late
 *   confirmation cannot undo the partner's claim.
 * - A brand-new pair has no record: its nodes serve once they have met (Working) and confirmed.
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
  /** for a pair record (holder null): the nodes that confirmed it; both, for a record that grants */
  confirmedBy: NodeName[];
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
  /** Records that `node` holds `generation` together with its partner (Working); false when the record moved on. */
  confirmPair(node: NodeName, generation: string): Promise<boolean>;
  /**
   * The holder serving alone keeps its record written (it comes back if someone deleted it);
   * "conflict" when the record says someone else may serve: the caller must stop serving.
   */
  renewAlone(node: NodeName, generation: string): Promise<"ok" | "conflict">;
  /** Gives up sole holding without a pair confirmation (e.g. on shutdown): nothing to do by design. */
  release(): Promise<void>;
  /** The current record, null when none exists. */
  holder(): Promise<WitnessRecord | null>;
}

const BOTH: NodeName[] = ["a", "b"];

/** A pair record that both nodes confirmed (the only kind a claim may take over). */
export function confirmedByBoth(r: WitnessRecord): boolean {
  return r.holder === null && BOTH.every((n) => r.confirmedBy.includes(n));
}

/** The record after a successful claim, or null when the claim must fail. */
export function evaluateClaim(
  record: WitnessRecord | null,
  claim: ClaimRequest,
  now: number,
): WitnessRecord | null {
  return claimRefusal(record, claim) === null
    ? { holder: claim.node, generation: claim.next, confirmedBy: [], renewedAt: now }
    : null;
}

/** Why a claim must fail (words for the node's status), or null when it may succeed. */
export function claimRefusal(record: WitnessRecord | null, claim: ClaimRequest): string | null {
  if (!claim.consistent) return "this copy is not consistent";
  if (record === null)
    return "the witness holds no record of this pair (new, or deleted): a node goes on alone only after both nodes have met and confirmed the pair, or while the holder keeps its record";
  if (!claim.initialized) return "this node has never been part of the pair";
  if (record.holder === claim.node) return null;
  if (record.holder !== null)
    return `node ${record.holder} holds the witness (generation ${record.generation})`;
  if (record.generation !== claim.current)
    return `the pair moved on to generation ${record.generation}; this node holds ${claim.current}`;
  if (!confirmedByBoth(record))
    return `the pair record at generation ${record.generation} is confirmed only by node ${record.confirmedBy.join(", ")}`;
  return null;
}

/** A pair confirmation younger than this is not rewritten (saves API writes every few seconds). */
export const CONFIRM_REFRESH_MS = 60_000;

/**
 * The record after `node`'s pair confirmation, "keep" when the record already says so
 * (recently), or null when it must fail.
 */
export function evaluateConfirm(
  record: WitnessRecord | null,
  node: NodeName,
  generation: string,
  now: number,
): WitnessRecord | "keep" | null {
  if (record === null) return { holder: null, generation, confirmedBy: [node], renewedAt: now };
  if (record.generation !== generation) return null;
  // The holder's data at this generation is now held by both (the resync from it finished).
  if (record.holder !== null) return { holder: null, generation, confirmedBy: [...BOTH], renewedAt: now };
  const by = BOTH.filter((n) => n === node || record.confirmedBy.includes(n));
  if (by.length === record.confirmedBy.length && now - record.renewedAt < CONFIRM_REFRESH_MS) return "keep";
  return { holder: null, generation, confirmedBy: by, renewedAt: now };
}

/**
 * The record after the lone holder renewed it, "keep" when it is its own and recent, or
 * "conflict" when it grants someone else (then the holder must stop serving).
 */
export function evaluateRenewAlone(
  record: WitnessRecord | null,
  node: NodeName,
  generation: string,
  now: number,
): WitnessRecord | "keep" | "conflict" {
  const own: WitnessRecord = { holder: node, generation, confirmedBy: [], renewedAt: now };
  if (record === null) return own;
  if (record.holder === node) {
    return record.generation === generation && now - record.renewedAt < CONFIRM_REFRESH_MS ? "keep" : own;
  }
  // A half-confirmed pair record grants nothing (a late confirmation from the fenced partner).
  if (record.holder === null && !confirmedByBoth(record)) return own;
  return "conflict";
}

/** A witness's compare-and-swap: decides from the record read, writes the decision unless null or "keep". */
export type CompareAndSwap = (
  next: (r: WitnessRecord | null) => WitnessRecord | "keep" | null,
) => Promise<boolean>;

/** `renewAlone` through a compare-and-swap (evaluateRenewAlone decides). */
export async function renewAloneBy(
  cas: CompareAndSwap,
  node: NodeName,
  generation: string,
): Promise<"ok" | "conflict"> {
  let conflict = false;
  await cas((r) => {
    const next = evaluateRenewAlone(r, node, generation, Date.now());
    conflict = next === "conflict";
    return next === "conflict" ? null : next;
  });
  return conflict ? "conflict" : "ok";
}

export class NoWitness implements Witness {
  readonly kind = "none" as const;
  async tryAcquire(): Promise<boolean> {
    return true;
  }
  async confirmPair(): Promise<boolean> {
    return true;
  }
  async renewAlone(): Promise<"ok"> {
    return "ok";
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
