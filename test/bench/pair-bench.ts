import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { startTarget, type TargetHandle } from "../support/target-process.js";
import { startTargetPair } from "../support/target-pair.js";
import { qemuIoOk } from "../support/qemu.js";
import { forwardFloor, type ForwardFloor } from "./forward-floor.js";
import { loopbackRoundTrip } from "./round-trip.js";
import { ScsiClient } from "../support/scsi-client.js";
import {
  bestOfWithCpu,
  formatCpu,
  formatRate,
  machineCpus,
  type MeasuredResult,
  type Workload,
} from "./qemu-bench.js";

export const pairWorkloads: Workload[] = [
  { name: "4 KiB write qd32", write: true, blockSize: 4096, depth: 32, count: 60_000 },
  { name: "1 MiB write qd16", write: true, blockSize: 1 << 20, depth: 16, count: 1_500 },
];

/** Bounds the pair is held to (`make bench` prints whether each is met). */
export const pairGoals = {
  /** node a (the sequencer, serving the initiator) at most this times a standalone's CPU per write */
  sequencerCpu: 1.3,
  /** node b (mirroring only) at most this times a standalone's CPU per write */
  partnerCpu: 0.7,
  /** a write at depth 1 through the pair at most this much slower than standalone, mean and p99 */
  latencyUs: 50,
};

/** 4 KiB writes at depth 1 timed one by one, for the latency row. */
const latencyWrites = { count: 5_000, warmup: 200, blockSize: 4096 };

export interface LatencyResult {
  meanUs: number;
  p99Us: number;
}

export interface PairBench {
  rows: string[][];
  latencyRows: string[][];
  goals: string[][];
  /** what a minimal forwarder costs on this machine, against the CPU goals */
  floorRows: string[][];
}

/** The rows of one pair, and the standalone target's CPU per write by workload name. */
interface OnePairBench extends Omit<PairBench, "floorRows"> {
  standaloneUs: Map<string, number>;
}

/**
 * Rows: mirrored writes through portal a of a Working pair, as a ratio to a standalone target,
 * with the CPU time per write of the target processes and of the whole machine. The initiator,
 * node a and node b share this machine's CPUs: when both runs keep them all busy, the ratio is
 * the machine's CPU per write standalone over pair, whatever the code does; on separate machines
 * each node has its own CPUs and node a's CPU per write is what bounds the pair.
 * Then the latency of 4 KiB writes at depth 1 (mean and p99, pair and standalone), and whether
 * each bound of `pairGoals` is met in this run.
 */
export async function benchPairWrites(runs: number): Promise<PairBench> {
  const out: PairBench = { rows: [], latencyRows: [], goals: [], floorRows: [] };
  const single = await startTarget({ size: "1Gi" });
  try {
    const standaloneUs = new Map<string, number>();
    for (const records of ["encrypted", "authenticated"] as const) {
      const r = await benchOnePair(runs, single, records);
      out.rows.push(...r.rows);
      out.latencyRows.push(...r.latencyRows);
      out.goals.push(...r.goals);
      for (const [name, us] of r.standaloneUs)
        standaloneUs.set(name, Math.min(us, standaloneUs.get(name) ?? Infinity));
    }
    for (const w of pairWorkloads) {
      const floor = await bestFloor(runs, w);
      out.floorRows.push(...floorRows(w, floor, standaloneUs.get(w.name) ?? NaN));
    }
    // What the machine itself adds per round trip between two processes: the floor under
    // "pair - standalone", whatever the code does.
    const rtt = await loopbackRoundTrip();
    out.latencyRows.push([
      "floor: 4 KiB round trip between two Node.js processes over loopback TCP",
      "",
      "",
      `+${rtt.meanUs.toFixed(0)} µs / +${rtt.p99Us.toFixed(0)} µs`,
    ]);
    return out;
  } finally {
    await single.stop();
  }
}

