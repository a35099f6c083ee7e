/**
 * The pair's LUN grows live: POST /capacity on either node's agent grows both nodes without a
 * restart, while qemu-io keeps writing; both portals then report the new size (after a CAPACITY
 * DATA HAS CHANGED unit attention), the data written before is intact and the new space is
 * writable on either node and reads back through the other. A node that is down during the
 * growth grows when it returns, and what was written alone in the new space resyncs to it.
 */
import { strict as assert } from "node:assert";
import { after, before, test } from "node:test";
import { startTargetPair, type PairHandle } from "../support/target-pair.js";
import { qemuIo, qemuIoOk } from "../support/qemu.js";
import type { TargetHandle } from "../support/target-process.js";
import { ScsiClient } from "../support/scsi-client.js";
import { waitFor } from "../support/processes.js";

const MiB = 1024 * 1024;
let pair: PairHandle;

before(async () => {
  pair = await startTargetPair({ size: "64Mi" });
});

after(async () => {
  await pair?.stop();
});

async function grow(t: TargetHandle, sizeBytes: number): Promise<{ status: number; body: unknown }> {
  const r = await fetch(`http://${t.host}:${t.agentPort}/capacity`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ sizeBytes }),
    signal: AbortSignal.timeout(60_000),
  });
  return { status: r.status, body: await r.json() };
}

function readCapacity16(): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x9e;
  c[1] = 0x10;
  c.writeUInt32BE(32, 10);
  return c;
}

/** READ CAPACITY(16) through a fresh session: the LUN's size in bytes. */
async function capacityOf(t: TargetHandle, iqn: string): Promise<number> {
  const s = await ScsiClient.open({ port: t.port, iqn, initiator: `iqn.2026-11.dev.hasan:grow-probe` });
  try {
    const r = await s.commandClearingUnitAttention(readCapacity16(), { allocation: 32 });
    assert.equal(r.status, 0, "READ CAPACITY(16) succeeds");
    const lastLba = Number(r.data.readBigUInt64BE(0));
    return (lastLba + 1) * r.data.readUInt32BE(8);
  } finally {
    s.close();
  }
}

/** READ CAPACITY(10): the same size through the 10-byte command. */
async function capacity10Of(t: TargetHandle, iqn: string): Promise<number> {
  const s = await ScsiClient.open({ port: t.port, iqn, initiator: `iqn.2026-11.dev.hasan:grow-probe10` });
  try {
    const r = await s.commandClearingUnitAttention(Buffer.from([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]), {
      allocation: 8,
    });
    assert.equal(r.status, 0);
    return (r.data.readUInt32BE(0) + 1) * r.data.readUInt32BE(4);
  } finally {
    s.close();
  }
}

/** qemu-io writes in a loop through both portals until stopped; every run must succeed. */
function writeLoad(): { stop: () => Promise<{ runs: number; failures: string[] }> } {
  let stopping = false;
  let runs = 0;
  const failures: string[] = [];
  const loop = async (t: TargetHandle, base: number) => {
    for (let i = 0; !stopping; i++) {
      const off = base + (i % 8) * MiB;
      const r = await qemuIo(t.url(), [`write -P 0x${(0x40 + (i % 8)).toString(16)} ${off} 1M`]);
      runs++;
      if (!r.ok) failures.push(`${t.url()} @${off}: ${r.stdout}${r.stderr}`);
    }
  };
  const done = Promise.all([loop(pair.a, 16 * MiB), loop(pair.b, 32 * MiB)]);
  return {
    async stop() {
      stopping = true;
      await done;
      return { runs, failures };
    },
  };
}

