/**
 * A hostile initiator announcing huge writes against a real target process: the target refuses
 * what exceeds its write memory with TASK SET FULL or BUSY, stays within a stated resident memory
 * and serves another session's writes intact meanwhile.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startTarget, type TargetHandle } from "../support/target-process.js";
import { MiB, residentBytes, watchResident } from "../support/process-memory.js";
import { ScsiSession } from "../support/scsi-session.js";
import { TestInitiator, buildPdu, scsiCommandPdu, type Pdu } from "../unit/iscsi/support/initiator.js";

const COMMANDS = 500;
const WRITE_BYTES = 64 * MiB;
const RSS_BUDGET = 300 * MiB;
const BLOCK = 64 * 1024;

const R2T = 0x31;
const SCSI_RESPONSE = 0x21;
const TASK_SET_FULL = 0x28;
const BUSY = 0x08;

function write16(lba: number, bytes: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x8a;
  c.writeBigUInt64BE(BigInt(lba), 2);
  c.writeUInt32BE(bytes / 512, 10);
  return c;
}

async function hostileSession(target: TargetHandle): Promise<TestInitiator> {
  const ini = await TestInitiator.connect(target.port, target.host);
  const r = await ini.login({
    target: target.iqn,
    initiator: "iqn.2026-11.dev.hasan:hostile",
    isid: Buffer.from("400000000bad", "hex"),
    keys: [
      ["ImmediateData", "Yes"],
      ["InitialR2T", "No"],
      ["FirstBurstLength", "16776192"],
      ["MaxBurstLength", "16776192"],
      ["MaxRecvDataSegmentLength", "262144"],
    ],
  });
  assert.equal(r.status, 0, "the hostile initiator logs in like any other");
  return ini;
}

/**
 * Writes and reads back 64 KiB blocks (what the helper client sends as immediate data) on its own
 * session until `until` settles; counts verified blocks.
 */
async function verifiedIo(target: TargetHandle, until: Promise<unknown>): Promise<number> {
  const s = new ScsiSession({
    host: target.host,
    port: () => target.port,
    iqn: target.iqn,
    initiator: "iqn.2026-11.dev.hasan:good",
    isid: "400000000001",
  });
  let done = false;
  void until.finally(() => (done = true));
  let verified = 0;
  try {
    for (let i = 0; !done || verified < 8; i++) {
      const offset = (i % 1024) * BLOCK;
      const data = randomBytes(BLOCK);
      await s.write(offset, data);
      const back = await s.read(offset, BLOCK);
      assert.ok(back.equals(data), `block at ${offset} reads back as written`);
      verified++;
    }
  } finally {
    s.close();
  }
  return verified;
}

/** The answers the hostile initiator got, by ITT: R2T or a SCSI status. */
function tally(pdus: Pdu[]): { r2t: Set<number>; status: Map<number, number> } {
  const r2t = new Set<number>();
  const status = new Map<number, number>();
  for (const p of pdus) {
    if (p.opcode === R2T) r2t.add(p.itt);
    if (p.opcode === SCSI_RESPONSE) status.set(p.itt, p.header[3]!);
  }
  return { r2t, status };
}

