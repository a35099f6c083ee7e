import { mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTarget } from "../support/target-process.js";
import { startTgt } from "../support/tgt.js";
import { bestOf, formatRate, printTable, qemuBench, standardWorkloads } from "./qemu-bench.js";

/**
 * `make bench`: the target against Debian's tgt on the same machine, same file size, same run,
 * through qemu-img bench over libiscsi. Prints one row per workload with the ratio target/tgt.
 */
const size = 1 << 30;
const runs = Number(process.env.BENCH_RUNS ?? 2);

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "hasan-bench-"));
  const tgtFile = join(dir, "tgt.img");
  writeFileSync(tgtFile, "");
  truncateSync(tgtFile, size);
  const tgt = await startTgt(tgtFile);
  const target = await startTarget({ dir, size: String(size) });
  const rows: string[][] = [];
  try {
    for (const w of standardWorkloads) {
      // Alternate the two so that neither always runs on a warmer page cache.
      const t = await bestOf(runs, () => qemuBench(tgt.url(), w));
      const h = await bestOf(runs, () => qemuBench(target.url(), w));
      rows.push([w.name, formatRate(w, h), formatRate(w, t), (t.seconds / h.seconds).toFixed(2)]);
      console.error(`${w.name}: hasan ${formatRate(w, h)}, tgt ${formatRate(w, t)}`);
    }
  } finally {
    await target.stop();
    await tgt.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log("");
  printTable(["workload (qemu-img bench)", "hasan", "tgt", "ratio hasan/tgt"], rows);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
