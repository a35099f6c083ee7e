import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { run } from "../support/processes.js";
import { qemuIo, qemuIoOk } from "../support/qemu.js";
import { startTargetPair } from "../support/target-pair.js";
import { ScsiClient, cdbs, parsePortGroups } from "../support/scsi-client.js";

const sha = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

test("a Working pair serves one device through both portals", { timeout: 300_000 }, async (t) => {
  const pair = await startTargetPair({ size: "64Mi" });
  t.after(() => pair.stop());

  await t.test("both portals report one identity: same NAA id and serial", async () => {
    const inq = async (url: string, page: number) =>
      (await run("iscsi-inq", ["-e", "1", "-c", String(page), url])).stdout;
    // iscsi-inq prints the binary NAA bytes raw: they may contain a newline or a bracket.
    const naa = (s: string) =>
      /Designator Type:\(3\) NAA\nDesignator:\[([\s\S]*?)\]\s*(?:\nDEVICE DESIGNATOR|$)/.exec(s)?.[1];
    const va = await inq(pair.a.url(), 0x83);
    assert.ok(naa(va), `no NAA designator in:\n${va}`);
    assert.equal(naa(va), naa(await inq(pair.b.url(), 0x83)));
    const serial = (s: string) => /Unit Serial Number:\[(.+)\]/.exec(s)?.[1];
    const sa = serial(await inq(pair.a.url(), 0x80));
    assert.ok(sa);
    assert.equal(sa, serial(await inq(pair.b.url(), 0x80)));
  });

  await t.test(
    "REPORT TARGET PORT GROUPS: group 1 (a) active/optimized, group 2 (b) active/non-optimized",
    async () => {
      for (const node of [pair.a, pair.b]) {
        const c = await ScsiClient.open({
          port: node.port,
          iqn: pair.iqn,
          initiator: "iqn.2026-11.dev.hasan:rtpg",
        });
        try {
          const r = await c.commandClearingUnitAttention(cdbs.reportTargetPortGroups(), { allocation: 1024 });
          assert.equal(r.status, 0);
          const groups = parsePortGroups(r.data).sort((x, y) => x.id - y.id);
          assert.deepEqual(groups, [
            { id: 1, state: 0, ports: [1] },
            { id: 2, state: 1, ports: [2] },
          ]);
        } finally {
          c.close();
        }
      }
    },
  );

  await t.test(
    "a persistent reservation taken through node a is seen and enforced through node b",
    async () => {
      const holder = await ScsiClient.open({
        port: pair.a.port,
        iqn: pair.iqn,
        initiator: "iqn.2026-11.dev.hasan:holder",
      });
      const other = await ScsiClient.open({
        port: pair.b.port,
        iqn: pair.iqn,
        initiator: "iqn.2026-11.dev.hasan:other",
      });
      try {
        await holder.commandClearingUnitAttention(cdbs.testUnitReady());
        await other.commandClearingUnitAttention(cdbs.testUnitReady());
        const key = 0x1234abcdn;
        const reg = await holder.command(cdbs.persistentReserveOut(0x00, 0), {
          dataOut: cdbs.prOutParams(0n, key),
        });
        assert.equal(reg.status, 0, "REGISTER through a");
        // Write Exclusive (type 1) held by the initiator on node a.
        const res = await holder.command(cdbs.persistentReserveOut(0x01, 0x01), {
          dataOut: cdbs.prOutParams(key, 0n),
        });
        assert.equal(res.status, 0, "RESERVE through a");
        const keys = await other.command(cdbs.persistentReserveIn(0x00), { allocation: 1024 });
        assert.equal(keys.status, 0);
        assert.equal(keys.data.readUInt32BE(4), 8, "one key registered");
        assert.equal(keys.data.readBigUInt64BE(8), key);
        const w = await other.command(cdbs.write10(0, 1), { dataOut: Buffer.alloc(512, 0xee) });
        assert.equal(w.status, 0x18, "a write from a non-holder through node b is a RESERVATION CONFLICT");
        const rel = await holder.command(cdbs.persistentReserveOut(0x02, 0x01), {
          dataOut: cdbs.prOutParams(key, 0n),
        });
        assert.equal(rel.status, 0, "RELEASE through a");
        const unreg = await holder.command(cdbs.persistentReserveOut(0x00, 0), {
          dataOut: cdbs.prOutParams(key, 0n),
        });
        assert.equal(unreg.status, 0, "unregister through a");
        const w2 = await other.commandClearingUnitAttention(cdbs.write10(0, 1), {
          dataOut: Buffer.alloc(512, 0xee),
        });
        assert.equal(w2.status, 0, "the write goes through once the reservation is gone");
      } finally {
        holder.close();
        other.close();
      }
    },
  );

  await t.test("a write through either portal reads back through the other", async () => {
    await qemuIoOk(pair.a.url(), ["write -P 0xa1 0 2M"]);
    await qemuIoOk(pair.b.url(), ["read -P 0xa1 0 2M", "write -P 0xb1 4M 2M"]);
    await qemuIoOk(pair.a.url(), ["read -P 0xb1 4M 2M"]);
  });

  await t.test("overlapping writes arriving on both portals at once never diverge", async () => {
    const base = 16 << 20;
    const pieces = 128;
    // Each client rewrites the same 8 MiB with its own pattern in 64 KiB pieces, six times over.
    const load = (url: string, p: number) =>
      qemuIo(url, [
        ...Array.from(
          { length: 6 * pieces },
          (_, i) => `aio_write -P ${p} ${base + (i % pieces) * 65536} 64k`,
        ),
        "aio_flush",
      ]);
    const [ra, rb] = await Promise.all([load(pair.a.url(), 0xc1), load(pair.b.url(), 0xc2)]);
    assert.equal(ra.code, 0, ra.stderr);
    assert.equal(rb.code, 0, rb.stderr);
    // Every 64 KiB piece holds one writer's pattern, whole, and both portals see the same.
    const readPieces = async (url: string) => {
      const out: number[] = [];
      for (let i = 0; i < pieces; i++) {
        const off = base + i * 65536;
        if ((await qemuIo(url, [`read -P 0xc1 ${off} 64k`])).ok) out.push(0xc1);
        else if ((await qemuIo(url, [`read -P 0xc2 ${off} 64k`])).ok) out.push(0xc2);
        else out.push(-1);
      }
      return out;
    };
    const seenA = await readPieces(pair.a.url());
    assert.ok(!seenA.includes(-1), "no piece mixes both patterns");
    assert.deepEqual(seenA, await readPieces(pair.b.url()));
  });

  await t.test("the two LUN files are byte-identical", async () => {
    assert.equal(sha(pair.a.dataFile), sha(pair.b.dataFile));
  });
});

