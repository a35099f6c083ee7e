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
 * kept) on a Working pair, measured without a verify, with one running at `rate`, and without
 * again; the row gives the p99 with the verify against the mean of the two without, and the rate
 * the verify kept (bytes it compared over the window) against its limit.
 */
export async function benchVerifyUnderLoad(o: {
  sizeBytes: number;
  rate: number;
  windowMs: number;
  sessions: number;
}): Promise<string[][]> {
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
    const before = await writeLoad(clients, o.sizeBytes, o.windowMs);
    // The verify must outlast the window: it walks sizeBytes at `rate`.
    const r = await fetch(`http://${pair.a.host}:${pair.a.agentPort}/verify`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ rateBytesPerSecond: o.rate }),
    });
    if (r.status !== 202) throw new Error(`POST /verify answered ${r.status}: ${await r.text()}`);
    await new Promise((res) => setTimeout(res, 500));
    const v0 = await verifyOf(pair.a);
    const t0 = performance.now();
    const during = await writeLoad(clients, o.sizeBytes, o.windowMs);
    const v1 = await verifyOf(pair.a);
    const seconds = (performance.now() - t0) / 1000;
    if (v1.state !== "running")
      throw new Error(`the verify ended within the window (${v1.state}): make the LUN larger`);
    const after = await writeLoad(clients, o.sizeBytes, o.windowMs);
    const base = (p99(before) + p99(after)) / 2;
    const withVerify = p99(during);
    const rate = (v1.bytesChecked - v0.bytesChecked) / seconds;
    console.error(
      `verify bench: p99 ${p99(before).toFixed(2)} / ${withVerify.toFixed(2)} / ${p99(after).toFixed(2)} ms ` +
        `(${before.length}, ${during.length}, ${after.length} writes); verify ${(rate / MiB).toFixed(1)} MiB/s of ${(o.rate / MiB).toFixed(1)}`,
    );
    return [
      [
        `4 KiB random writes, ${o.sessions} sessions qd1; verify at ${(o.rate / MiB).toFixed(0)} MiB/s`,
        `${base.toFixed(2)} ms (${p99(before).toFixed(2)}, ${p99(after).toFixed(2)})`,
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
