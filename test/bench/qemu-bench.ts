import { availableParallelism } from "node:os";
import { machineBusyMs, processCpuMs } from "../support/process-cpu.js";
import { run } from "../support/processes.js";

/** One `qemu-img bench` workload. */
export interface Workload {
  name: string;
  write: boolean;
  blockSize: number;
  depth: number;
  count: number;
}

export const standardWorkloads: Workload[] = [
  { name: "4 KiB write qd32", write: true, blockSize: 4096, depth: 32, count: 60_000 },
  { name: "4 KiB read qd32", write: false, blockSize: 4096, depth: 32, count: 60_000 },
  { name: "4 KiB write qd1", write: true, blockSize: 4096, depth: 1, count: 15_000 },
  { name: "4 KiB read qd1", write: false, blockSize: 4096, depth: 1, count: 15_000 },
  { name: "1 MiB write qd16", write: true, blockSize: 1 << 20, depth: 16, count: 1_500 },
  { name: "1 MiB read qd16", write: false, blockSize: 1 << 20, depth: 16, count: 1_500 },
];

export interface BenchResult {
  seconds: number;
  iops: number;
  bytesPerSecond: number;
}

/** Runs qemu-img bench against an iSCSI URL and parses its elapsed time. */
export async function qemuBench(url: string, w: Workload): Promise<BenchResult> {
  const args = [
    "bench",
    "-f",
    "raw",
    "-c",
    String(w.count),
    "-d",
    String(w.depth),
    "-s",
    String(w.blockSize),
  ];
  if (w.write) args.push("-w");
  args.push(url);
  const r = await run("qemu-img", args, { timeoutMs: 300_000 });
  const m = /Run completed in ([\d.]+) seconds/.exec(r.stdout);
  if (r.code !== 0 || !m)
    throw new Error(`qemu-img ${args.join(" ")} failed (${r.code}): ${r.stdout}${r.stderr}`);
  const seconds = Number(m[1]);
  return { seconds, iops: w.count / seconds, bytesPerSecond: (w.count * w.blockSize) / seconds };
}

/** Best of n runs (the least disturbed by the rest of the machine). */
export async function bestOf(n: number, f: () => Promise<BenchResult>): Promise<BenchResult> {
  let best: BenchResult | undefined;
  for (let i = 0; i < n; i++) {
    const r = await f();
    if (!best || r.seconds < best.seconds) best = r;
  }
  return best as BenchResult;
}

/**
 * A bench result with the CPU time each watched process spent per I/O during that run, and the
 * whole machine's (initiator, kernel and every process included).
 */
export interface MeasuredResult extends BenchResult {
  cpuUsPerOp: number[];
  machineUsPerOp: number;
}

/** Best of n runs, with the CPU per I/O of `pids` (target processes) during the best one. */
export async function bestOfWithCpu(
  n: number,
  url: string,
  w: Workload,
  pids: number[],
): Promise<MeasuredResult> {
  let best: MeasuredResult | undefined;
  for (let i = 0; i < n; i++) {
    const before = pids.map(processCpuMs);
    const machineBefore = machineBusyMs();
    const r = await qemuBench(url, w);
    const machineUsPerOp = ((machineBusyMs() - machineBefore) * 1000) / w.count;
    const cpuUsPerOp = pids.map((p, j) => ((processCpuMs(p) - before[j]!) * 1000) / w.count);
    if (!best || r.seconds < best.seconds) best = { ...r, cpuUsPerOp, machineUsPerOp };
  }
  return best as MeasuredResult;
}

export function formatCpu(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(1)} µs`;
}

/** CPUs of this machine: the initiator and every target process of a bench share them. */
export const machineCpus = availableParallelism();

export function formatRate(w: Workload, r: BenchResult): string {
  return w.blockSize >= 1 << 20
    ? `${(r.bytesPerSecond / 1e6).toFixed(0)} MB/s`
    : `${(r.iops / 1000).toFixed(1)} k IOPS`;
}

export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => "| " + cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ") + " |";
  console.log(line(header));
  console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
  for (const r of rows) console.log(line(r));
}
