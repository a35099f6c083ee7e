import { PairHarness } from "../support/pair-harness.js";
import { describeFaultRounds } from "../support/pair-faults.js";

// `make test-faults` runs 50 rounds; the normal suite a short set. HASAN_FAULT_SEED replays a run.
describeFaultRounds({
  title: "pair under randomized faults",
  // A capped resync rate keeps resyncs long enough to be interrupted.
  harness: new PairHarness({
    sizeBytes: 16 * 1024 * 1024,
    regionSize: 64 * 1024,
    resyncRate: 4 * 1024 * 1024,
  }),
  rounds: Number(process.env.HASAN_FAULT_ROUNDS ?? 3),
  seed: Number(process.env.HASAN_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31)),
  roundTitle: "acknowledged writes survive and both copies end identical",
});
