import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { startTarget } from "../support/target-process.js";
import { startTargetPair } from "../support/target-pair.js";
import { qemuIoOk } from "../support/qemu.js";
import { bestOfWithCpu, formatCpu, formatRate, machineCpus, type Workload } from "./qemu-bench.js";

export const pairWorkloads: Workload[] = [
  { name: "4 KiB write qd32", write: true, blockSize: 4096, depth: 32, count: 60_000 },
  { name: "1 MiB write qd16", write: true, blockSize: 1 << 20, depth: 16, count: 1_500 },
];

/**
 * Rows: mirrored writes through portal a of a Working pair, as a ratio to a standalone target,
 * with the CPU time per write of the target processes and of the whole machine. The initiator,
 * node a and node b share this machine's CPUs: when both runs keep them all busy, the ratio is
 * the machine's CPU per write standalone over pair, whatever the code does; on separate machines
 * each node has its own CPUs and node a's CPU per write is what bounds the pair.
 */
export async function benchPairWrites(runs: number): Promise<string[][]> {
  const rows: string[][] = [];
  const single = await startTarget({ size: "1Gi" });
  const pair = await startTargetPair({ size: "1Gi" });
  try {
    await pair.waitWorking();
    const pid = (t: { process: { pid?: number } }) => t.process.pid ?? 0;
    for (const w of pairWorkloads) {
      const s = await bestOfWithCpu(runs, single.url(), w, [pid(single)]);
      const p = await bestOfWithCpu(runs, pair.a.url(), w, [pid(pair.a), pid(pair.b)]);
      const [cpuA = 0, cpuB = 0] = p.cpuUsPerOp;
      const cpuS = s.cpuUsPerOp[0] ?? 0;
      rows.push([
        `pair ${w.name} (portal a)`,
        formatRate(w, p),
        formatRate(w, s),
        (s.seconds / p.seconds).toFixed(2),
        formatCpu(cpuS),
        `${formatCpu(cpuA)} + ${formatCpu(cpuB)}`,
        `${formatCpu(s.machineUsPerOp)} / ${formatCpu(p.machineUsPerOp)} = ${(s.machineUsPerOp / p.machineUsPerOp).toFixed(2)}`,
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

/** Column names of benchPairWrites' rows. */
export const pairHeader = [
  "workload",
  "pair",
  "standalone",
  "ratio pair/standalone",
  "CPU/write standalone",
  "CPU/write pair a + b",
  `machine CPU/write (${machineCpus} CPUs) standalone / pair`,
];

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
