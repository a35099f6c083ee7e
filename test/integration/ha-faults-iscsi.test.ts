import { IscsiPairHarness } from "../support/iscsi-pair-harness.js";
import { describeFaultRounds } from "../support/pair-faults.js";

/**
 * The seeded fault rounds of pair-faults.test.ts against the real product: two target
 * processes, every write and read through iSCSI sessions to both portals. `make test-faults`
 * runs 50 rounds of each kind; HASAN_FAULT_SEED replays a run.
 */
describeFaultRounds({
  title: "pair over iSCSI under randomized faults",
  harness: new IscsiPairHarness({ sizeBytes: 16 * 1024 * 1024, resyncRate: 4 * 1024 * 1024 }),
  rounds: Number(process.env.HASAN_FAULT_ROUNDS ?? 2),
  // The short set in the test command replays one known schedule; `make test-faults` draws new ones.
  seed: Number(
    process.env.HASAN_FAULT_SEED ??
      (process.env.HASAN_FAULT_ROUNDS ? Math.floor(Math.random() * 2 ** 31) : 823303205),
  ),
  roundTitle: "acknowledged writes survive on both portals and both copies end identical",
});
