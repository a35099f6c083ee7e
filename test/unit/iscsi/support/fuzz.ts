/**
 * Seeded fuzzing of the PDU framing, the text parser, the login state machine and a live
 * server. Used by fuzz.test.ts (a few thousand cases) and by `make fuzz` (many more).
 */
import assert from "node:assert/strict";
import { crc32c } from "@node-rs/crc32";
import { PduReader, type PduConsumer } from "../../../../target/iscsi/framing.js";
import {
  initialLoginState,
  loginStep,
  LoginStatus,
  type LoginConfig,
  type LoginState,
} from "../../../../target/iscsi/login.js";
import { defaultTargetPolicy } from "../../../../target/iscsi/negotiation.js";
import { dataSegmentLength, parseAhs, totalAhsLength } from "../../../../target/iscsi/pdu.js";
import {
  parseKeyValues,
  TextParseError,
  encodeKeyValues,
  type KeyValues,
} from "../../../../target/iscsi/text-keys.js";
import { TestInitiator, buildPdu, read10, scsiCommandPdu, write10 } from "./initiator.js";
import { TARGET, startTestServer } from "./server.js";

/** mulberry32: small, fast, good enough to drive a fuzzer reproducibly. */
export class Rng {
  constructor(private s: number) {}
  next(): number {
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

const KEYS = [
  "InitiatorName",
  "TargetName",
  "SessionType",
  "AuthMethod",
  "CHAP_A",
  "CHAP_I",
  "CHAP_C",
  "CHAP_N",
  "CHAP_R",
  "HeaderDigest",
  "DataDigest",
  "MaxRecvDataSegmentLength",
  "MaxBurstLength",
  "FirstBurstLength",
  "InitialR2T",
  "ImmediateData",
  "MaxOutstandingR2T",
  "ErrorRecoveryLevel",
  "DefaultTime2Wait",
  "DefaultTime2Retain",
  "MaxConnections",
  "DataPDUInOrder",
  "DataSequenceInOrder",
  "IFMarker",
  "OFMarker",
  "TargetAlias",
  "TargetPortalGroupTag",
  "X-foo",
  "SendTargets",
  "iSCSIProtocolLevel",
  "TaskReporting",
];
const VALUES = [
  "",
  "None",
  "CHAP",
  "CHAP,None",
  "None,CHAP",
  "5",
  "56,5",
  "7",
  "0",
  "1",
  "512",
  "65536",
  "16777215",
  "16777216",
  "Yes",
  "No",
  "CRC32C",
  "CRC32C,None",
  "Normal",
  "Discovery",
  "0x1234",
  "0bAAEC",
  "Reject",
  "NotUnderstood",
  "Irrelevant",
  "All",
  TARGET,
  "iqn.2026-11.dev.hasan:fuzz",
  "-1",
  "99999999999",
  "\u00ff\u00fe",
];

export function randomKeys(rng: Rng): KeyValues {
  const n = rng.int(6);
  const seen = new Set<string>();
  const out: KeyValues = [];
  for (let i = 0; i < n; i++) {
    const k = rng.pick(KEYS);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push([
      k,
      rng.chance(0.1) ? rng.bytes(rng.int(20)).toString("latin1").replace(/\0/g, "") : rng.pick(VALUES),
    ]);
  }
  return out;
}

class Checker implements PduConsumer {
  count = 0;
  dead = false;
  dataDestination(_h: Buffer, length: number): Buffer | undefined {
    return length % 3 === 0 ? Buffer.alloc(length) : undefined;
  }
  pdu(h: Buffer, data: Buffer): void {
    assert.ok(!this.dead, "no PDU after a fatal error");
    assert.ok(h.length >= 48);
    assert.equal(h.length, 48 + totalAhsLength(h));
    assert.equal(data.length, dataSegmentLength(h));
    parseAhs(h.subarray(48));
    try {
      parseKeyValues(data);
    } catch (e) {
      assert.ok(e instanceof TextParseError, String(e));
    }
    this.count++;
  }
  dataDigestError(): void {}
  fatal(): void {
    this.dead = true;
  }
}

/** Random byte changes in the header, mostly sparing the length fields so the stream stays in step. */
function mutateHeader(rng: Rng, h: Buffer): void {
  const flips = rng.int(4);
  for (let i = 0; i < flips; i++) {
    const at = rng.int(h.length);
    if (at >= 4 && at < 8 && rng.chance(0.95)) continue;
    h[at] = rng.int(256);
  }
}

function withDigests(rng: Rng, h: Buffer, data: Buffer, digests: { header: boolean; data: boolean }): Buffer {
  const parts = [h];
  if (digests.header) {
    const d = Buffer.alloc(4);
    d.writeUInt32LE(crc32c(h) >>> 0);
    if (rng.chance(0.02)) d[0]! ^= 1;
    parts.push(d);
  }
  const dsl = dataSegmentLength(h);
  const body = Buffer.alloc(dsl + ((4 - (dsl % 4)) % 4));
  data.copy(body, 0, 0, Math.min(dsl, data.length));
  if (dsl) {
    parts.push(body);
    if (digests.data) {
      const d = Buffer.alloc(4);
      d.writeUInt32LE(crc32c(body) >>> 0);
      if (rng.chance(0.05)) d[0]! ^= 1;
      parts.push(d);
    }
  }
  return Buffer.concat(parts);
}

export function randomPduBytes(rng: Rng, digests: { header: boolean; data: boolean }): Buffer {
  if (rng.chance(0.01)) return rng.bytes(rng.int(200));
  const data = rng.chance(0.5)
    ? rng.chance(0.5)
      ? encodeKeyValues(randomKeys(rng))
      : rng.bytes(rng.int(3000))
    : Buffer.alloc(0);
  const ahsWords = rng.chance(0.1) ? rng.int(4) : 0;
  const raw = buildPdu({
    // logouts end the session; keep them rare so the fuzzer gets deep into full feature phase
    opcode: rng.chance(0.04) ? rng.pick([3, 6, rng.int(64)]) : rng.pick([0, 1, 2, 4, 5, 5, 5, 0x10]),
    immediate: rng.chance(0.5),
    flags: rng.int(256),
    itt: rng.int(8),
    word20: rng.pick([0xffffffff, 0, rng.int(1 << 20)]),
    cmdSN: rng.int(16),
    word36: rng.int(4),
    word40: rng.pick([0, 512, rng.int(1 << 16)]),
    ahs: ahsWords ? rng.bytes(ahsWords * 4) : undefined,
    data,
  });
  const h = Buffer.from(raw.subarray(0, 48 + ahsWords * 4));
  mutateHeader(rng, h);
  return withDigests(rng, h, data, digests);
}

/** Feeds random and mutated PDU streams through the framer in random cuts. */
export function fuzzFraming(seed: number, cases: number): number {
  const rng = new Rng(seed);
  let pdus = 0;
  for (let c = 0; c < cases; c++) {
    const digests = { header: rng.chance(0.3), data: rng.chance(0.3) };
    const stream = Buffer.concat(Array.from({ length: 1 + rng.int(5) }, () => randomPduBytes(rng, digests)));
    const checker = new Checker();
    const reader = new PduReader(checker, 1 + rng.int(9000));
    reader.headerDigest = digests.header;
    reader.dataDigest = digests.data;
    for (let p = 0; p < stream.length;) {
      const n = 1 + rng.int(rng.chance(0.5) ? 64 : 4096);
      reader.push(stream.subarray(p, p + n));
      p += n;
    }
    pdus += checker.count;
  }
  return pdus;
}

const STATUSES = new Set<number>(Object.values(LoginStatus));

/**
 * Random login conversations. Whatever the initiator sends, the state machine never throws,
 * fails only with a defined status, and never completes a CHAP login without the secret.
 */
export function fuzzLogin(seed: number, cases: number): { completed: number; failed: number } {
  const rng = new Rng(seed);
  const cfg: LoginConfig = {
    targetName: TARGET,
    portalGroupTag: 1,
    allowedInitiators: [],
    policy: defaultTargetPolicy(),
    random: (n) => rng.bytes(n),
  };
  const chapCfg: LoginConfig = { ...cfg, chap: { initiator: { user: "u", secret: "secret-secret" } } };
  let completed = 0;
  let failed = 0;
  for (let c = 0; c < cases; c++) {
    const useChap = rng.chance(0.5);
    let s: LoginState = initialLoginState();
    for (let step = 0; step < 6; step++) {
      const keys = randomKeys(rng);
      if (step === 0 && rng.chance(0.7)) {
        keys.unshift(["InitiatorName", "iqn.2026-11.dev.hasan:fuzz"]);
        if (rng.chance(0.8)) keys.push(["TargetName", TARGET]);
      }
      const dedup = [...new Map(keys).entries()];
      const outcome = loginStep(
        s,
        {
          transit: rng.chance(0.6),
          csg: rng.pick([0, 1, 1, 3, 2]),
          nsg: rng.pick([0, 1, 3, 3, 2]),
          versionMax: rng.chance(0.9) ? 0 : rng.int(256),
          versionMin: rng.chance(0.9) ? 0 : rng.int(256),
          isid: "400000000001",
          tsih: 0,
          cid: 0,
          keys: dedup,
        },
        useChap ? chapCfg : cfg,
      );
      if (outcome.kind === "fail") {
        assert.ok(STATUSES.has(outcome.status), `status 0x${outcome.status.toString(16)}`);
        failed++;
        break;
      }
      if (outcome.kind === "complete") {
        if (useChap)
          assert.ok(
            outcome.state.authenticated && outcome.state.chap.step === "done",
            "CHAP login completed without the secret",
          );
        completed++;
        break;
      }
      s = outcome.state;
    }
  }
  return { completed, failed };
}

/**
 * Random PDUs against a live server after a valid login. The server must stay up, keep serving
 * other sessions correctly, and keep a guarded region of the disk intact.
 */
export async function fuzzServer(
  seed: number,
  connections: number,
  pdusPerConnection: number,
): Promise<void> {
  const rng = new Rng(seed);
  const t = await startTestServer({ nopIntervalMs: 60_000 }, 4 * 1024 * 1024);
  try {
    const guard = Buffer.alloc(4096);
    for (let i = 0; i < guard.length; i++) guard[i] = (i * 31) & 0xff;
    // the fuzzed sessions write only with garbage CDBs aimed anywhere; keep a known pattern where
    // a separate session verifies it at the end (LBA 8000..8007 of 8192)
    const guardOffset = 8000 * 512;
    guard.copy(t.scsi.disk, guardOffset);
    for (let c = 0; c < connections; c++) {
      const ini = await TestInitiator.connect(t.port);
      const digests = { header: rng.chance(0.3), data: rng.chance(0.3) };
      const keys: KeyValues = [];
      if (digests.header) keys.push(["HeaderDigest", "CRC32C"]);
      if (digests.data) keys.push(["DataDigest", "CRC32C"]);
      keys.push(
        ["InitialR2T", rng.pick(["Yes", "No"])],
        ["MaxBurstLength", rng.pick(["512", "4096", "262144"])],
      );
      const r = await ini.login({
        target: TARGET,
        keys,
        isid: Buffer.from(`40000000${(c & 0xff).toString(16).padStart(2, "0")}01`, "hex"),
      });
      assert.equal(r.status, 0);
      ini.digests = digests;
      ini.reader.headerDigest = digests.header;
      ini.reader.dataDigest = digests.data;
      for (let i = 0; i < pdusPerConnection && !ini.closed; i++) {
        if (rng.chance(0.3)) {
          // a plausible command with random lengths
          const lba = rng.int(7000);
          const blocks = rng.int(9);
          const write = rng.chance(0.5);
          ini.send(
            scsiCommandPdu({
              itt: rng.int(16),
              cmdSN: ini.cmdSN + rng.int(3) - 1,
              cdb: write ? write10(lba, blocks) : read10(lba, blocks),
              edtl: rng.pick([0, blocks * 512, rng.int(10000)]),
              read: !write,
              write,
              final: rng.chance(0.7),
              data: write && rng.chance(0.5) ? rng.bytes(rng.int(2048)) : undefined,
            }),
          );
          if (rng.chance(0.5)) ini.cmdSN++;
        } else {
          ini.socket.write(randomPduBytes(rng, digests));
        }
        await new Promise((r) => setImmediate(r));
      }
      ini.close();
    }
    // the server still serves a clean session and the guarded region is intact
    const check = await TestInitiator.connect(t.port);
    const r = await check.login({ target: TARGET, isid: Buffer.from("4000000000ff", "hex") });
    assert.equal(r.status, 0);
    check.send(scsiCommandPdu({ itt: 1, cmdSN: check.cmdSN, cdb: read10(8000, 8), edtl: 4096, read: true }));
    const chunks: Buffer[] = [];
    for (;;) {
      const p = await check.next((x) => x.itt === 1 && (x.opcode === 0x25 || x.opcode === 0x21));
      if (p.opcode === 0x25) chunks.push(p.data);
      if (p.opcode === 0x21 || (p.flags & 1) !== 0) break;
    }
    assert.deepEqual(Buffer.concat(chunks), guard);
    check.close();
  } finally {
    await t.close();
  }
}