/** The rows of one pair whose nodes both ask for `records` (--peer-records), against `single`. */
async function benchOnePair(
  runs: number,
  single: TargetHandle,
  records: "encrypted" | "authenticated",
): Promise<OnePairBench> {
  const rows: string[][] = [];
  const goals: string[][] = [];
  const standaloneUs = new Map<string, number>();
  const pair = await startTargetPair({ size: "1Gi", extraArgs: ["--peer-records", records] });
  const label = `pair (${records} records)`;
  try {
    await pair.waitWorking();
    const pid = (t: { process: { pid?: number } }) => t.process.pid ?? 0;
    for (const w of pairWorkloads) {
      const s = await bestOfWithCpu(runs, single.url(), w, [pid(single)]);
      const p = await bestOfWithCpu(runs, pair.a.url(), w, [pid(pair.a), pid(pair.b)]);
      const [cpuA = 0, cpuB = 0] = p.cpuUsPerOp;
      const cpuS = s.cpuUsPerOp[0] ?? 0;
      standaloneUs.set(w.name, cpuS);
      rows.push([
        `${label} ${w.name} (portal a)`,
        formatRate(w, p),
        formatRate(w, s),
        (s.seconds / p.seconds).toFixed(2),
        formatCpu(cpuS),
        `${formatCpu(cpuA)} + ${formatCpu(cpuB)}`,
        `${formatCpu(s.machineUsPerOp)} / ${formatCpu(p.machineUsPerOp)} = ${(s.machineUsPerOp / p.machineUsPerOp).toFixed(2)}`,
      ]);
      goals.push(...cpuGoals(`${records}: ${w.name}`, s, p));
      console.error(`${label} ${w.name}: ${formatRate(w, p)} vs standalone ${formatRate(w, s)}`);
    }
    const ls = await bestLatency(runs, single.port, single.iqn);
    const lp = await bestLatency(runs, pair.a.port, pair.iqn);
    const latencyRows = [
      [
        `${label} 4 KiB write qd1 (portal a)`,
        `${ls.meanUs.toFixed(0)} µs / ${ls.p99Us.toFixed(0)} µs`,
        `${lp.meanUs.toFixed(0)} µs / ${lp.p99Us.toFixed(0)} µs`,
        `+${(lp.meanUs - ls.meanUs).toFixed(0)} µs / +${(lp.p99Us - ls.p99Us).toFixed(0)} µs`,
      ],
    ];
    for (const [what, pairUs, singleUs] of [
      ["mean", lp.meanUs, ls.meanUs],
      ["p99", lp.p99Us, ls.p99Us],
    ] as const) {
      const bound = singleUs + pairGoals.latencyUs;
      goals.push([
        `${records}: 4 KiB write qd1 ${what} latency: pair <= standalone + ${pairGoals.latencyUs} µs`,
        `${pairUs.toFixed(0)} µs`,
        `${bound.toFixed(0)} µs (${singleUs.toFixed(0)} + ${pairGoals.latencyUs})`,
        verdict(pairUs <= bound),
      ]);
    }
    console.error(
      `${label} qd1 latency: mean ${lp.meanUs.toFixed(0)} µs vs standalone ${ls.meanUs.toFixed(0)} µs`,
    );
    return { rows, latencyRows, goals, standaloneUs };
  } finally {
    await pair.stop();
    rmSync(pair.dir, { recursive: true, force: true });
  }
}

/**
 * The floor with the least CPU (sender and receiver together) of n runs, each of as many messages
 * as the workload has writes, after a tenth as many to warm up.
 */
async function bestFloor(n: number, w: Workload): Promise<ForwardFloor> {
  const cpu = (x: ForwardFloor) => x.senderUsPerMessage + x.receiverUsPerMessage;
  let best: ForwardFloor | undefined;
  for (let i = 0; i < n; i++) {
    const f = await forwardFloor(w.blockSize, w.depth, w.count, Math.ceil(w.count / 10));
    if (!best || cpu(f) < cpu(best)) best = f;
  }
  return best as ForwardFloor;
}

/**
 * The CPU goals set against a minimal forwarder: node a does what a standalone target does plus
 * what the minimal sender does, node b what the minimal receiver does, and more besides (records
 * authenticated, frames checked, writes sequenced). A goal below these sums is out of reach on
 * this machine.
 */
