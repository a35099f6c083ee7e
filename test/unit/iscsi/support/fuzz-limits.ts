/**
 * Seeded hostile clients against a live server with small limits: half-open logins with oversized
 * login PDUs, bursts of connections from a few addresses, floods of WRITEs (immediate or not, in and
 * far beyond the CmdSN window) that announce megabytes and send part of the data or none, abrupt
 * closes. Meanwhile good clients write and read back. Checked throughout: the target never holds
 * more write memory or connections than its limits; checked at the end: every reservation and every
 * connection slot has been given back (no leak), and the good clients' data is intact.
 */
import assert from "node:assert/strict";
import { Rng } from "./fuzz.js";
import { TestInitiator, loginPdu, read10, scsiCommandPdu, write10, type Pdu } from "./initiator.js";
import { TARGET, startTestServer } from "./server.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const LIMITS = {
  writeMemory: { target: 8 * MiB, session: 2 * MiB },
  connectionLimits: { total: 40, perSource: 16 },
  loginTimeoutMs: 400,
  dataOutTimeoutMs: 600,
  commandWindow: 16,
  authFailureDelayMs: 0,
};
/** Four source addresses on loopback. */
const SOURCES = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"];
const DISK_BYTES = 64 * MiB;
/** Hostile writes start below this LBA (and reach at most 65535 blocks further)... */
const HOSTILE_LBAS = 50_000;
/** ...so they never touch the good clients' regions, from this LBA on. */
const GOOD_LBA = 120_000;
const GOOD_STATUS_RETRY = new Set([0x08, 0x28]); // BUSY, TASK SET FULL: retried by a good client

export interface LimitsFuzzResult {
  actors: number;
  /** hostile connections the target closed itself (limits, timeouts, protocol errors) */
  closedByTarget: number;
  peakWriteMemory: number;
  /** reservations the target's limit refused (answered BUSY) */
  writeMemoryRefusals: number;
  peakConnections: number;
  goodWrites: number;
  retriedWrites: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function connectOrRefused(port: number, source: string): Promise<TestInitiator | undefined> {
  try {
    return await TestInitiator.connect(port, "127.0.0.1", source);
  } catch {
    return undefined;
  }
}

const isid = (n: number) => Buffer.from(`4000${(n & 0xffffffff).toString(16).padStart(8, "0")}`, "hex");

/** A login PDU header that announces `announced` bytes of data, followed by `sent` of them. */
function halfLogin(rng: Rng, c: TestInitiator): void {
  const announced = rng.pick([8 * KiB, 9 * KiB, 64 * KiB, 255 * KiB]);
  const full = loginPdu({
    keys: [["InitiatorName", "iqn.2026-11.dev.hasan:half"]],
    csg: 1,
    nsg: 3,
    transit: true,
  });
  const header = Buffer.from(full.subarray(0, 48));
  header.writeUIntBE(announced, 5, 3);
  c.socket.write(header);
  c.socket.write(rng.bytes(Math.min(announced, rng.int(64 * KiB))));
}

/** Announces writes without (all of) their data; some immediate, some out of the window. */
function writeFlood(rng: Rng, c: TestInitiator): void {
  const n = 1 + rng.int(60);
  for (let i = 0; i < n; i++) {
    const blocks = rng.pick([8, 2048, 4096, 8192, 65535]);
    const immediate = rng.chance(0.5);
    const ahead = rng.chance(0.1) ? 1000 + rng.int(1000) : 0;
    const data = rng.chance(0.3) ? rng.bytes(rng.int(8 * KiB)) : undefined;
    c.send(
      scsiCommandPdu({
        itt: 0x1000 + i,
        cmdSN: c.cmdSN + ahead,
        cdb: write10(rng.int(HOSTILE_LBAS), blocks),
        edtl: blocks * 512,
        write: true,
        immediate,
        final: !data || rng.chance(0.5),
        data,
      }),
    );
    if (!immediate && ahead === 0) c.cmdSN++;
    if (rng.chance(0.2)) {
      // part of a Data-Out sequence for an earlier command, maybe for a transfer never asked for
      c.send({
        opcode: 0x05,
        flags: rng.chance(0.5) ? 0x80 : 0,
        itt: 0x1000 + rng.int(i + 1),
        word20: rng.int(8),
        word36: 0,
        word40: rng.int(64) * 512,
        data: rng.bytes(512 * (1 + rng.int(16))),
      });
    }
  }
}

/** One hostile actor: connects from a random source and misbehaves in one of a few ways. */
async function hostile(
  rng: Rng,
  port: number,
  id: number,
  stats: { refused: number; closedByTarget: number },
): Promise<void> {
  const c = await connectOrRefused(port, rng.pick(SOURCES));
  if (!c) {
    stats.refused++;
    return;
  }
  try {
    const kind = rng.int(4);
    if (kind === 0) {
      halfLogin(rng, c);
    } else if (kind === 1) {
      c.socket.write(rng.bytes(rng.int(4 * KiB)));
    } else {
      const r = await c.login({ target: TARGET, isid: isid(id) }).catch(() => undefined);
      if (r?.status !== 0) return;
      writeFlood(rng, c);
    }
    // stay a while (holding what was taken), then either vanish or wait to be dropped
    await sleep(rng.int(800));
    if (c.closed) stats.closedByTarget++;
    else if (rng.chance(0.5)) c.close();
    else await c.waitClosed(LIMITS.loginTimeoutMs + LIMITS.dataOutTimeoutMs + 500).catch(() => undefined);
  } finally {
    c.close();
  }
}

async function command(
  c: TestInitiator,
  itt: number,
  cdb: Buffer,
  edtl: number,
  data?: Buffer,
): Promise<Pdu[]> {
  c.send(scsiCommandPdu({ itt, cmdSN: c.cmdSN++, cdb, edtl, read: !data, write: !!data, data }));
  const out: Pdu[] = [];
  for (;;) {
    const p = await c.next((x) => x.itt === itt && (x.opcode === 0x21 || x.opcode === 0x25), 20_000);
    out.push(p);
    if (p.opcode === 0x21 || (p.opcode === 0x25 && (p.flags & 0x81) === 0x81)) return out;
  }
}

/** A well-behaved client: writes 4 KiB blocks with immediate data and reads each back. */
async function good(
  rng: Rng,
  port: number,
  id: number,
  region: number,
  written: Map<number, Buffer>,
  counts: { writes: number; retries: number },
): Promise<void> {
  // While hostile clients hold every slot the target may close a new connection at once (a
  // logged-in one never gives way to it): a client retries.
  let c: TestInitiator | undefined;
  for (let attempt = 0; !c; attempt++) {
    assert.ok(attempt < 200, "a good client could not log in for 10 s");
    const conn = await connectOrRefused(port, "127.0.0.9");
    const r = await conn
      ?.login({ target: TARGET, isid: isid(0x7f000000 + id), keys: [["ImmediateData", "Yes"]] })
      .catch(() => undefined);
    if (conn && r?.status === 0) c = conn;
    else {
      conn?.close();
      await sleep(50);
    }
  }
  try {
    for (let i = 0; i < 4; i++) {
      const lba = region + i * 8;
      const data = rng.bytes(4096);
      for (let attempt = 0; ; attempt++) {
        const [resp] = await command(c, 1 + i * 2, write10(lba, 8), 4096, data);
        const status = resp!.header[3]!;
        if (status === 0) break;
        assert.ok(GOOD_STATUS_RETRY.has(status), `write status 0x${status.toString(16)}`);
        assert.ok(attempt < 100, "a good write was refused 100 times");
        counts.retries++;
        await sleep(20);
      }
      written.set(lba, data);
      counts.writes++;
      const pdus = await command(c, 2 + i * 2, read10(lba, 8), 4096);
      const back = Buffer.concat(pdus.filter((p) => p.opcode === 0x25).map((p) => p.data));
      assert.deepEqual(back, data, `good client ${id} reads back what it wrote at LBA ${lba}`);
    }
  } finally {
    c.close();
  }
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    assert.ok(Date.now() < deadline, what);
    await sleep(20);
  }
}

