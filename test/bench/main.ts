import { mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTarget } from "../support/target-process.js";
import { startTgt } from "../support/tgt.js";
import { bestOf, formatRate, printTable, qemuBench, standardWorkloads } from "./qemu-bench.js";
import {
  benchPairWrites,
  benchResync,
  floorHeader,
  goalsHeader,
  latencyHeader,
  pairHeader,
} from "./pair-bench.js";
import { benchVerifyUnderLoad, verifyHeader } from "./verify-bench.js";

/**
 * `make bench`: the target against Debian's tgt on the same machine, same file size, same run,
 * through qemu-img bench over libiscsi, one row per workload with the ratio; then the pair's
 * mirrored writes against a standalone target, and resync throughput against the disk.
 * Then an online verify under a 4 KiB random write load (its effect on the load's p99 latency).
 * BENCH_ONLY=target|pair|resync|verify picks one part; BENCH_RUNS sets the runs per row (best is kept).
 */
const size = 1 << 30;
const runs = Number(process.env.BENCH_RUNS ?? 2);
const only = process.env.BENCH_ONLY;

async function benchTarget(): Promise<string[][]> {
  const dir = mkdtempSync(join(tmpdir(), "hasan-bench-"));
  const tgtFile = join(dir, "tgt.img");
  writeFileSync(tgtFile, "");
  truncateSync(tgtFile, size);
  const tgt = await startTgt(tgtFile);
  const target = await startTarget({ dir, size: String(size) });
  const rows: string[][] = [];
  try {
    for (const w of standardWorkloads) {
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
  return rows;
}

async function main() {
  const sections: { title: string; header: string[]; rows: string[][] }[] = [];
  if (!only || only === "target") {
    sections.push({
      title: "Standalone target vs tgt (qemu-img bench over libiscsi, loopback)",
      header: ["workload", "hasan", "tgt", "ratio hasan/tgt"],
      rows: await benchTarget(),
    });
  }
  if (!only || only === "pair") {
    const pair = await benchPairWrites(runs);
    sections.push(
      {
        title: "HA pair (Working, synchronous mirroring) vs standalone target",
        header: pairHeader,
        rows: pair.rows,
      },
      {
        title: "HA pair: write latency at depth 1 vs standalone",
        header: latencyHeader,
        rows: pair.latencyRows,
      },
      { title: "HA pair: goals (from this run)", header: goalsHeader, rows: pair.goals },
      {
        title: "HA pair: what a minimal forwarder costs on this machine (from this run)",
        header: floorHeader,
        rows: pair.floorRows,
      },
    );
  }
  if (!only || only === "resync") {
    sections.push({
      title: "Resync throughput vs the disk",
      header: ["job", "hasan resync", "disk", "ratio"],
      rows: await benchResync(Number(process.env.BENCH_RESYNC_BYTES ?? 512 << 20)),
    });
  }
  if (!only || only === "verify") {
    // BENCH_VERIFY_RATES: verify rates in MiB/s, one row each; the LUN takes 8 s to walk at each.
    const rows: string[][] = [];
    for (const mib of (process.env.BENCH_VERIFY_RATES ?? "8,32").split(",").map(Number)) {
      rows.push(
        ...(await benchVerifyUnderLoad({
          sizeBytes: mib * 8 * 2 ** 20,
          rate: mib * 2 ** 20,
          windowMs: 5_000,
          rounds: 4,
          sessions: 4,
        })),
      );
    }
    sections.push({
      title: "Online verify under a 4 KiB random write load (Working pair)",
      header: verifyHeader,
      rows,
    });
  }
  for (const s of sections) {
    console.log(`\n${s.title}`);
    printTable(s.header, s.rows);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
