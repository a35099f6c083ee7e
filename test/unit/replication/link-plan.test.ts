import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { planLink, viewOf, type LinkPlan } from "../../../target/replication/link-plan.js";
import type { GenerationRecord } from "../../../target/store/pair-generation.js";

const REGION = 64 * 1024;
const SIZE = 16 * REGION; // 16 regions: 2 bitmap bytes
const G = (n: number) => n.toString(16).padStart(16, "0");

const gen = (p: Partial<GenerationRecord> = {}): GenerationRecord => ({
  version: 1,
  current: G(1),
  bitmapUuid: null,
  history: [],
  consistent: true,
  syncSource: null,
  initialized: true,
  regionSize: REGION,
  sizeBytes: SIZE,
  ...p,
});

const bits = (...regions: number[]) => {
  const b = new Uint8Array(2);
  for (const r of regions) b[r >> 3]! |= 1 << (r & 7);
  return b;
};

/** Both nodes' plans, each computed from its own side. */
function plans(
  a: GenerationRecord,
  b: GenerationRecord,
  aBits = bits(),
  bBits = bits(),
  kept?: { a: boolean; b: boolean },
): { a: LinkPlan; b: LinkPlan } {
  const side = (g: GenerationRecord, bs: Uint8Array) => ({
    generation: viewOf(g),
    regionSize: REGION,
    sizeBytes: SIZE,
    bits: bs,
  });
  return {
    a: planLink({
      node: "a",
      gen: a,
      mine: { regionSize: REGION, sizeBytes: SIZE, bits: aBits },
      theirs: side(b, bBits),
      wasAlone: false,
      ...(kept ? { keptRunning: { mine: kept.a, theirs: kept.b } } : {}),
    }),
    b: planLink({
      node: "b",
      gen: b,
      mine: { regionSize: REGION, sizeBytes: SIZE, bits: bBits },
      theirs: side(a, aBits),
      wasAlone: false,
      ...(kept ? { keptRunning: { mine: kept.b, theirs: kept.a } } : {}),
    }),
  };
}

function linkOf(p: LinkPlan) {
  assert.equal(p.kind, "link", JSON.stringify(p));
  if (p.kind !== "link") throw new Error("unreachable");
  return p;
}

