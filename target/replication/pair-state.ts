/**
 * The one place where a pair node's state changes. The node is always in one situation; every
 * change goes through `transition()`, which checks the move against the table of legal moves
 * (like DRBD's state-change validation) and the situation's invariants (a linked situation has a
 * link, a handshake has a connection), then tells listeners. What the node reports (`NodeState`)
 * and how it serves I/O (`Mode`) are functions of the situation alone.
 *
 * Situations
 * - Starting: just started; looking for the partner (I/O waits).
 * - Handshaking: a connection to the partner is authenticated; generations and bitmaps are being
 *   exchanged (I/O waits, or goes on alone when the node held the witness before).
 * - Working: linked and in sync.
 * - SyncSource / SyncTarget: linked; sending / receiving the regions the other lacks.
 * - Claiming: the partner is lost; asking the witness (I/O waits).
 * - Alone: the witness is held; serving alone, recording changed regions.
 * - Refused: the partner is lost and the witness refused (or was unreachable): not serving.
 * - Incomplete: this copy is an unfinished resync target and the partner is lost: not serving.
 * - SplitBrain / SplitBrainAlone: both sides wrote independently; nothing is copied until the
 *   user resolves it; SplitBrainAlone still serves because it held the witness.
 * - Closed: shut down.
 */
import type { NodeState } from "../agent/status-schema.js";
import type { Logger } from "../log.js";
import type { PeerConnection } from "./peer-connection.js";
import type { NodeName } from "./witness.js";

export type Situation =
  | "Starting"
  | "Handshaking"
  | "Working"
  | "SyncSource"
  | "SyncTarget"
  | "Claiming"
  | "Alone"
  | "Refused"
  | "Incomplete"
  | "SplitBrain"
  | "SplitBrainAlone"
  | "Closed";

/** How I/O is served: through the sequencer's order, alone, not yet decided, or not at all. */
export type Mode = "sequencer" | "forwarder" | "alone" | "wait" | "refuse";

export interface Link {
  conn: PeerConnection;
  sequencer: NodeName;
  /** this node's part in the resync of this link */
  role: "source" | "target" | "none";
}

export interface SplitBrainInfo {
  reason: string;
  peerCurrent: string;
  commonAncestor: boolean;
}

export interface PairStateRecord {
  readonly situation: Situation;
  /** why, in words a person can act on */
  readonly message: string;
  /** the partner connection (handshake, linked situations, split brain while connected) */
  readonly conn: PeerConnection | null;
  /** the established link (Working, SyncSource, SyncTarget) */
  readonly link: Link | null;
  readonly splitBrain: SplitBrainInfo | null;
  /** Handshaking only: the node held the witness and served alone until the handshake decides */
  readonly wasAlone: boolean;
  /** what the node reported before (a handshake keeps reporting the state it started from) */
  readonly nodeState: NodeState;
}

/** Every legal move. A move to the same situation (a new message, a replaced connection) is checked too. */
export const LEGAL_MOVES: Readonly<Record<Situation, readonly Situation[]>> = {
  Starting: ["Starting", "Handshaking", "Claiming", "Incomplete", "Closed"],
  Handshaking: [
    "Handshaking",
    "Working",
    "SyncSource",
    "SyncTarget",
    "SplitBrain",
    "SplitBrainAlone",
    "Claiming",
    "Alone",
    "Incomplete",
    "Closed",
  ],
  Working: ["Working", "Handshaking", "Claiming", "Closed"],
  SyncSource: ["SyncSource", "Working", "Handshaking", "Claiming", "Closed"],
  SyncTarget: ["SyncTarget", "Working", "Handshaking", "Incomplete", "Closed"],
  Claiming: ["Claiming", "Alone", "Refused", "Incomplete", "Handshaking", "Closed"],
  Alone: ["Alone", "Handshaking", "Refused", "Closed"],
  Refused: ["Refused", "Claiming", "Handshaking", "Closed"],
  Incomplete: ["Incomplete", "Handshaking", "Closed"],
  SplitBrain: ["SplitBrain", "Handshaking", "Claiming", "Incomplete", "Closed"],
  SplitBrainAlone: ["SplitBrainAlone", "SplitBrain", "Handshaking", "Incomplete", "Closed"],
  Closed: ["Closed"],
};

/** The state each situation reports; null: keeps reporting the previous one. */
const REPORTED: Readonly<Record<Situation, NodeState | null>> = {
  Starting: "Unknown",
  Handshaking: null,
  Working: "Working",
  SyncSource: "Synchronizing",
  SyncTarget: "Pending",
  Claiming: "Failed",
  Alone: "Failed",
  Refused: "Failed",
  Incomplete: "Pending",
  SplitBrain: "SplitBrain",
  SplitBrainAlone: "SplitBrain",
  Closed: null,
};

const LINKED: ReadonlySet<Situation> = new Set(["Working", "SyncSource", "SyncTarget"]);

export function isLinked(s: Situation): boolean {
  return LINKED.has(s);
}