function floorRows(w: Workload, f: ForwardFloor, standaloneUs: number): string[][] {
  const atLeastA = standaloneUs + f.senderUsPerMessage;
  const ratio = (us: number) =>
    standaloneUs > 0 && Number.isFinite(standaloneUs) ? (us / standaloneUs).toFixed(2) : "?";
  const ofStandalone = `standalone ${formatCpu(standaloneUs)}`;
  return [
    [
      `${w.name}: sender, to another Node.js process over loopback TCP, ${w.depth} in flight, those queued in one turn written together`,
      `${formatCpu(f.senderUsPerMessage)} (${formatRate(w, f)})`,
      `${ofStandalone} + sender = ${formatCpu(atLeastA)} = ${ratio(atLeastA)} x standalone; node a's goal: ${pairGoals.sequencerCpu} x`,
    ],
    [
      `${w.name}: receiver, writes each to a file (writev of the chunks it arrived in), acknowledges each read's messages in one write`,
      formatCpu(f.receiverUsPerMessage),
      `receiver = ${ratio(f.receiverUsPerMessage)} x ${ofStandalone}; node b's goal: ${pairGoals.partnerCpu} x`,
    ],
  ];
}

function verdict(met: boolean): string {
  return met ? "met" : "NOT MET";
}

/** The CPU goals of one workload: node a's and node b's CPU per write against the standalone's. */
function cpuGoals(what: string, s: MeasuredResult, p: MeasuredResult): string[][] {
  const cpuS = s.cpuUsPerOp[0] ?? 0;
  const [cpuA = 0, cpuB = 0] = p.cpuUsPerOp;
  return [
    ["a", cpuA, pairGoals.sequencerCpu],
    ["b", cpuB, pairGoals.partnerCpu],
  ].map(([node, cpu, factor]) => {
    const bound = cpuS * (factor as number);
    return [
      `${what} CPU/write node ${node as string} <= ${factor as number} x standalone`,
      formatCpu(cpu as number),
      `${formatCpu(bound)} (${factor as number} x ${formatCpu(cpuS)})`,
      verdict((cpu as number) <= bound),
    ];
  });
}

/** Best (lowest mean) of n runs of latencyWrites. */
async function bestLatency(n: number, port: number, iqn: string): Promise<LatencyResult> {
  let best: LatencyResult | undefined;
  for (let i = 0; i < n; i++) {
    const r = await writeLatency(port, iqn);
    if (!best || r.meanUs < best.meanUs) best = r;
  }
  return best as LatencyResult;
}

/**
 * Times 4 KiB WRITE(10)s one at a time over one iSCSI session (the initiator is this process, the
 * same for pair and standalone); the first `warmup` are not counted.
 */
async function writeLatency(port: number, iqn: string): Promise<LatencyResult> {
  const client = await ScsiClient.open({ port, iqn, initiator: "iqn.2026-11.dev.hasan:bench-latency" });
  try {
    const { count, warmup, blockSize } = latencyWrites;
    const data = Buffer.alloc(blockSize, 0x6c);
    const blocks = blockSize / 512;
    const times: number[] = [];
    // Sequential, as qemu-img bench writes: a new activity extent (a bitmap fsync on the pair)
    // every 4 MiB, well under 1% of the writes.
    for (let i = 0; i < warmup + count; i++) {
      const cdb = write10(i * blocks, blocks);
      const t0 = process.hrtime.bigint();
      const r =
        i === 0
          ? await client.commandClearingUnitAttention(cdb, { dataOut: data })
          : await client.command(cdb, { dataOut: data });
      const us = Number(process.hrtime.bigint() - t0) / 1000;
      if (r.status !== 0) throw new Error(`WRITE(10) failed with status 0x${r.status.toString(16)}`);
      if (i >= warmup) times.push(us);
    }
    times.sort((x, y) => x - y);
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    return { meanUs: mean, p99Us: times[Math.min(times.length - 1, Math.floor(times.length * 0.99))]! };
  } finally {
    client.close();
  }
}

function write10(lba: number, blocks: number): Buffer {
  const c = Buffer.alloc(10);
  c[0] = 0x2a;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
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

/** Column names of benchPairWrites' latency rows and goals. */
export const latencyHeader = ["workload", "standalone mean / p99", "pair mean / p99", "pair - standalone"];
export const goalsHeader = ["goal", "measured", "bound", "verdict"];
export const floorHeader = [
  "floor: a minimal forwarder (no crypto, no checks, no iSCSI)",
  "CPU per message",
  "against the goal",
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
