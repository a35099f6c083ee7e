import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { freshGeneration, type GenerationRecord } from "../../../target/store/pair-generation.js";
import {
  afterResyncAsSource,
  afterResyncAsTarget,
  asResyncTarget,
  goingAlone,
} from "../../../target/replication/generation-transitions.js";
import { decideSync } from "../../../target/replication/sync-direction.js";
import { SharedRun } from "../../../target/replication/resync.js";

const G = (n: number) => n.toString(16).padStart(16, "0");
const base = (): GenerationRecord => ({
  ...freshGeneration(65536, 1 << 24),
  current: G(1),
  initialized: true,
});

describe("generation transitions", () => {
  it("a node in sync starts a new generation when it goes alone; a node already ahead keeps it", () => {
    const alone = goingAlone(base(), G(2));
    assert.deepEqual([alone.current, alone.bitmapUuid, alone.history], [G(2), G(1), [G(1)]]);
    const again = goingAlone(alone, G(3));
    assert.deepEqual([again.current, again.bitmapUuid], [G(2), G(1)]);
  });

  it("lifecycle: alone, resync, in sync again — each step decided as expected", () => {
    const a0 = base();
    const b0 = base();
    const a1 = goingAlone(a0, G(2));
    assert.deepEqual(decideSync(a1, b0), {
      kind: "resync",
      source: "a",
      full: false,
      reason: "node a wrote alone; node b is behind",
    });
    const b1 = asResyncTarget(b0, a1.current);
    // Interrupted: the target's record resumes from the same source.
    assert.equal(decideSync(a1, b1).kind, "resync");
    // The source goes alone again while the target is incomplete: still a bitmap resume.
    const a2 = goingAlone(a1, G(3));
    assert.deepEqual(decideSync(a2, b1), {
      kind: "resync",
      source: "a",
      full: false,
      reason: "node b resumes its interrupted resync from node a",
    });
    const b2 = afterResyncAsTarget(b1, a2.current);
    const a3 = afterResyncAsSource(a2);
    assert.equal(b2.current, a3.current);
    assert.equal(a3.bitmapUuid, null);
    assert.equal(b2.consistent, true);
    const d = decideSync(a3, b2);
    assert.deepEqual(
      [d.kind, d.kind === "resync" && d.full],
      ["resync", false],
      "same generation: only bitmap bits",
    );
    // Both go alone from here: split brain.
    assert.equal(decideSync(goingAlone(a3, G(7)), goingAlone(b2, G(8))).kind, "split-brain");
  });
});

describe("SharedRun", () => {
  it("callers arriving during a run share one next run", async () => {
    let runs = 0;
    let release!: () => void;
    const r = new SharedRun(async () => {
      runs++;
      if (runs === 1) await new Promise<void>((res) => (release = res));
    });
    const first = r.run();
    const waiting = [r.run(), r.run(), r.run()];
    release();
    await Promise.all([first, ...waiting]);
    assert.equal(runs, 2);
  });
});
