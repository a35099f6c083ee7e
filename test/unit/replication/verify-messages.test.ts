import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import {
  encodeFrame,
  FrameDecoder,
  PEER_PROTOCOL_VERSION,
  ProtocolError,
  RECEIVERS,
} from "../../../target/replication/protocol.js";
import type { VerifyRecord } from "../../../target/replication/verify-record.js";

const record: VerifyRecord = {
  version: 1,
  runId: "0123456789abcdef",
  state: "running",
  source: "a",
  rateBytesPerSecond: 1024,
  startedAt: "2026-12-06T10:00:00.000Z",
  endedAt: null,
  nextOffset: 262144,
  bytesChecked: 262144,
  regionsMismatched: 1,
  regionsRepaired: 0,
  mismatchedRegions: [0],
  message: "comparing",
};

describe("peer messages of online verify (protocol 5)", () => {
  it("verifyHash, verifyRecord, verifyRepair and forwardVerify round-trip; only the follower hashes", () => {
    assert.ok(PEER_PROTOCOL_VERSION >= 5, "the verify messages came with peer protocol 5");
    const d = new FrameDecoder();
    const region = Buffer.alloc(4096, 7);
    const got = d.push(
      Buffer.concat([
        ...encodeFrame("verifyHash", 1, { offset: 0, length: 262144 }),
        ...encodeFrame("verifyRecord", 0, record),
        ...encodeFrame("verifyRepair", 2, { offset: 262144 }, region),
        ...encodeFrame("forwardVerify", 3, { source: "b", rateBytesPerSecond: 1 }),
      ]),
    );
    assert.deepEqual(
      got.map((m) => [m.type, m.body]),
      [
        ["verifyHash", { offset: 0, length: 262144 }],
        ["verifyRecord", record],
        ["verifyRepair", { offset: 262144 }],
        ["forwardVerify", { source: "b", rateBytesPerSecond: 1 }],
      ],
    );
    assert.ok(got[2]!.data.equals(region));
    assert.deepEqual(
      [RECEIVERS.verifyHash, RECEIVERS.verifyRecord, RECEIVERS.verifyRepair, RECEIVERS.forwardVerify],
      ["follower", "follower", "follower", "sequencer"],
    );
  });

  it("malformed verify messages are refused at the boundary", () => {
    const bad = [
      () => encodeFrame("verifyHash", 1, { offset: 0, length: 0 }),
      () => encodeFrame("forwardVerify", 1, { source: "c" as "a", rateBytesPerSecond: 1 }),
      () => encodeFrame("verifyRecord", 0, { ...record, runId: "xyz" }),
      () => encodeFrame("verifyHash", 1, { offset: 0, length: 1 }, Buffer.alloc(1)),
    ];
    for (const frame of bad) {
      let parts: Buffer[];
      try {
        parts = frame();
      } catch (e) {
        assert.ok(e instanceof ProtocolError);
        continue;
      }
      assert.throws(() => new FrameDecoder().push(Buffer.concat(parts)), ProtocolError);
    }
  });
});
