import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  IllegalTransitionError,
  INITIAL_RECORD,
  LEGAL_MOVES,
  modeOf,
  nextRecord,
  PairStateMachine,
  type PairStateRecord,
  type Situation,
} from "../../../target/replication/pair-state.js";
import type { PeerConnection } from "../../../target/replication/peer-connection.js";
import { createLogger } from "../../../target/log.js";

const conn = (name: string) => ({ name }) as unknown as PeerConnection;
const c1 = conn("c1");
const c2 = conn("c2");
const ALL = Object.keys(LEGAL_MOVES) as Situation[];

/** Walks a path of moves from the initial record, each with the change it needs. */
function walk(...steps: Array<[Situation, Parameters<typeof nextRecord>[3]?]>): PairStateRecord {
  let r = INITIAL_RECORD;
  for (const [to, change] of steps) r = nextRecord(r, to, `to ${to}`, change);
  return r;
}

const linked = (role: "none" | "source" | "target", sequencer: "a" | "b" = "a", c = c1) => ({
  link: { conn: c, sequencer, role },
});

describe("pair state: the table of legal moves", () => {
  it("names only known situations, and every live situation can shut down", () => {
    for (const [from, tos] of Object.entries(LEGAL_MOVES)) {
      for (const to of tos) assert.ok(ALL.includes(to), `${from} -> ${to}`);
      assert.ok(tos.includes("Closed"), `${from} can close`);
    }
    assert.deepEqual(LEGAL_MOVES.Closed, ["Closed"], "nothing leaves Closed");
  });

  it("refuses moves that would serve without the witness or without a consistent copy", () => {
    const refused: Array<[Situation, Situation, string]> = [
      ["Starting", "Alone", "serving alone needs the witness (Claiming first)"],
      ["Refused", "Alone", "a refused node must ask again"],
      ["Incomplete", "Claiming", "an incomplete copy never asks the witness"],
      ["SyncTarget", "Claiming", "a resync target that loses its source holds no consistent copy"],
      ["Alone", "Working", "a lone node re-pairs only through a handshake"],
      ["Working", "SyncSource", "the resync role is decided by a handshake"],
      ["Claiming", "Working", "a lost partner comes back only through a handshake"],
    ];
    for (const [from, to, why] of refused) {
      assert.ok(!LEGAL_MOVES[from].includes(to), why);
    }
  });

  it("nextRecord throws on an illegal move and on a broken invariant", () => {
    const alone = walk(["Claiming"], ["Alone"]);
    assert.throws(() => nextRecord(alone, "Working", "x", linked("none")), IllegalTransitionError);
    const hs = walk(["Handshaking", { conn: c1 }]);
    assert.throws(() => nextRecord(hs, "Working", "no link"), /needs a link/);
    assert.throws(() => nextRecord(hs, "Working", "x", linked("none", "a", c2)), /current connection/);
    assert.throws(() => nextRecord(hs, "SyncSource", "x", linked("none")), /role is none/);
    assert.throws(() => nextRecord(INITIAL_RECORD, "Handshaking", "x"), /needs a connection/);
    assert.throws(() => nextRecord(hs, "SplitBrain", "x"), /needs its reason/);
    assert.throws(
      () => nextRecord(walk(["Closed"]), "Handshaking", "x", { conn: c1 }),
      IllegalTransitionError,
    );
  });

  it("a full life: start, pair, lose the partner, serve alone, resync, pair again", () => {
    let r = walk(["Handshaking", { conn: c1 }]);
    assert.equal(r.nodeState, "Unknown", "a handshake keeps reporting the state it started from");
    r = nextRecord(r, "Working", "in sync", linked("none"));
    assert.equal(r.nodeState, "Working");
    assert.equal(modeOf(r, "a"), "sequencer");
    assert.equal(modeOf(r, "b"), "forwarder");
    r = nextRecord(r, "Claiming", "lost");
    assert.equal(r.link, null);
    assert.equal(r.conn, null);
    assert.equal(r.nodeState, "Failed");
    assert.equal(modeOf(r, "a"), "wait", "I/O waits while the witness is asked");
    r = nextRecord(r, "Alone", "won");
    assert.equal(modeOf(r, "a"), "alone");
    r = nextRecord(r, "Handshaking", "back", { conn: c2, wasAlone: true });
    assert.equal(modeOf(r, "a"), "alone", "a lone node keeps serving until the handshake decides");
    assert.equal(r.nodeState, "Failed");
    r = nextRecord(r, "SyncSource", "sending", linked("source", "a", c2));
    assert.equal(r.nodeState, "Synchronizing");
    assert.equal(r.wasAlone, false);
    r = nextRecord(r, "Working", "done", linked("none", "a", c2));
    assert.equal(r.nodeState, "Working");
    assert.equal(r.conn, c2);
  });

  it("modes: refusing situations never serve; split brain serves only when it held the witness", () => {
    for (const s of ["Refused", "Incomplete", "Closed"] as const) {
      const r: PairStateRecord = { ...INITIAL_RECORD, situation: s };
      assert.equal(modeOf(r, "a"), "refuse", s);
    }
    const sb = { reason: "both wrote", peerCurrent: "00000000000000ff", commonAncestor: true };
    const hs = walk(["Handshaking", { conn: c1, wasAlone: true }]);
    assert.equal(modeOf(nextRecord(hs, "SplitBrain", "x", { splitBrain: sb }), "a"), "refuse");
    const sba = nextRecord(hs, "SplitBrainAlone", "x", { splitBrain: sb });
    assert.equal(modeOf(sba, "a"), "alone");
    assert.equal(sba.nodeState, "SplitBrain");
    assert.equal(sba.conn, c1, "a split brain keeps the connection to relay the resolution");
  });
});

describe("pair state machine", () => {
  it("tells listeners of reported state changes, wakes waiters, and leaves the record alone on an illegal move", async () => {
    let alua = 0;
    const m = new PairStateMachine(createLogger("pair-state-test"), () => String(alua));
    const heard: string[] = [];
    m.onChange((s, p) => heard.push(`${p}->${s}`));
    const woke = m.nextChange(5000).then(() => "woken");
    m.transition("Claiming", "lost at start");
    assert.equal(await woke, "woken");
    m.transition("Claiming", "still asking");
    m.transition("Alone", "won");
    assert.deepEqual(
      heard,
      ["Unknown->Failed"],
      "a move within Failed is not a change of the reported state",
    );
    alua = 1;
    m.changed();
    assert.deepEqual(heard, ["Unknown->Failed", "Failed->Failed"], "an ALUA change is told too");
    assert.throws(() => m.transition("Working", "no"), IllegalTransitionError);
    assert.equal(m.situation, "Alone");
    assert.equal(m.record.message, "won");
  });
});
