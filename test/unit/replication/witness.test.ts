import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  evaluateClaim,
  evaluateConfirm,
  parseWitnessSpec,
  type ClaimRequest,
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
  it("grants an empty witness to a consistent node", () => {
    assert.deepEqual(evaluateClaim(null, claim({}), 5), { holder: "a", generation: "g1", renewedAt: 5 });
    assert.equal(evaluateClaim(null, claim({ consistent: false }), 5), null);
  });

  it("grants the pair's record only at the pair's generation", () => {
    const pair = { holder: null, generation: "g0", renewedAt: 0 };
    assert.ok(evaluateClaim(pair, claim({}), 1));
    assert.equal(evaluateClaim(pair, claim({ current: "old" }), 1), null);
    assert.equal(evaluateClaim(pair, claim({ initialized: false }), 1), null);
  });

  it("never grants the partner's claim, and always re-grants one's own", () => {
    const heldByB = { holder: "b" as const, generation: "g7", renewedAt: 0 };
    assert.equal(evaluateClaim(heldByB, claim({ current: "g7" }), 1), null);
    assert.ok(evaluateClaim(heldByB, claim({ node: "b", current: "g7", next: "g7" }), 1));
  });

  it("confirms the pair only while the record names that generation", () => {
    assert.ok(evaluateConfirm({ holder: "a", generation: "g1", renewedAt: 0 }, "g1", 1));
    assert.equal(evaluateConfirm({ holder: "b", generation: "g2", renewedAt: 0 }, "g1", 1), null);
    const pair = { holder: null, generation: "g1", renewedAt: 1000 };
    assert.equal(evaluateConfirm(pair, "g1", 2000), "keep", "a fresh confirmation is not rewritten");
    assert.deepEqual(evaluateConfirm(pair, "g1", 120_000), {
      holder: null,
      generation: "g1",
      renewedAt: 120_000,
    });
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
    assert.deepEqual(recordFromLease(lease), { holder: null, generation: "g3", renewedAt: 1000 });
    assert.equal(recordFromLease({ spec: { holderIdentity: "someone-else" } }), null);
  });
});

describe("FileWitness", () => {
  it("lets exactly one of many racing claimants win, every round", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hasan-witness-"));
    try {
      for (let round = 0; round < 20; round++) {
        const path = join(dir, `w${round}`);
        const pair = new FileWitness(path);
        assert.ok(await pair.confirmPair("g0"));
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
