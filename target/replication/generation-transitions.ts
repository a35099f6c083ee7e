/**
 * How a node's generation record changes at each step of the pair's life (pure functions;
 * the pair node persists the result before acting on it).
 */
import type { GenerationRecord } from "../store/pair-generation.js";
import { pushHistory } from "./sync-direction.js";

/**
 * Going on alone with the witness. A node that was in sync with its partner (no bitmap
 * generation) starts a new generation `next`, remembering the old one as the point its
 * bitmap counts from; a node already ahead keeps its generation.
 */
export function goingAlone(gen: GenerationRecord, next: string): GenerationRecord {
  const rotate = gen.bitmapUuid === null;
  return {
    ...gen,
    current: rotate ? next : gen.current,
    bitmapUuid: rotate ? gen.current : gen.bitmapUuid,
    history: rotate ? pushHistory(gen.history, gen.current) : gen.history,
    initialized: true,
  };
}

/** The generation a claim for going alone must announce to the witness. */
export function wantsNewGeneration(gen: GenerationRecord): boolean {
  return gen.bitmapUuid === null;
}

/** Becoming a resync target of `sourceCurrent`: inconsistent until the resync finishes. */
export function asResyncTarget(gen: GenerationRecord, sourceCurrent: string): GenerationRecord {
  return { ...gen, consistent: false, syncSource: sourceCurrent, initialized: true };
}

/** A finished resync on the target: it now holds the source's generation. */
export function afterResyncAsTarget(gen: GenerationRecord, sourceCurrent: string): GenerationRecord {
  return {
    ...gen,
    current: sourceCurrent,
    bitmapUuid: null,
    history: pushHistory(
      pushHistory(gen.history, gen.bitmapUuid),
      gen.current === sourceCurrent ? null : gen.current,
    ),
    consistent: true,
    syncSource: null,
    initialized: true,
  };
}

/** A finished resync on the source: the partner holds everything again. */
export function afterResyncAsSource(gen: GenerationRecord): GenerationRecord {
  return { ...gen, bitmapUuid: null, history: pushHistory(gen.history, gen.bitmapUuid) };
}

/** Both nodes in sync after the handshake (the same generation, or `b` adopting `a`'s). */
export function inSyncWith(gen: GenerationRecord, current: string): GenerationRecord {
  return { ...gen, current, initialized: true };
}
