/**
 * Online verify of a running pair: bytes changed behind the target's back in exactly three
 * regions of one node's LUN file are found (exactly those regions), repaired from the chosen
 * source (the files are identical after), and a second verify finds nothing. A verify whose
 * sequencer is killed mid-run resumes from its saved position once the pair is Working again.
 */
import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { openSync, closeSync, fdatasyncSync, readFileSync, writeSync } from "node:fs";
import { after, describe, test } from "node:test";
import { VerifyStatusSchema, type VerifyStatus } from "../../target/agent/status-schema.js";
import { verifyRecordFile, loadVerifyRecord } from "../../target/replication/verify-record.js";
import { metadataFiles } from "../../target/store/metadata-files.js";
import { startTargetPair, type PairHandle } from "../support/target-pair.js";
import { qemuIo, qemuIoOk } from "../support/qemu.js";
import type { TargetHandle } from "../support/target-process.js";
import { waitFor } from "../support/processes.js";

const MiB = 1024 * 1024;
const REGION = 256 * 1024;
const pairs: PairHandle[] = [];

after(async () => {
  await Promise.all(pairs.map((p) => p.stop()));
});

async function postVerify(
  t: TargetHandle,
  body: Record<string, unknown>,
): Promise<{ status: number; body: unknown }> {
  const r = await fetch(`http://${t.host}:${t.agentPort}/verify`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: r.status, body: await r.json() };
}