test("a Working pair grows under a write load: no restart, both portals report the new size, old data intact, new space writable through either node", async () => {
  await qemuIoOk(pair.a.url(), ["write -P 0x11 0 8M"]);
  const pids = [pair.a.process.pid, pair.b.process.pid];
  // A session logged in before the growth hears of it through a unit attention.
  const watcher = await ScsiClient.open({
    port: pair.a.port,
    iqn: pair.iqn,
    initiator: "iqn.2026-11.dev.hasan:grow-watcher",
  });
  const tur = Buffer.alloc(6);
  assert.equal((await watcher.commandClearingUnitAttention(tur)).status, 0);

  const load = writeLoad();
  await new Promise((r) => setTimeout(r, 1500));
  const started = Date.now();
  // Asked on node b, which forwards it to the sequencer (node a).
  const r = await grow(pair.b, 128 * MiB);
  const tookMs = Date.now() - started;
  await new Promise((r) => setTimeout(r, 1500));
  const { runs, failures } = await load.stop();
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body, {
    ok: true,
    sizeBytes: 128 * MiB,
    grew: true,
    message: `LUN grown to ${128 * MiB} bytes on both nodes`,
  });
  assert.deepEqual(failures, [], `every qemu-io write succeeded (${runs} runs)`);
  assert.ok(runs >= 4, `the load ran during the growth (${runs} runs)`);

  const ua = await watcher.command(tur);
  assert.deepEqual(
    [ua.status, ua.senseKey, ua.asc, ua.ascq],
    [0x02, 0x06, 0x2a, 0x09],
    "CAPACITY DATA HAS CHANGED",
  );
  watcher.close();

  assert.deepEqual([pair.a.process.pid, pair.b.process.pid], pids, "no process restarted");
  assert.equal(pair.a.process.exitCode, null);
  assert.equal(pair.b.process.exitCode, null);
  for (const t of [pair.a, pair.b]) {
    const s = await t.status();
    assert.equal(
      s.replication?.state,
      "Working",
      `${JSON.stringify(s.replication)} (growth took ${tookMs} ms)`,
    );
    assert.equal(s.sizeBytes, 128 * MiB);
    assert.equal(await capacityOf(t, pair.iqn), 128 * MiB);
    assert.equal(await capacity10Of(t, pair.iqn), 128 * MiB);
  }
  // Again: idempotent. Smaller: refused, nothing changes.
  assert.deepEqual((await grow(pair.a, 128 * MiB)).body, {
    ok: true,
    sizeBytes: 128 * MiB,
    grew: false,
    message: `the LUN already holds ${128 * MiB} bytes`,
  });
  const shrink = await grow(pair.a, 64 * MiB);
  assert.equal(shrink.status, 409);
  assert.match(JSON.stringify(shrink.body), /shrinking it to 67108864 would lose data/);

  await qemuIoOk(pair.b.url(), ["read -P 0x11 0 8M"]);
  await qemuIoOk(pair.a.url(), ["write -P 0x33 100M 1M"]);
  await qemuIoOk(pair.b.url(), ["read -P 0x33 100M 1M", "write -P 0x34 120M 8M"]);
  await qemuIoOk(pair.a.url(), ["read -P 0x34 120M 8M"]);
});

test("a node down during the growth grows when it returns; what was written alone in the new space resyncs to it", async () => {
  await pair.b.stop("SIGKILL");
  await pair.waitServingAlone("a");
  const r = await grow(pair.a, 192 * MiB);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.match(JSON.stringify(r.body), /serving alone; the partner grows when it returns/);
  assert.equal(await capacityOf(pair.a, pair.iqn), 192 * MiB);
  await qemuIoOk(pair.a.url(), ["write -P 0x55 160M 4M", "write -P 0x56 8M 1M"]);

  await pair.b.restart().catch(() => undefined);
  await pair.waitWorking(120_000);
  const b = await pair.b.status();
  assert.equal(b.sizeBytes, 192 * MiB);
  assert.equal(await capacityOf(pair.b, pair.iqn), 192 * MiB);
  await qemuIoOk(pair.b.url(), [
    "read -P 0x55 160M 4M",
    "read -P 0x56 8M 1M",
    "read -P 0x11 0 8M",
    "read -P 0x33 100M 1M",
  ]);
  await waitFor(
    "b logged its growth at the handshake",
    async () => /growing the LUN to the partner's size/.test(pair.b.log()),
    5000,
    100,
  );
  // New space past the old end, written through the returned node, reads back through the other.
  await qemuIoOk(pair.b.url(), ["write -P 0x66 180M 2M"]);
  await qemuIoOk(pair.a.url(), ["read -P 0x66 180M 2M"]);
});
