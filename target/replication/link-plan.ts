/**
 * The handshake's decision as a pure function: from both nodes' generation records, geometries
 * and dirty bitmaps to what this node persists (its new generation record and the bits it must
 * copy or receive), the link it forms (who sequences, its resync role), its next situation and
 * what it reports. The handshake (handshake.ts) exchanges the inputs, persists the result, and
 * only then lets I/O use the link. Both nodes compute the same decision from the same inputs.
 */
import { DirtyBitmap, regionCount } from "../store/dirty-bitmap.js";
import type { GenerationRecord } from "../store/pair-generation.js";
import { asResyncTarget, inSyncWith } from "./generation-transitions.js";
import type { Link, Situation, SplitBrainInfo } from "./pair-state.js";
import { decideSync, type GenerationView, type SyncDecision } from "./sync-direction.js";
import type { NodeName } from "./witness.js";

export interface HandshakeSide {
  generation: GenerationView;
  regionSize: number;
  sizeBytes: number;
  /** the dirty bitmap: regions this side holds that the other may lack */
  bits: Uint8Array;
}

export interface LinkPlanInput {
  node: NodeName;
  /** this node's full generation record */
  gen: GenerationRecord;
  mine: Omit<HandshakeSide, "generation">;
  theirs: HandshakeSide;
  /** this node held the witness and served alone until this handshake */
  wasAlone: boolean;
  /** Whether each side has been linked with the other since its process started (absent: neither). */
  keptRunning?: { mine: boolean; theirs: boolean };
}

export type LinkPlan =
  /** The partner cannot be paired with (different geometry): drop the connection. */
  | { kind: "refuse"; reason: string }
  | {
      kind: "split-brain";
      decision: SyncDecision;
      situation: Extract<Situation, "SplitBrain" | "SplitBrainAlone">;
      splitBrain: SplitBrainInfo;
      message: string;
    }
  | {
      kind: "link";
      decision: SyncDecision;
      situation: Extract<Situation, "Working" | "SyncSource" | "SyncTarget">;
      /** the record to persist before the link carries I/O */
      gen: GenerationRecord;
      /** regions to copy on this link (both bitmaps merged); made durable before the link carries I/O */
      bits: DirtyBitmap;
      sequencer: NodeName;
      role: Link["role"];
      message: string;
    };

export function viewOf(gen: GenerationRecord): GenerationView {
  return {
    current: gen.current,
    bitmapUuid: gen.bitmapUuid,
    history: gen.history,
    consistent: gen.consistent,
    syncSource: gen.syncSource,
    initialized: gen.initialized,
  };
}

/**
 * The sizes differ only when one node grew without the other (alone, or a growth cut short by a
 * lost link): the smaller node grows to the larger size before planning (handshake.ts), so this
 * node's side always has the larger size, and the smaller side's bitmap (sent before it grew)
 * covers only its old regions; the regions past them are clear on its side.
 */
export function planLink(input: LinkPlanInput): LinkPlan {
  const { node, mine, theirs } = input;
  if (theirs.regionSize !== mine.regionSize || theirs.sizeBytes > mine.sizeBytes) {
    return {
      kind: "refuse",
      reason: `partner uses ${theirs.sizeBytes}-byte LUN with ${theirs.regionSize}-byte regions, this node ${mine.sizeBytes} with ${mine.regionSize}`,
    };
  }
  const regions = regionCount(mine.sizeBytes, mine.regionSize);
  if (theirs.bits.length !== Math.ceil(regionCount(theirs.sizeBytes, theirs.regionSize) / 8))
    return { kind: "refuse", reason: "partner's bitmap has the wrong size" };
  if (mine.bits.length > Math.ceil(regions / 8))
    return { kind: "refuse", reason: "this node's bitmap has the wrong size" };

  const myView = viewOf(input.gen);
  const peer = theirs.generation;
  const [a, b] = node === "a" ? [myView, peer] : [peer, myView];
  const k = input.keptRunning;
  const kept = k && (node === "a" ? { a: k.mine, b: k.theirs } : { a: k.theirs, b: k.mine });
  const decision = decideSync(a, b, kept);

  if (decision.kind === "split-brain") {
    return {
      kind: "split-brain",
      decision,
      situation: input.wasAlone ? "SplitBrainAlone" : "SplitBrain",
      splitBrain: {
        reason: decision.reason,
        peerCurrent: peer.current,
        commonAncestor: a.bitmapUuid !== null && a.bitmapUuid === b.bitmapUuid,
      },
      message: `split brain: ${decision.reason}; resolve with POST /split-brain/resolve {"discard":"a"|"b"}${input.wasAlone ? "; still serving alone" : ""}`,
    };
  }

  let gen = input.gen;
  if (decision.kind === "adopt" && node === "b") gen = { ...gen, current: peer.current };
  if (!gen.initialized) gen = { ...gen, initialized: true };
  const source: NodeName = decision.kind === "adopt" ? "a" : decision.source;
  const bits = new DirtyBitmap(regions, mine.bits);
  bits.merge(theirs.bits);
  if (decision.kind === "resync" && decision.full) bits.setAll();

  const sameData = bits.isEmpty() && (decision.kind === "adopt" || gen.current === peer.current);
  if (sameData) {
    return {
      kind: "link",
      decision,
      situation: "Working",
      gen: inSyncWith(gen, decision.kind === "adopt" ? gen.current : peer.current),
      bits,
      sequencer: source,
      role: "none",
      message: `in sync with the partner; node ${source} sequences writes`,
    };
  }
  if (source === node) {
    return {
      kind: "link",
      decision,
      situation: "SyncSource",
      gen,
      bits,
      sequencer: node,
      role: "source",
      message: `sending ${bits.count()} regions to the partner (${decision.reason})`,
    };
  }
  // From now on this copy is a mix of old and new regions until the resync finishes.
  return {
    kind: "link",
    decision,
    situation: "SyncTarget",
    gen: asResyncTarget(gen, peer.current),
    bits,
    sequencer: source,
    role: "target",
    message: `receiving ${bits.count()} regions from the partner (${decision.reason})`,
  };
}
