/**
 * `make fuzz`: long fuzzing runs of the iSCSI transport. FUZZ_SEED picks the first seed (random
 * by default, printed so a failure can be replayed); FUZZ_ROUNDS how many seeds to run.
 */
import { fuzzFraming, fuzzLogin, fuzzServer } from "./support/fuzz.js";
import { fuzzLimits } from "./support/fuzz-limits.js";

async function main(): Promise<void> {
  const first = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rounds = Number(process.env.FUZZ_ROUNDS ?? 20);
  for (let i = 0; i < rounds; i++) {
    const seed = (first + i) | 0;
    process.stdout.write(`seed ${seed}: `);
    const pdus = fuzzFraming(seed, 20_000);
    const login = fuzzLogin(seed, 50_000);
    await fuzzServer(seed, 40, 1000);
    const limits = await fuzzLimits(seed, 10, 60);
    console.log(
      `framed ${pdus} PDUs, ${login.completed} logins completed / ${login.failed} refused, server ok; ` +
        `${limits.actors} hostile clients (${limits.closedByTarget} closed by the target), ` +
        `peak write memory ${limits.peakWriteMemory} B (${limits.writeMemoryRefusals} refusals), peak connections ${limits.peakConnections}, ` +
        `${limits.goodWrites} good writes (${limits.retriedWrites} retried)`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
