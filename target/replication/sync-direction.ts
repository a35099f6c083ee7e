/**
 * Where the sync direction is decided: a pure function of both nodes' generation records,
 * evaluated identically on both nodes after the handshake.
 */
import type { GenerationRecord } from "../store/pair-generation.js";

export type NodeName = "a" | "b";

export type GenerationView = Pick<
  GenerationRecord,
  "current" | "bitmapUuid" | "history" | "consistent" | "syncSource" | "initialized"
>;

export type SyncDecision =
  /** Same data lineage: no direction needed beyond copying regions either bitmap marks (from `source`). */
  | { kind: "resync"; source: NodeName; full: boolean; reason: string }
  /** Both brand-new: `b` adopts `a`'s generation, nothing to copy. */
  | { kind: "adopt"; reason: string }
  | { kind: "split-brain"; reason: string };

const other = (n: NodeName): NodeName => (n === "a" ? "b" : "a");

/**
 * Which nodes have been linked with their partner since their process started. A node that kept running while its partner lost power still
 * holds every write the pair acknowledged (at least in its page cache); the partner holds only
 * what it had flushed.
 */
export interface KeptRunning {
  a: boolean;
  b: boolean;
}

/**
 * Decides the direction between node a's and node b's records. The union of both dirty
 * bitmaps is copied from the source unless `full` (then everything is).
 */
export function decideSync(a: GenerationView, b: GenerationView, kept?: KeptRunning): SyncDecision {
  if (!a.consistent && !b.consistent) {
    return { kind: "split-brain", reason: "neither node holds a consistent copy (both were resync targets)" };
  }
  for (const [target, t, s] of [
    ["a", a, b],
    ["b", b, a],
  ] as const) {
    if (t.consistent) continue;
    const source = other(target);
    const from = t.syncSource;
    if (from !== null && (s.current === from || s.bitmapUuid === from)) {
      return {
        kind: "resync",
        source,
        full: false,
        reason: `node ${target} resumes its interrupted resync from node ${source}`,
      };
    }
    if (from !== null && s.history.includes(from)) {
      return {
        kind: "resync",
        source,
        full: true,
        reason: `node ${target} was a resync target of an older generation of node ${source}`,
      };
    }
    return {
      kind: "split-brain",
      reason: `node ${target} is an incomplete resync target of data node ${source} does not hold`,
    };
  }
  if (!a.initialized && !b.initialized) return { kind: "adopt", reason: "both nodes are new" };
  if (!b.initialized) return { kind: "resync", source: "a", full: true, reason: "node b is new" };
  if (!a.initialized) return { kind: "resync", source: "b", full: true, reason: "node a is new" };
  if (a.current === b.current) {
    // Neither went on alone. If one node restarted (a crash or a power loss) while the other kept
    // running, only the one that kept running is sure to hold every acknowledged write: a flush
    // through it may already have made them durable there, and copying the other way would undo it.
    if (kept && kept.a !== kept.b) {
      const [source, target] = kept.a ? (["a", "b"] as const) : (["b", "a"] as const);
      return {
        kind: "resync",
        source,
        full: false,
        reason: `same generation; node ${source} kept running while node ${target} restarted`,
      };
    }
    return { kind: "resync", source: "a", full: false, reason: "same generation" };
  }
  if (a.bitmapUuid !== null && a.bitmapUuid === b.bitmapUuid) {
    return {
      kind: "split-brain",
      reason: `both nodes wrote independently since generation ${a.bitmapUuid}`,
    };
  }
  if (a.bitmapUuid === b.current) {
    return { kind: "resync", source: "a", full: false, reason: "node a wrote alone; node b is behind" };
  }
  if (b.bitmapUuid === a.current) {
    return { kind: "resync", source: "b", full: false, reason: "node b wrote alone; node a is behind" };
  }
  if (a.history.includes(b.current)) {
    return { kind: "resync", source: "a", full: true, reason: "node b holds an old generation of node a" };
  }
  if (b.history.includes(a.current)) {
    return { kind: "resync", source: "b", full: true, reason: "node a holds an old generation of node b" };
  }
  return { kind: "split-brain", reason: "the nodes hold unrelated data" };
}

/** Pushes a generation into a history list (newest first, bounded). */
export function pushHistory(history: readonly string[], id: string | null): string[] {
  if (id === null) return [...history];
  return [id, ...history.filter((h) => h !== id)].slice(0, 8);
}