test(
  "when the partner dies, the survivor goes on alone and resync copies only what changed",
  { timeout: 300_000 },
  async (t) => {
    const pair = await startTargetPair({ size: "128Mi" });
    t.after(() => pair.stop());
    await qemuIoOk(pair.a.url(), ["write -P 0x11 0 16M"]);
    // Regions written in the last moments before a failure are resynced as well (like DRBD's
    // activity log: the partner may not have them durably). Let them age out (1.5 s idle) so the
    // count below is only what was written while the partner was down.
    await new Promise((r) => setTimeout(r, 3000));
    await pair.b.stop("SIGKILL");
    await pair.waitServingAlone("a");
    const changed = 8 << 20;
    await qemuIoOk(pair.a.url(), [`write -P 0x22 32M ${changed}`, "write -P 0x33 100M 4k"]);
    const before = (await pair.a.status()).replication;
    assert.ok(before && before.outOfSyncBytes >= changed, `out of sync ${before?.outOfSyncBytes}`);
    await pair.b.restart();
    await pair.waitWorking(60_000);
    const after = (await pair.a.status()).replication;
    assert.ok(after);
    const region = 256 * 1024;
    // At most 1.1 × the changed data plus one region per dirty region (two writes: a few regions of slack).
    assert.ok(
      after.stats.resyncedBytes <= 1.1 * (changed + 4096) + 4 * region,
      `resynced ${after.stats.resyncedBytes} bytes for ${changed + 4096} changed`,
    );
    assert.ok(after.stats.resyncedBytes >= changed, "the changed data was copied");
    await qemuIoOk(pair.b.url(), [
      "read -P 0x11 0 16M",
      `read -P 0x22 32M ${changed}`,
      "read -P 0x33 100M 4k",
    ]);
    assert.equal(sha(pair.a.dataFile), sha(pair.b.dataFile));
  },
);
