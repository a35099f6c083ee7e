import { describePowerLossRounds } from "../support/power-loss.js";

/**
 * Power-loss rounds (test/support/power-loss.ts): the short set in the test command replays a
 * known seed; `make test-faults` draws new seeds for 20 rounds (HASAN_POWER_ROUNDS,
 * HASAN_POWER_SEED replay a run).
 */
describePowerLossRounds({
  rounds: Number(process.env.HASAN_POWER_ROUNDS ?? 3),
  seed: Number(
    process.env.HASAN_POWER_SEED ??
      (process.env.HASAN_POWER_ROUNDS ? Math.floor(Math.random() * 2 ** 31) : 1409733),
  ),
});
