import { test } from "node:test";
import assert from "node:assert/strict";
import { CmdWindow, snDiff } from "../../../target/iscsi/session.js";
import {
  parseKeyValues,
  splitText,
  TextAccumulator,
  TextParseError,
  encodeKeyValues,
} from "../../../target/iscsi/text-keys.js";

test("CmdSN window: in order, ahead, duplicates, outside, wrap-around", () => {
  const w = new CmdWindow(0xfffffffe, 4);
  assert.equal(w.maxCmdSN, 1);
  assert.equal(w.admit(0xfffffffe, false), "accept");
  assert.equal(w.admit(0, false), "accept", "ahead of ExpCmdSN inside the window");
  assert.equal(w.admit(0, false), "drop", "duplicate");
  assert.equal(w.expCmdSN, 0xffffffff);
  assert.equal(w.admit(0xffffffff, false), "accept");
  assert.equal(w.expCmdSN, 1, "gap filled: ExpCmdSN skips what arrived ahead");
  assert.equal(w.admit(2, false), "drop", "beyond MaxCmdSN");
  assert.equal(w.admit(0xfffffffd, false), "drop", "below ExpCmdSN");
  assert.equal(w.admit(12345, true), "accept", "immediate commands take no slot");
  w.release(0xfffffffe);
  assert.equal(w.maxCmdSN, 2);
  assert.equal(w.admit(1, false), "accept");
  assert.equal(snDiff(0, 0xffffffff), 1);
});

test("key=value text: parsing, duplicates, junk, limits, continuation", () => {
  assert.deepEqual(parseKeyValues(Buffer.from("A=1\0B=x=y\0\0C=\0")), [
    ["A", "1"],
    ["B", "x=y"],
    ["C", ""],
  ]);
  assert.deepEqual(parseKeyValues(Buffer.from("A=1")), [["A", "1"]], "missing final NUL tolerated");
  for (const bad of ["=1\0", "noequals\0", "A=1\0A=2\0", "bad key=1\0", `${"K".repeat(64)}=1\0`]) {
    assert.throws(() => parseKeyValues(Buffer.from(bad)), TextParseError, bad);
  }
  const acc = new TextAccumulator();
  assert.equal(acc.add(Buffer.from("A=1\0B="), true), undefined);
  assert.deepEqual(parseKeyValues(acc.add(Buffer.from("2\0"), false)!), [
    ["A", "1"],
    ["B", "2"],
  ]);
  assert.throws(() => {
    for (let i = 0; i < 100; i++) acc.add(Buffer.alloc(1024, 0x41), true);
  }, TextParseError);
  const text = encodeKeyValues([["K", "v".repeat(1000)]]);
  const parts = splitText(text, 512);
  assert.deepEqual(
    parts.map((p) => p.length),
    [512, 491],
  );
  assert.deepEqual(Buffer.concat(parts), text);
});

test("CmdSN window: commands ahead of a gap that finish open no slot until the gap is filled, so the look-ahead set stays within the window", () => {
  const w = new CmdWindow(10, 4); // slots 10..13
  // CmdSN 10 never comes; 11..13 arrive ahead of it and finish
  for (const sn of [11, 12, 13]) assert.equal(w.admit(sn, false), "accept");
  for (const sn of [11, 12, 13]) w.release(sn);
  assert.equal(w.maxCmdSN, 13, "finishing ahead of the gap does not move MaxCmdSN");
  assert.equal(w.admit(14, false), "drop", "beyond MaxCmdSN");
  assert.equal(w.aheadCount, 3, "never more ahead than the window holds");
  // an initiator that keeps sending ahead of the gap gets nowhere
  for (let sn = 14; sn < 1000; sn++) assert.equal(w.admit(sn, false), "drop");
  assert.ok(w.aheadCount <= w.size);
  // the gap fills: ExpCmdSN passes everything that arrived, and 10 holds the only slot in use
  assert.equal(w.admit(10, false), "accept");
  assert.equal(w.expCmdSN, 14);
  assert.equal(w.maxCmdSN, 16, "three slots open again at once");
  w.release(10);
  assert.equal(w.maxCmdSN, 17);
  assert.equal(w.aheadCount, 0);
});

test("CmdSN window: an immediate SCSI command holds a slot and holds back MaxCmdSN; with every slot in use the next one is refused", () => {
  const w = new CmdWindow(1, 4);
  assert.equal(w.admitImmediate(), true);
  assert.equal(w.admit(1, false), "accept");
  w.release(1);
  assert.equal(w.maxCmdSN, 4, "the slot the immediate command holds is not handed out again");
  assert.equal(w.admitImmediate(), true);
  assert.equal(w.admitImmediate(), true);
  assert.equal(w.admitImmediate(), true);
  assert.equal(w.inUse, 4);
  assert.equal(w.admitImmediate(), false, "all four slots in use: TASK SET FULL");
  for (let i = 0; i < 4; i++) w.releaseImmediate();
  assert.equal(w.inUse, 0);
  assert.equal(w.maxCmdSN, 5, "once the immediate commands are done the window is whole again");
  assert.equal(w.admit(12345, true), "accept", "NOP-Out, Text, Logout and TMF marked immediate need no slot");
  assert.equal(w.inUse, 0);
});