export async function fuzzLimits(
  seed: number,
  rounds: number,
  actorsPerRound: number,
): Promise<LimitsFuzzResult> {
  const rng = new Rng(seed);
  const t = await startTestServer(LIMITS, DISK_BYTES);
  const wm = t.server.writeMemory;
  const result: LimitsFuzzResult = {
    actors: 0,
    closedByTarget: 0,
    peakWriteMemory: 0,
    writeMemoryRefusals: 0,
    peakConnections: 0,
    goodWrites: 0,
    retriedWrites: 0,
  };
  // every reservation is seen (not sampled): the peak is exact, and so is the count of refusals
  const take = wm.take.bind(wm);
  wm.take = (bytes: number): boolean => {
    const ok = take(bytes);
    if (ok) result.peakWriteMemory = Math.max(result.peakWriteMemory, wm.inUse);
    else result.writeMemoryRefusals++;
    return ok;
  };
  const sampler = setInterval(() => {
    result.peakConnections = Math.max(result.peakConnections, t.server.connectionCount);
  }, 1);
  const written = new Map<number, Buffer>();
  const stats = { refused: 0, closedByTarget: 0 };
  const counts = { writes: 0, retries: 0 };
  try {
    for (let round = 0; round < rounds; round++) {
      const actors: Promise<void>[] = [];
      const n = 1 + rng.int(actorsPerRound);
      for (let i = 0; i < n; i++)
        actors.push(hostile(new Rng(rng.int(2 ** 31)), t.port, round * 1000 + i, stats));
      // good clients write to regions of their own, which hostile writes never reach
      for (let g = 0; g < 2; g++) {
        const region = GOOD_LBA + ((round * 2 + g) % 64) * 32;
        actors.push(good(new Rng(rng.int(2 ** 31)), t.port, round * 2 + g, region, written, counts));
      }
      result.actors += n;
      await Promise.all(actors);
    }
    // every connection and every byte of write memory comes back once the clients are gone
    await until(
      () => t.server.connectionCount === 0,
      5000,
      `connections still held: ${t.server.connectionCount}`,
    );
    await until(() => wm.inUse === 0, 5000, `write memory still reserved: ${wm.inUse} bytes`);
    // what good clients wrote last in each region is on the disk
    for (const [lba, data] of written)
      assert.deepEqual(t.scsi.disk.subarray(lba * 512, lba * 512 + 4096), data);
  } finally {
    clearInterval(sampler);
    await t.close();
  }
  assert.ok(
    result.peakWriteMemory <= LIMITS.writeMemory.target,
    `write memory peaked at ${result.peakWriteMemory}`,
  );
  assert.ok(
    result.peakConnections <= LIMITS.connectionLimits.total,
    `connections peaked at ${result.peakConnections}`,
  );
  result.closedByTarget = stats.closedByTarget;
  result.goodWrites = counts.writes;
  result.retriedWrites = counts.retries;
  return result;
}
