import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { startTarget } from "../support/target-process.js";
import { startTargetPair } from "../support/target-pair.js";
import { qemuIoOk } from "../support/qemu.js";
import { bestOf, formatRate, qemuBench, type Workload } from "./qemu-bench.js";

export const pairWorkloads: Workload[] = [
  { name: "4 KiB write qd32", write: true, blockSize: 4096, depth: 32, count: 60_000 },
  { name: "1 MiB write qd16", write: true, blockSize: 1 << 20, depth: 16, count: 1_500 },
];

/** Rows: mirrored writes through portal a of a Working pair, as a ratio to a standalone target. */
export async function benchPairWrites(runs: number): Promise<string[][]> {
  const rows: string[][] = [];
  const single = await startTarget({ size: "1Gi" });
  const pair = await startTargetPair({ size: "1Gi" });
  try {
    for (const w of pairWorkloads) {
      const s = await bestOf(runs, () => qemuBench(single.url(), w));
      const p = await bestOf(runs, () => qemuBench(pair.a.url(), w));
      rows.push([
        `pair ${w.name} (portal a)`,
        formatRate(w, p),
        formatRate(w, s),
        (s.seconds / p.seconds).toFixed(2),
      ]);
      console.error(`pair ${w.name}: ${formatRate(w, p)} vs standalone ${formatRate(w, s)}`);
    }
  } finally {
    await pair.stop();
    await single.stop();
    rmSync(pair.dir, { recursive: true, force: true });
  }
  return rows;
}

/**
 * Resync throughput: write `bytes` while node b is down, restart it and time the copy; compare with
 * what the disk does for the same bytes (read one file, write another, fsync) on the same machine.
 */
export async function benchResync(bytes: number): Promise<string[][]> {
  const pair = await startTargetPair({ size: "2Gi" });
  try {
    await pair.b.stop("SIGKILL");
    await pair.waitServingAlone("a");
    await qemuIoOk(pair.a.url(), [`write -P 0x5e 0 ${bytes}`]);
    const t0 = process.hrtime.bigint();
    await pair.b.restart();
    await pair.waitWorking(600_000);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const r = (await pair.a.status()).replication;
    const copied = r?.stats.resyncedBytes ?? 0;
    const resyncRate = copied / seconds;
    // The disk's own speed for the same job: copy the source region to a new file and fsync it.
    const copyTo = join(pair.dir, "disk-copy.img");
    const d0 = process.hrtime.bigint();
    const dd = spawnSync("dd", [
      `if=${pair.a.dataFile}`,
      `of=${copyTo}`,
      "bs=1M",
      `count=${Math.ceil(bytes / (1 << 20))}`,
      "conv=fdatasync",
      "status=none",
    ]);
    if (dd.status !== 0) throw new Error(`dd failed: ${dd.stderr.toString()}`);
    const diskRate = bytes / (Number(process.hrtime.bigint() - d0) / 1e9);
    return [
      [
        `resync ${(bytes / 2 ** 20).toFixed(0)} MiB (incl. restart of b)`,
        `${(resyncRate / 1e6).toFixed(0)} MB/s`,
        `${(diskRate / 1e6).toFixed(0)} MB/s (dd, same disk)`,
        (resyncRate / diskRate).toFixed(2),
      ],
    ];
  } finally {
    await pair.stop();
    rmSync(pair.dir, { recursive: true, force: true });
  }
}