async function getVerify(t: TargetHandle): Promise<VerifyStatus> {
  const r = await fetch(`http://${t.host}:${t.agentPort}/verify`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(r.status, 200);
  return VerifyStatusSchema.parse(await r.json());
}

async function verifyEnded(t: TargetHandle, runId: string, timeoutMs = 120_000): Promise<VerifyStatus> {
  return await waitFor(
    `verify ${runId} ended`,
    async () => {
      const v = await getVerify(t);
      return v.runId === runId && v.state !== "running" ? v : undefined;
    },
    timeoutMs,
    200,
  );
}

/** Writes `bytes` at `offset` straight into a LUN file (not through the target) and fdatasyncs. */
function writeBehindTheTarget(file: string, offset: number, bytes: Buffer): void {
  const fd = openSync(file, "r+");
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function digest(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

describe("online verify of a Working pair", () => {
  let pair: PairHandle;

  test("three regions changed on node b are found, repaired from the sequencer, and a second verify finds none", async () => {
    pair = await startTargetPair({ size: "64Mi" });
    pairs.push(pair);
    await qemuIoOk(pair.a.url(), ["write -P 0x11 0 32M", "write -P 0x22 32M 32M"]);
    assert.notEqual(digest(pair.a.dataFile), "", "data written");

    const regions = [3, 100, 201];
    const flipped = Buffer.alloc(4096, 0xa5);
    for (const r of regions) writeBehindTheTarget(pair.b.dataFile, r * REGION + 8192, flipped);
    // Node b serves reads from its own copy: it returns the changed bytes, so nothing in the
    // target cached the blocks the test changed underneath it.
    await qemuIoOk(pair.b.url(), [`read -P 0xa5 ${3 * REGION + 8192} 4k`]);
    assert.notEqual(digest(pair.a.dataFile), digest(pair.b.dataFile));

    const started = await postVerify(pair.b, { rateBytesPerSecond: 256 * MiB });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const runId = await waitFor(
      "the run reached node b",
      async () => (await getVerify(pair.b)).runId,
      10_000,
      50,
    );
    assert.ok(runId);
    const again = await postVerify(pair.a, {});
    assert.equal(
      again.status,
      409,
      `a second verify while one runs is refused: ${JSON.stringify(again.body)}`,
    );

    const v = await verifyEnded(pair.a, runId);
    assert.equal(v.state, "completed", v.message);
    assert.equal(v.source, "a", "the sequencer's copy is the default source");
    assert.equal(v.bytesChecked, 64 * MiB);
    assert.deepEqual(v.mismatchedRegions, regions);
    assert.equal(v.regionsMismatched, 3);
    assert.equal(v.regionsRepaired, 3);
    assert.equal(
      digest(pair.a.dataFile),
      digest(pair.b.dataFile),
      "both LUN files identical after the repair",
    );
    await qemuIoOk(pair.b.url(), ["read -P 0x11 0 32M", "read -P 0x22 32M 32M"]);
    const vb = await waitFor(
      "node b holds the final record",
      async () => {
        const x = await getVerify(pair.b);
        return x.state === "completed" ? x : undefined;
      },
      10_000,
      100,
    );
    assert.equal(vb.regionsRepaired, 3);
    for (const t of [pair.a, pair.b]) {
      assert.equal((await t.status()).replication?.state, "Working");
      assert.equal((await t.status()).replication?.outOfSyncBytes, 0);
    }
    const metrics = await (await fetch(`http://${pair.a.host}:${pair.a.agentPort}/metrics`)).text();
    assert.match(metrics, /^hasan_target_verify_checked_bytes_total 67108864$/m);
    assert.match(metrics, /^hasan_target_verify_mismatched_regions_total 3$/m);
    assert.match(metrics, /^hasan_target_verify_running 0$/m);

    const second = await postVerify(pair.a, { rateBytesPerSecond: 256 * MiB });
    assert.equal(second.status, 202, JSON.stringify(second.body));
    const v2 = await verifyEnded(pair.a, VerifyStatusSchema.parse(second.body).runId!);
    assert.equal(v2.state, "completed", v2.message);
    assert.equal(v2.regionsMismatched, 0);
    assert.equal(v2.bytesChecked, 64 * MiB);
    assert.match(v2.message, /both copies identical/);
  });

  test("with source b, a region changed on node a (the sequencer) is repaired from node b's copy", async () => {
    const changed = Buffer.alloc(4096, 0x3c);
    writeBehindTheTarget(pair.a.dataFile, 50 * REGION, changed);
    const started = await postVerify(pair.a, { source: "b", rateBytesPerSecond: 256 * MiB });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const v = await verifyEnded(pair.a, VerifyStatusSchema.parse(started.body).runId!);
    assert.equal(v.state, "completed", v.message);
    assert.equal(v.source, "b");
    assert.deepEqual(v.mismatchedRegions, [50]);
    assert.equal(v.regionsRepaired, 1);
    assert.equal(digest(pair.a.dataFile), digest(pair.b.dataFile));
    await qemuIoOk(pair.a.url(), [`read -P 0x11 ${50 * REGION} 256k`]);
  });

  test("POST /verify validates its body", async () => {
    for (const body of [{ source: "c" }, { rateBytesPerSecond: -1 }, { extra: true }]) {
      const r = await postVerify(pair.a, body);
      assert.equal(r.status, 400, JSON.stringify(body));
    }
  });

  test("a pair that is not Working refuses a verify with 503", async () => {
    await pair.b.stop("SIGKILL");
    await pair.waitServingAlone("a");
    const r = await postVerify(pair.a, {});
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.match(JSON.stringify(r.body), /a verify runs while both nodes are Working/);
  });
});

test("the sequencer killed mid-verify: the run resumes from its saved position once the pair is Working", async (t) => {
  const pair = await startTargetPair({ size: "64Mi" });
  pairs.push(pair);
  await qemuIoOk(pair.a.url(), ["write -P 0x44 0 64M"]);
  // 4 MiB/s: the walk takes about 16 s.
  const started = await postVerify(pair.a, { rateBytesPerSecond: 4 * MiB });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  const runId = VerifyStatusSchema.parse(started.body).runId!;
  const recordFile = verifyRecordFile(metadataFiles(pair.a.dataFile).generation);
  const saved = await waitFor(
    "node a saved a position past 12 MiB",
    async () => {
      const r = await loadVerifyRecord(recordFile);
      return r && r.nextOffset >= 12 * MiB ? r : undefined;
    },
    60_000,
    100,
  );
  assert.equal(saved.runId, runId);
  await pair.a.stop("SIGKILL");
  await pair.waitServingAlone("b");
  // Writes while node a is away: they resync before the pair is Working again.
  const w = await qemuIo(pair.b.url(), ["write -P 0x45 1M 1M"]);
  assert.ok(w.ok, w.stdout + w.stderr);
  await pair.a.restart();
  await pair.waitWorking(120_000);

  const v = await verifyEnded(pair.a, runId);
  assert.equal(v.state, "completed", v.message);
  assert.equal(v.runId, runId, "the same run, not a new one");
  assert.equal(v.bytesChecked, 64 * MiB, "each region counted once: the walk went on from its position");
  assert.equal(v.regionsMismatched, 0);
  const log = pair.a.log() + pair.b.log();
  const resumed = /"nextOffset":(\d+)[^\n]*verify resumes from its saved position/.exec(log);
  assert.ok(resumed, "a node logged the resume");
  t.diagnostic(
    `node a saved ${saved.nextOffset} before SIGKILL; the run resumed at ${resumed[1]}; ${v.bytesChecked} bytes checked in all`,
  );
  assert.ok(
    Number(resumed[1]) >= saved.nextOffset - 5 * MiB && Number(resumed[1]) > 0,
    `resumed at ${resumed[1]}`,
  );
});

test("with source b, node b lost after the walk found a mismatch on node a: the region ends with b's copy, not a's", async (t) => {
  const pair = await startTargetPair({ size: "64Mi" });
  pairs.push(pair);
  await qemuIoOk(pair.a.url(), ["write -P 0x51 0 64M"]);
  // Node a (the sequencer, the node that goes on alone below) holds the damaged copy.
  const region = 2;
  writeBehindTheTarget(pair.a.dataFile, region * REGION + 4096, Buffer.alloc(8192, 0xd7));
  // 4 MiB/s: the walk takes about 16 s; node b is lost right after region 2 was found to differ
  // (and, with this version, copied from node b already).
  const started = await postVerify(pair.a, { source: "b", rateBytesPerSecond: 4 * MiB });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  const runId = VerifyStatusSchema.parse(started.body).runId!;
  await waitFor(
    "the walk found the mismatch",
    async () => ((await getVerify(pair.a)).regionsMismatched >= 1 ? true : undefined),
    60_000,
    20,
  );
  await pair.b.stop("SIGKILL");
  await pair.waitServingAlone("a");
  // A write elsewhere while node b is away: node a is the resync's source when b returns.
  await qemuIoOk(pair.a.url(), [`write -P 0x52 ${40 * MiB} 1M`]);
  await pair.b.restart();
  await pair.waitWorking(120_000);

  const v = await verifyEnded(pair.a, runId);
  assert.equal(v.state, "completed", v.message);
  assert.equal(v.source, "b");
  assert.deepEqual(v.mismatchedRegions, [region], "the region, counted once");
  assert.equal(v.regionsRepaired, 1, v.message);
  t.diagnostic(v.message);
  assert.equal(digest(pair.a.dataFile), digest(pair.b.dataFile), "both LUN files identical");
  for (const node of [pair.a, pair.b])
    await qemuIoOk(node.url(), [`read -P 0x51 ${region * REGION} 256k`, `read -P 0x52 ${40 * MiB} 1M`]);
});
