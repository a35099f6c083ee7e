import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decideSync, type GenerationView } from "../../../target/replication/sync-direction.js";

const G0 = "0000000000000a00";
const G1 = "0000000000000a01";
const G2 = "0000000000000a02";
const G3 = "0000000000000a03";

function gen(p: Partial<GenerationView>): GenerationView {
  return {
    current: G0,
    bitmapUuid: null,
    history: [],
    consistent: true,
    syncSource: null,
    initialized: true,
    ...p,
  };
}

const table: Array<{ name: string; a: GenerationView; b: GenerationView; want: string }> = [
  { name: "same generation", a: gen({}), b: gen({}), want: "resync a bitmap" },
  {
    name: "both new",
    a: gen({ initialized: false, current: G1 }),
    b: gen({ initialized: false, current: G2 }),
    want: "adopt",
  },
  { name: "b is new", a: gen({}), b: gen({ initialized: false, current: G2 }), want: "resync a full" },
  { name: "a is new", a: gen({ initialized: false, current: G2 }), b: gen({}), want: "resync b full" },
  {
    name: "a wrote alone",
    a: gen({ current: G1, bitmapUuid: G0, history: [G0] }),
    b: gen({}),
    want: "resync a bitmap",
  },
  {
    name: "b wrote alone",
    a: gen({}),
    b: gen({ current: G1, bitmapUuid: G0, history: [G0] }),
    want: "resync b bitmap",
  },
  {
    name: "both wrote alone from the same generation",
    a: gen({ current: G1, bitmapUuid: G0, history: [G0] }),
    b: gen({ current: G2, bitmapUuid: G0, history: [G0] }),
    want: "split-brain",
  },
  {
    name: "b resumes an interrupted resync from a",
    a: gen({ current: G1, bitmapUuid: G0, history: [G0] }),
    b: gen({ consistent: false, syncSource: G1 }),
    want: "resync a bitmap",
  },
  {
    name: "a resumes after b went on alone from the generation it was syncing to",
    a: gen({ consistent: false, syncSource: G1 }),
    b: gen({ current: G2, bitmapUuid: G1, history: [G1, G0] }),
    want: "resync b bitmap",
  },
  {
    name: "a was a target of an older generation of b",
    a: gen({ consistent: false, syncSource: G1 }),
    b: gen({ current: G3, bitmapUuid: G2, history: [G2, G1] }),
    want: "resync b full",
  },
  {
    name: "incomplete target of unrelated data",
    a: gen({ consistent: false, syncSource: G3 }),
    b: gen({ current: G1 }),
    want: "split-brain",
  },
  {
    name: "both incomplete",
    a: gen({ consistent: false, syncSource: G1 }),
    b: gen({ consistent: false, syncSource: G1 }),
    want: "split-brain",
  },
  {
    name: "b holds an old generation of a",
    a: gen({ current: G2, bitmapUuid: G1, history: [G1, G0] }),
    b: gen({ current: G0 }),
    want: "resync a full",
  },
  { name: "unrelated data", a: gen({ current: G1 }), b: gen({ current: G2 }), want: "split-brain" },
];

describe("decideSync", () => {
  for (const t of table) {
    it(t.name, () => {
      const d = decideSync(t.a, t.b);
      const got = d.kind === "resync" ? `resync ${d.source} ${d.full ? "full" : "bitmap"}` : d.kind;
      assert.equal(got, t.want, d.reason);
    });
  }

  it("same generation: the node that kept running is the source when its partner restarted", () => {
    const same = gen({});
    const bKept = decideSync(same, same, { a: false, b: true });
    assert.deepEqual([bKept.kind, bKept.kind === "resync" && bKept.source], ["resync", "b"]);
    const aKept = decideSync(same, same, { a: true, b: false });
    assert.deepEqual([aKept.kind, aKept.kind === "resync" && aKept.source], ["resync", "a"]);
  });

  it("whether a node kept running decides nothing when the generations already do", () => {
    for (const t of table) {
      const plain = decideSync(t.a, t.b);
      if (plain.kind === "resync" && plain.reason === "same generation") continue;
      for (const kept of [
        { a: true, b: false },
        { a: false, b: true },
      ])
        assert.deepEqual(decideSync(t.a, t.b, kept), plain, t.name);
    }
  });

  it("is symmetric: swapping the nodes swaps the source", () => {
    for (const t of table) {
      const d1 = decideSync(t.a, t.b);
      const d2 = decideSync(t.b, t.a);
      assert.equal(d1.kind === "split-brain", d2.kind === "split-brain", t.name);
      if (d1.kind === "resync" && d2.kind === "resync" && t.name !== "same generation") {
        assert.notEqual(d1.source, d2.source, t.name);
        assert.equal(d1.full, d2.full, t.name);
      }
    }
  });
});