describe("link plan", () => {
  it("two new nodes: b adopts a's generation, nothing is copied, a sequences", () => {
    const p = plans(gen({ current: G(1), initialized: false }), gen({ current: G(2), initialized: false }));
    const [a, b] = [linkOf(p.a), linkOf(p.b)];
    assert.equal(a.situation, "Working");
    assert.equal(b.situation, "Working");
    assert.equal(b.gen.current, G(1));
    assert.ok(a.gen.initialized && b.gen.initialized);
    assert.deepEqual([a.sequencer, b.sequencer], ["a", "a"]);
  });

  it("same generation, clean bitmaps: Working with nothing to copy", () => {
    const p = plans(gen(), gen());
    assert.equal(linkOf(p.a).situation, "Working");
    assert.equal(linkOf(p.b).bits.count(), 0);
  });

  it("same generation with bits set on either side (writes in flight at a crash): a sends the union to b", () => {
    const p = plans(gen(), gen(), bits(1), bits(9));
    const [a, b] = [linkOf(p.a), linkOf(p.b)];
    assert.deepEqual(
      [a.situation, a.role, b.situation, b.role],
      ["SyncSource", "source", "SyncTarget", "target"],
    );
    assert.deepEqual([...a.bits.iterate()], [1, 9]);
    assert.deepEqual([...b.bits.iterate()], [1, 9]);
    assert.equal(b.gen.consistent, false, "the target's copy is inconsistent until the resync ends");
    assert.equal(b.gen.syncSource, G(1));
  });

  it("same generation after a lost power and came back while b kept running: b sends the union to a", () => {
    // a, the sequencer, marked region 1 before its writes left; b holds them (its page cache), a
    // only what it had flushed: copying a's region to b would undo a flush made through b.
    const p = plans(gen(), gen(), bits(1), bits(), { a: false, b: true });
    const [a, b] = [linkOf(p.a), linkOf(p.b)];
    assert.deepEqual(
      [b.situation, b.role, a.situation, a.role],
      ["SyncSource", "source", "SyncTarget", "target"],
    );
    assert.deepEqual([a.sequencer, b.sequencer], ["b", "b"]);
    assert.deepEqual([...a.bits.iterate()], [1]);
    assert.equal(a.gen.consistent, false);
    assert.match(b.decision.reason, /node b kept running while node a restarted/);
  });

  it("same generation, both kept running (the link broke) or both restarted: a sends the union", () => {
    for (const kept of [
      { a: true, b: true },
      { a: false, b: false },
    ]) {
      const p = plans(gen(), gen(), bits(), bits(2), kept);
      assert.deepEqual([linkOf(p.a).role, linkOf(p.b).role], ["source", "target"], JSON.stringify(kept));
    }
  });

  it("b wrote alone while a was away: b sequences and sends what its bitmap recorded", () => {
    const aGen = gen({ current: G(1) });
    const bGen = gen({ current: G(2), bitmapUuid: G(1), history: [G(1)] });
    const p = plans(aGen, bGen, bits(), bits(3, 4));
    const [a, b] = [linkOf(p.a), linkOf(p.b)];
    assert.deepEqual([b.situation, a.situation], ["SyncSource", "SyncTarget"]);
    assert.deepEqual([a.sequencer, b.sequencer], ["b", "b"]);
    assert.deepEqual([...a.bits.iterate()], [3, 4]);
    assert.equal(a.gen.syncSource, G(2));
  });

  it("a node that is new to an initialized partner gets everything", () => {
    const p = plans(gen(), gen({ current: G(5), initialized: false }));
    assert.equal(linkOf(p.b).bits.count(), 16);
    assert.equal(linkOf(p.a).situation, "SyncSource");
  });

  it("both wrote since the same generation: split brain on both, serving on only the node that held the witness", () => {
    const aGen = gen({ current: G(3), bitmapUuid: G(1) });
    const bGen = gen({ current: G(4), bitmapUuid: G(1) });
    const p = plans(aGen, bGen, bits(2), bits(5));
    for (const x of [p.a, p.b]) {
      assert.equal(x.kind, "split-brain");
      if (x.kind === "split-brain") assert.equal(x.splitBrain.commonAncestor, true);
    }
    const alone = planLink({
      node: "a",
      gen: aGen,
      mine: { regionSize: REGION, sizeBytes: SIZE, bits: bits(2) },
      theirs: { generation: viewOf(bGen), regionSize: REGION, sizeBytes: SIZE, bits: bits(5) },
      wasAlone: true,
    });
    assert.equal(alone.kind === "split-brain" && alone.situation, "SplitBrainAlone");
  });

  it("refuses a partner of another geometry or with a bitmap of the wrong size", () => {
    const r = planLink({
      node: "a",
      gen: gen(),
      mine: { regionSize: REGION, sizeBytes: SIZE, bits: bits() },
      theirs: { generation: viewOf(gen()), regionSize: REGION, sizeBytes: 2 * SIZE, bits: new Uint8Array(4) },
      wasAlone: false,
    });
    assert.equal(r.kind, "refuse");
    const s = planLink({
      node: "a",
      gen: gen(),
      mine: { regionSize: REGION, sizeBytes: SIZE, bits: bits() },
      theirs: { generation: viewOf(gen()), regionSize: REGION, sizeBytes: SIZE, bits: new Uint8Array(3) },
      wasAlone: false,
    });
    assert.equal(s.kind, "refuse");
  });

  it("both ends always agree: one sequencer, complementary roles, the same regions", () => {
    const gens = [
      gen(),
      gen({ current: G(2), bitmapUuid: G(1), history: [G(1)] }),
      gen({ current: G(3), bitmapUuid: G(1), history: [G(1)] }),
      gen({ current: G(1), consistent: false, syncSource: G(2) }),
      gen({ current: G(9), initialized: false }),
      gen({ current: G(7), history: [G(1)] }),
    ];
    const bitsets = [bits(), bits(0), bits(15, 3)];
    let links = 0;
    for (const ga of gens)
      for (const gb of gens)
        for (const ba of bitsets)
          for (const bb of bitsets) {
            const p = plans(ga, gb, ba, bb);
            assert.equal(p.a.kind, p.b.kind, "both decide alike");
            if (p.a.kind !== "link" || p.b.kind !== "link") continue;
            links++;
            assert.equal(p.a.sequencer, p.b.sequencer);
            assert.deepEqual([...p.a.bits.iterate()], [...p.b.bits.iterate()]);
            const roles = [p.a.role, p.b.role].sort().join(",");
            assert.ok(["none,none", "source,target"].includes(roles), roles);
            const src = p.a.role === "source" ? "a" : p.b.role === "source" ? "b" : null;
            if (src) assert.equal(p.a.sequencer, src, "the resync source sequences");
          }
    assert.ok(links > 20, `${links} linked cases checked`);
  });
});
