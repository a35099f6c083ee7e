import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { IscsiPairHarness } from "../support/iscsi-pair-harness.js";
import { FaultRunner } from "../support/pair-faults.js";

/**
 * The seeded fault rounds of pair-faults.test.ts against the real product: two target
 * processes, every write and read through iSCSI sessions to both portals. `make test-faults`
 * runs 50 rounds of each kind; HASAN_FAULT_SEED replays a run.
 */
const rounds = Number(process.env.HASAN_FAULT_ROUNDS ?? 2);
// The short set in the test command replays one known schedule; `make test-faults` draws new ones.
const seed = Number(
  process.env.HASAN_FAULT_SEED ??
    (process.env.HASAN_FAULT_ROUNDS ? Math.floor(Math.random() * 2 ** 31) : 823303205),
);

describe(
  `pair over iSCSI under randomized faults (seed ${seed}, ${rounds} rounds)`,
  { timeout: 60 * 60_000 },
  () => {
    const h = new IscsiPairHarness({ sizeBytes: 16 * 1024 * 1024, resyncRate: 4 * 1024 * 1024 });
    let runner: FaultRunner;
    before(async () => {
      console.log(`fault seed ${seed} (replay with HASAN_FAULT_SEED=${seed} HASAN_FAULT_ROUNDS=${rounds})`);
      await h.setup();
      await Promise.all([h.start("a"), h.start("b")]);
      await h.waitInSync();
      runner = new FaultRunner(h, seed, (s) => console.log(s));
    });
    after(() => h.cleanup());

    for (let r = 1; r <= rounds; r++) {
      it(
        `round ${r}: acknowledged writes survive on both portals and both copies end identical`,
        { timeout: 300_000 },
        async () => {
          console.log(`round ${r} (seed ${seed})`);
          const report = await runner.round(r);
          console.log(
            `  ${report.writesAcked} writes acknowledged, ${report.writesFailed} refused, ${report.readsChecked} reads checked`,
          );
          assert.ok(report.writesAcked > 0, "the pair served writes during the round");
        },
      );
    }
  },
);
