import { randomInt } from "node:crypto";
import { rmSync } from "node:fs";
import { VerifyStatusSchema, type VerifyStatus } from "../../target/agent/status-schema.js";
import { ScsiClient } from "../support/scsi-client.js";
import { startTargetPair } from "../support/target-pair.js";
import type { TargetHandle } from "../support/target-process.js";

const MiB = 1024 * 1024;
const BLOCK = 512;
const IO = 4096;

/** Column names of benchVerifyUnderLoad's row. */
export const verifyHeader = [
  "job",
  "write p99 without verify",
  "write p99 with verify",
  "p99 increase",
  "verify rate / limit",
];

/**
 * A 4 KiB random write load (qd1 on each of `sessions` iSCSI sessions to portal a, every latency
 * kept) on a Working pair, in `rounds` pairs of windows: one without a verify, then one with a
 * verify of the whole LUN at `rate` running throughout (the LUN is sized so the verify outlasts
 * the window). Alternating windows keep a change in the rest of the machine's load from being
 * taken for the verify's effect. The row gives the pooled p99 of each kind, and the rate the
 * verifies kept (bytes compared over the windows) against the limit.
 */
export async function benchVerifyUnderLoad(o: {
  sizeBytes: number;
  rate: number;
  windowMs: number;
  rounds: number;
  sessions: number;
}): Promise<string[][]> {
  if (o.sizeBytes / o.rate < (o.windowMs / 1000) * 1.2) throw new Error("the verify must outlast the window");
  const pair = await startTargetPair({ size: String(o.sizeBytes) });
  const clients: ScsiClient[] = [];
  try {
    for (let i = 0; i < o.sessions; i++) {
      const c = await ScsiClient.open({
        port: pair.a.port,
        iqn: pair.iqn,
        initiator: `iqn.2026-11.dev.hasan:verify-bench-${i}`,
        isid: `4000000001${i.toString(16).padStart(2, "0")}`,
      });
      await c.commandClearingUnitAttention(Buffer.alloc(6));
      clients.push(c);
    }
    const without: number[] = [];
    const within: number[] = [];
    let checked = 0;
    let seconds = 0;
    for (let round = 0; round < o.rounds; round++) {
      await waitIdle(pair.a);
      without.push(...(await writeLoad(clients, o.sizeBytes, o.windowMs)));
      const r = await fetch(`http://${pair.a.host}:${pair.a.agentPort}/verify`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ rateBytesPerSecond: o.rate }),
      });
      if (r.status !== 202) throw new Error(`POST /verify answered ${r.status}: ${await r.text()}`);
      const v0 = await verifyOf(pair.a);
      const t0 = performance.now();
      within.push(...(await writeLoad(clients, o.sizeBytes, o.windowMs)));
      const v1 = await verifyOf(pair.a);
      seconds += (performance.now() - t0) / 1000;
      if (v1.runId !== v0.runId || v1.state !== "running")
        throw new Error("the verify ended within the window");
      checked += v1.bytesChecked - v0.bytesChecked;
    }
    await waitIdle(pair.a);
    const base = p99(without);
    const withVerify = p99(within);
    const rate = checked / seconds;
    console.error(
      `verify bench: p99 ${base.toFixed(2)} ms without (${without.length} writes), ${withVerify.toFixed(2)} ms with ` +
        `(${within.length} writes); verify ${(rate / MiB).toFixed(1)} MiB/s of ${(o.rate / MiB).toFixed(1)}`,
    );
    return [
      [
        `4 KiB random writes, ${o.sessions} sessions qd1, ${o.rounds} x ${o.windowMs / 1000} s each way; verify at ${(o.rate / MiB).toFixed(0)} MiB/s`,
        `${base.toFixed(2)} ms`,
        `${withVerify.toFixed(2)} ms`,
        `${(((withVerify - base) / base) * 100).toFixed(1)} %`,
        `${(rate / MiB).toFixed(1)} / ${(o.rate / MiB).toFixed(1)} MiB/s`,
      ],
    ];
  } finally {
    for (const c of clients) c.close();
    await pair.stop();
    rmSync(pair.dir, { recursive: true, force: true });
  }
}

/** Waits until no verify runs on the pair. */
async function waitIdle(t: TargetHandle): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if ((await verifyOf(t)).state !== "running") return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error("the verify did not end");
}

async function verifyOf(t: TargetHandle): Promise<VerifyStatus> {
  const r = await fetch(`http://${t.host}:${t.agentPort}/verify`);
  return VerifyStatusSchema.parse(await r.json());
}

/** Every session writes 4 KiB at random aligned offsets, one at a time, for `ms`; returns the latencies (ms). */
async function writeLoad(clients: ScsiClient[], sizeBytes: number, ms: number): Promise<number[]> {
  const latencies: number[] = [];
  const until = performance.now() + ms;
  const data = Buffer.alloc(IO, 0x5a);
  await Promise.all(
    clients.map(async (c) => {
      while (performance.now() < until) {
        const lba = randomInt(0, sizeBytes / IO) * (IO / BLOCK);
        const cdb = Buffer.alloc(10);
        cdb[0] = 0x2a;
        cdb.writeUInt32BE(lba, 2);
        cdb.writeUInt16BE(IO / BLOCK, 7);
        const t = performance.now();
        const r = await c.command(cdb, { dataOut: data });
        latencies.push(performance.now() - t);
        if (r.status !== 0) throw new Error(`WRITE(10) at ${lba} failed with status ${r.status}`);
      }
    }),
  );
  return latencies;
}

function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))] ?? 0;
}