/** How a node in `r` serves I/O (before fencing, which pair-node applies on top). */
export function modeOf(r: PairStateRecord, node: NodeName): Mode {
  switch (r.situation) {
    case "Working":
    case "SyncSource":
    case "SyncTarget":
      return r.link!.sequencer === node ? "sequencer" : "forwarder";
    case "Alone":
    case "SplitBrainAlone":
      return "alone";
    case "Handshaking":
      return r.wasAlone ? "alone" : "wait";
    case "Starting":
    case "Claiming":
      return "wait";
    default:
      return "refuse";
  }
}

export class IllegalTransitionError extends Error {
  constructor(from: Situation, to: Situation, why: string) {
    super(`illegal pair state change ${from} -> ${to}: ${why}`);
    this.name = "IllegalTransitionError";
  }
}

export interface TransitionChange {
  conn?: PeerConnection | null;
  link?: Link | null;
  splitBrain?: SplitBrainInfo | null;
  wasAlone?: boolean;
}

/** Checks a move and its result; returns the new record or throws IllegalTransitionError. */
export function nextRecord(
  from: PairStateRecord,
  to: Situation,
  message: string,
  change: TransitionChange = {},
): PairStateRecord {
  if (!LEGAL_MOVES[from.situation].includes(to)) {
    throw new IllegalTransitionError(from.situation, to, "not in the table of legal moves");
  }
  const linked = LINKED.has(to);
  const link = linked ? (change.link ?? (LINKED.has(from.situation) ? from.link : null)) : null;
  const keepsConn = linked || to === "Handshaking" || to === "SplitBrain" || to === "SplitBrainAlone";
  const conn = keepsConn ? (change.conn !== undefined ? change.conn : from.conn) : null;
  const next: PairStateRecord = {
    situation: to,
    message,
    conn,
    link,
    splitBrain:
      to === "SplitBrain" || to === "SplitBrainAlone" ? (change.splitBrain ?? from.splitBrain) : null,
    wasAlone: to === "Handshaking" ? (change.wasAlone ?? from.wasAlone) : false,
    nodeState: REPORTED[to] ?? from.nodeState,
  };
  if (linked && !next.link)
    throw new IllegalTransitionError(from.situation, to, "a linked state needs a link");
  if (linked && next.link!.conn !== next.conn)
    throw new IllegalTransitionError(from.situation, to, "the link must use the current connection");
  if (to === "Handshaking" && !next.conn)
    throw new IllegalTransitionError(from.situation, to, "a handshake needs a connection");
  if ((to === "SplitBrain" || to === "SplitBrainAlone") && !next.splitBrain)
    throw new IllegalTransitionError(from.situation, to, "split brain needs its reason");
  const roles: Partial<Record<Situation, Link["role"]>> = {
    Working: "none",
    SyncSource: "source",
    SyncTarget: "target",
  };
  if (linked && next.link!.role !== roles[to])
    throw new IllegalTransitionError(from.situation, to, `the link's role is ${next.link!.role}`);
  return next;
}

export const INITIAL_RECORD: PairStateRecord = {
  situation: "Starting",
  message: "starting; looking for the partner",
  conn: null,
  link: null,
  splitBrain: null,
  wasAlone: false,
  nodeState: "Unknown",
};

export type StateListener = (state: NodeState, previous: NodeState, message: string) => void;

/**
 * Holds the record, applies transitions, and wakes what waits for a decision. Listeners hear of
 * every change of the reported state, and of changes of the ALUA access states (`aluaKey`).
 */
export class PairStateMachine {
  private rec: PairStateRecord = INITIAL_RECORD;
  private readonly listeners: StateListener[] = [];
  private waiters: Array<() => void> = [];
  private lastAlua = "";

  constructor(
    private readonly log: Logger,
    /** a key of the ALUA access states as they are now (listeners are told when it changes) */
    private readonly aluaKey: () => string,
  ) {}

  get record(): PairStateRecord {
    return this.rec;
  }

  get situation(): Situation {
    return this.rec.situation;
  }

  transition(to: Situation, message: string, change: TransitionChange = {}): void {
    const from = this.rec;
    let next: PairStateRecord;
    try {
      next = nextRecord(from, to, message, change);
    } catch (e) {
      this.log.error(
        { from: from.situation, to, reason: message, err: (e as Error).message },
        "refused state change",
      );
      throw e;
    }
    this.rec = next;
    if (from.situation !== to) {
      this.log.info(
        { from: from.situation, to, state: next.nodeState, reason: message },
        `pair node ${from.situation} -> ${to}`,
      );
    }
    if (from.nodeState !== next.nodeState) this.tell(from.nodeState);
    this.changed();
  }

  /** Something that decides the mode changed outside the record (fencing): wake waiters, tell listeners of ALUA moves. */
  changed(): void {
    if (this.aluaKey() !== this.lastAlua) this.tell(this.rec.nodeState);
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
  }

  private tell(previous: NodeState): void {
    this.lastAlua = this.aluaKey();
    for (const fn of this.listeners) {
      try {
        fn(this.rec.nodeState, previous, this.rec.message);
      } catch (e) {
        this.log.error({ err: (e as Error).message }, "state change listener failed");
      }
    }
  }

  /** Resolves at the next change, or after timeoutMs. */
  nextChange(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  onChange(fn: StateListener): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }
}
