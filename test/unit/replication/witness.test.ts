import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  claimRefusal,
  evaluateClaim,
  evaluateConfirm,
  evaluateRenewAlone,
  parseWitnessSpec,
  type ClaimRequest,
  type WitnessRecord,
} from "../../../target/replication/witness.js";
import { FileWitness } from "../../../target/replication/witness-file.js";
import { recordFromLease } from "../../../target/replication/witness-lease.js";

const claim = (p: Partial<ClaimRequest>): ClaimRequest => ({
  node: "a",
  current: "g0",
  next: "g1",
  consistent: true,
  initialized: true,
  ...p,
});

describe("witness rules", () => {
  const pair = (generation: string, confirmedBy: Array<"a" | "b"> = ["a", "b"], renewedAt = 0) => ({
    holder: null,
    generation,
    confirmedBy,
    renewedAt,
  });

  it("a missing record grants nothing: it may have been deleted while the partner wrote alone", () => {
    assert.equal(evaluateClaim(null, claim({}), 5), null);
    assert.match(claimRefusal(null, claim({}))!, /no record of this pair/);
    assert.equal(evaluateClaim(null, claim({ initialized: false }), 5), null, "not even to a brand-new node");
  });

  it("grants the pair's record only at the pair's generation, once both nodes confirmed it", () => {
    assert.deepEqual(evaluateClaim(pair("g0"), claim({}), 1), {
      holder: "a",
      generation: "g1",
      confirmedBy: [],
      renewedAt: 1,
    });
    assert.equal(evaluateClaim(pair("g0"), claim({ current: "old" }), 1), null);
    assert.equal(evaluateClaim(pair("g0"), claim({ initialized: false }), 1), null);
    assert.equal(evaluateClaim(pair("g0"), claim({ consistent: false }), 1), null);
    assert.equal(evaluateClaim(pair("g0", ["a"]), claim({}), 1), null, "confirmed by a alone");
    assert.equal(evaluateClaim(pair("g0", ["b"]), claim({ node: "b" }), 1), null, "confirmed by b alone");
  });

  it("never grants the partner's claim, and always re-grants one's own", () => {
    const heldByB = { holder: "b" as const, generation: "g7", confirmedBy: [], renewedAt: 0 };
    assert.equal(evaluateClaim(heldByB, claim({ current: "g7" }), 1), null);
    assert.match(claimRefusal(heldByB, claim({ current: "g7" }))!, /node b holds the witness/);
    assert.ok(evaluateClaim(heldByB, claim({ node: "b", current: "g7", next: "g7" }), 1));
  });

  it("a missing record comes back only when both nodes confirm the same generation", () => {
    const half = evaluateConfirm(null, "a", "g1", 10);
    assert.deepEqual(half, pair("g1", ["a"], 10));
    const full = evaluateConfirm(half as WitnessRecord, "b", "g1", 11);
    assert.deepEqual(full, pair("g1", ["a", "b"], 11));
    assert.equal(evaluateConfirm(half as WitnessRecord, "a", "g1", 12), "keep", "a repeats itself");
    assert.equal(evaluateConfirm(half as WitnessRecord, "b", "g2", 12), null, "another generation");
  });

  it("a late confirmation from a fenced node cannot make its old generation claimable", () => {
    // b was cut off at g0 while a went on alone at g1; then the record was deleted.
    const late = evaluateConfirm(null, "b", "g0", 20) as WitnessRecord;
    assert.equal(
      evaluateClaim(late, claim({ node: "b", current: "g0" }), 21),
      null,
      "half a pair grants nothing",
    );
    // a, still alone at g1, writes its own record back over the half-confirmed one.
    assert.deepEqual(evaluateRenewAlone(late, "a", "g1", 22), {
      holder: "a",
      generation: "g1",
      confirmedBy: [],
      renewedAt: 22,
    });
  });

  it("confirms the pair only while the record names that generation", () => {
    assert.deepEqual(
      evaluateConfirm({ holder: "a", generation: "g1", confirmedBy: [], renewedAt: 0 }, "b", "g1", 1),
      {
        holder: null,
        generation: "g1",
        confirmedBy: ["a", "b"],
        renewedAt: 1,
      },
    );
    assert.equal(
      evaluateConfirm({ holder: "b", generation: "g2", confirmedBy: [], renewedAt: 0 }, "a", "g1", 1),
      null,
    );
    assert.equal(
      evaluateConfirm(pair("g1", ["a", "b"], 1000), "a", "g1", 2000),
      "keep",
      "a fresh confirmation is not rewritten",
    );
    assert.deepEqual(
      evaluateConfirm(pair("g1", ["a", "b"], 1000), "b", "g1", 120_000),
      pair("g1", ["a", "b"], 120_000),
    );
  });

  it("the lone holder rewrites a deleted record, keeps its own, and stops on one that grants someone else", () => {
    assert.deepEqual(evaluateRenewAlone(null, "a", "g1", 5), {
      holder: "a",
      generation: "g1",
      confirmedBy: [],
      renewedAt: 5,
    });
    assert.equal(
      evaluateRenewAlone({ holder: "a", generation: "g1", confirmedBy: [], renewedAt: 5 }, "a", "g1", 6),
      "keep",
    );
    assert.equal(
      evaluateRenewAlone({ holder: "b", generation: "g2", confirmedBy: [], renewedAt: 5 }, "a", "g1", 6),
      "conflict",
    );
    assert.equal(evaluateRenewAlone(pair("g3"), "a", "g1", 6), "conflict");
  });

  it("parses witness specs", () => {
    assert.deepEqual(parseWitnessSpec("none"), { kind: "none" });
    assert.deepEqual(parseWitnessSpec("file:/x/y"), { kind: "file", path: "/x/y" });
    assert.deepEqual(parseWitnessSpec("lease:ns/pair-1"), { kind: "lease", namespace: "ns", name: "pair-1" });
    assert.throws(() => parseWitnessSpec("lease:NS"));
  });

  it("reads a record from a Lease", () => {
    const lease = {
      metadata: { annotations: { "hasan.dev/generation": "g3" } },
      spec: { holderIdentity: "pair", renewTime: new Date(1000) },
    };
    assert.deepEqual(recordFromLease(lease), {
      holder: null,
      generation: "g3",
      confirmedBy: ["a", "b"],
      renewedAt: 1000,
    });
    const half = { ...lease, spec: { ...lease.spec, holderIdentity: "pair:b" } };
    assert.deepEqual(recordFromLease(half)?.confirmedBy, ["b"]);
    assert.equal(recordFromLease({ spec: { holderIdentity: "someone-else" } }), null);
    assert.equal(
      recordFromLease({ metadata: {}, spec: {} }),
      null,
      "a Lease the operator made (or remade) holds no record",
    );
  });
});

describe("FileWitness", () => {
  it("lets exactly one of many racing claimants win, every round", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hasan-witness-"));
    try {
      for (let round = 0; round < 20; round++) {
        const path = join(dir, `w${round}`);
        const pair = new FileWitness(path);
        assert.ok(await pair.confirmPair("a", "g0"));
        assert.ok(await pair.confirmPair("b", "g0"));
        // Separate instances, as two processes would have.
        const racers = Array.from({ length: 8 }, (_, i) =>
          new FileWitness(path).tryAcquire(claim({ node: i % 2 ? "b" : "a", next: `n${i}` })),
        );
        const wins = (await Promise.all(racers)).filter(Boolean).length;
        const rec = await pair.holder();
        // Both "a" instances may win (same node re-grants itself); never both nodes.
        assert.ok(wins >= 1, "someone wins");
        assert.ok(rec && rec.holder !== null);
        const loser = rec.holder === "a" ? "b" : "a";
        assert.equal(await new FileWitness(path).tryAcquire(claim({ node: loser, current: "g0" })), false);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