async function waitForAnswers(ini: TestInitiator, want: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { r2t, status } = tally(ini.received);
    if (new Set([...r2t, ...status.keys()]).size >= want || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test(`${COMMANDS} immediate 64 MiB WRITE(16)s without data: R2T for what fits in the session's 64 MiB, TASK SET FULL or BUSY for the rest; resident memory stays under 300 MiB and another session's writes read back intact`, async (t) => {
  const target = await startTarget({ size: "128Mi" });
  const rss = watchResident(target.process.pid!);
  try {
    const before = residentBytes(target.process.pid!);
    const ini = await hostileSession(target);
    const flood = (async () => {
      for (let i = 0; i < COMMANDS; i++) {
        // immediate commands all carry the same CmdSN: they do not advance it
        ini.send(
          scsiCommandPdu({
            itt: i + 1,
            cmdSN: ini.cmdSN,
            cdb: write16(0, WRITE_BYTES),
            edtl: WRITE_BYTES,
            write: true,
            immediate: true,
          }),
        );
      }
      await waitForAnswers(ini, COMMANDS, 30_000);
    })();
    const verified = await verifiedIo(target, flood);
    await flood;
    const peak = rss.stop();
    t.diagnostic(
      `resident ${(before / MiB).toFixed(0)} MiB before, peak ${(peak / MiB).toFixed(0)} MiB; ${verified} blocks of 64 KiB verified`,
    );
    assert.equal(target.process.exitCode, null, "the target is still running");
    const { r2t, status } = tally(ini.received);
    const answered = new Set([...r2t, ...status.keys()]);
    assert.equal(answered.size, COMMANDS, "every command got an answer: R2T or a status");
    assert.ok(r2t.size >= 1 && r2t.size * WRITE_BYTES <= 64 * MiB, `R2T only within 64 MiB (${r2t.size})`);
    for (const [itt, s] of status) assert.ok(s === TASK_SET_FULL || s === BUSY, `ITT ${itt}: status ${s}`);
    assert.ok(peak < RSS_BUDGET, `peak resident ${(peak / MiB).toFixed(0)} MiB`);
    ini.close();
  } finally {
    rss.stop();
    await target.stop();
  }
});

test(`${COMMANDS} immediate 64 MiB WRITE(16)s each followed by 1 MiB of unsolicited data: TASK SET FULL or BUSY beyond the session's 64 MiB; resident memory stays under 300 MiB and another session's writes read back intact`, async (t) => {
  const target = await startTarget({ size: "128Mi" });
  const rss = watchResident(target.process.pid!);
  try {
    const before = residentBytes(target.process.pid!);
    const ini = await hostileSession(target);
    const segment = 256 * 1024;
    const payload = randomBytes(segment);
    const flood = (async () => {
      for (let i = 0; i < COMMANDS; i++) {
        const itt = i + 1;
        // not final: unsolicited Data-Out follows, the first piece as immediate data
        ini.send(
          scsiCommandPdu({
            itt,
            cmdSN: ini.cmdSN,
            cdb: write16(0, WRITE_BYTES),
            edtl: WRITE_BYTES,
            write: true,
            final: false,
            immediate: true,
            data: payload,
          }),
        );
        for (let k = 1; k < 4; k++) {
          ini.send(
            buildPdu({
              opcode: 0x05,
              flags: 0,
              itt,
              word20: 0xffffffff,
              expStatSN: ini.expStatSN,
              word36: k - 1,
              word40: k * segment,
              data: payload,
            }),
          );
        }
        // let the socket drain now and then rather than queue 500 MiB in this process
        if (i % 16 === 15) await new Promise((r) => setImmediate(r));
      }
      // the one that fits waits for the rest of its data: no answer for it
      await waitForAnswers(ini, COMMANDS - 1, 30_000);
    })();
    const verified = await verifiedIo(target, flood);
    await flood;
    const peak = rss.stop();
    t.diagnostic(
      `resident ${(before / MiB).toFixed(0)} MiB before, peak ${(peak / MiB).toFixed(0)} MiB; ${verified} blocks of 64 KiB verified`,
    );
    assert.equal(target.process.exitCode, null, "the target is still running");
    const { status } = tally(ini.received);
    assert.ok(status.size >= COMMANDS - 1, `refusals: ${status.size}`);
    for (const [itt, s] of status) assert.ok(s === TASK_SET_FULL || s === BUSY, `ITT ${itt}: status ${s}`);
    assert.ok(peak < RSS_BUDGET, `peak resident ${(peak / MiB).toFixed(0)} MiB`);
    ini.close();
  } finally {
    rss.stop();
    await target.stop();
  }
});
