import { test } from "node:test";
import assert from "node:assert/strict";
import { SessionInfoSchema } from "../../../target/agent/status-schema.js";
import { encodeKeyValues, parseKeyValues } from "../../../target/iscsi/text-keys.js";
import {
  TestInitiator,
  buildPdu,
  loginPdu,
  read10,
  scsiCommandPdu,
  write10,
  type Pdu,
} from "./support/initiator.js";
import { TARGET, startTestServer } from "./support/server.js";

const isResponse = (itt: number) => (p: Pdu) =>
  (p.opcode === 0x21 || (p.opcode === 0x25 && (p.flags & 1) !== 0)) && p.itt === itt;
const status = (p: Pdu): number => p.header[3]!;
const residual = (p: Pdu) => ({
  over: (p.flags & 0x04) !== 0,
  under: (p.flags & 0x02) !== 0,
  count: p.header.readUInt32BE(44),
});

async function loggedIn(port: number, keys: [string, string][] = [], isid?: Buffer): Promise<TestInitiator> {
  const c = await TestInitiator.connect(port);
  const r = await c.login({ target: TARGET, keys, isid });
  assert.equal(r.status, 0, "login status");
  return c;
}

/** Collects all Data-In for a read and its status. */
async function readAll(c: TestInitiator, itt: number): Promise<{ data: Buffer; pdus: Pdu[]; last: Pdu }> {
  const pdus: Pdu[] = [];
  for (;;) {
    const p = await c.next((x) => x.itt === itt && (x.opcode === 0x25 || x.opcode === 0x21));
    pdus.push(p);
    if (p.opcode === 0x21 || (p.flags & 1) !== 0) break;
  }
  const chunks = pdus.filter((p) => p.opcode === 0x25).map((p) => p.data);
  return { data: Buffer.concat(chunks), pdus, last: pdus[pdus.length - 1]! };
}

test("INQUIRY returns data with phase-collapsed status and an underflow residual", async () => {
  const t = await startTestServer();
  try {
    const c = await loggedIn(t.port);
    const cdb = Buffer.from([0x12, 0, 0, 0, 96, 0]);
    c.send(scsiCommandPdu({ itt: 5, cmdSN: c.cmdSN++, cdb, edtl: 96, read: true }));
    const r = await readAll(c, 5);
    assert.equal(r.data.subarray(8, 13).toString(), "HASAN");
    assert.equal(r.last.opcode, 0x25, "status travels in the last Data-In");
    assert.equal(status(r.last), 0);
    assert.deepEqual(residual(r.last), { over: false, under: true, count: 96 - 36 });
    c.close();
  } finally {
    await t.close();
  }
});

test("a read shorter than the data reports overflow and sends only the expected length", async () => {
  const t = await startTestServer();
  try {
    const c = await loggedIn(t.port);
    t.scsi.disk.fill(0x5a, 0, 1024);
    c.send(scsiCommandPdu({ itt: 6, cmdSN: c.cmdSN++, cdb: read10(0, 2), edtl: 512, read: true }));
    const r = await readAll(c, 6);
    assert.equal(r.data.length, 512);
    assert.deepEqual(residual(r.last), { over: true, under: false, count: 512 });
    c.close();
  } finally {
    await t.close();
  }
});

test("Data-In is split by the initiator's MaxRecvDataSegmentLength and MaxBurstLength with F and S bits", async () => {
  const t = await startTestServer();
  try {
    const c = await loggedIn(t.port, [
      ["MaxRecvDataSegmentLength", "512"],
      ["MaxBurstLength", "1024"],
    ]);
    for (let i = 0; i < 4; i++) t.scsi.disk.fill(i + 1, i * 512, (i + 1) * 512);
    c.send(scsiCommandPdu({ itt: 7, cmdSN: c.cmdSN++, cdb: read10(0, 4), edtl: 2048, read: true }));
    const r = await readAll(c, 7);
    assert.equal(r.pdus.length, 4);
    r.pdus.forEach((p, i) => {
      assert.equal(p.header.readUInt32BE(36), i, "DataSN");
      assert.equal(p.header.readUInt32BE(40), i * 512, "buffer offset");
      assert.equal(p.data[0], i + 1);
      assert.equal((p.flags & 0x80) !== 0, i === 1 || i === 3, `F bit on PDU ${i}`);
      assert.equal((p.flags & 0x01) !== 0, i === 3, `S bit on PDU ${i}`);
    });
    c.close();
  } finally {
    await t.close();
  }
});

test("CHECK CONDITION carries sense data with its 2-byte length prefix", async () => {
  const t = await startTestServer({}, 1024 * 1024);
  try {
    const c = await loggedIn(t.port);
    c.send(scsiCommandPdu({ itt: 8, cmdSN: c.cmdSN++, cdb: read10(4096, 1), edtl: 512, read: true }));
    const r = await c.next(isResponse(8));
    assert.equal(r.opcode, 0x21);
    assert.equal(status(r), 2);
    const len = r.data.readUInt16BE(0);
    assert.equal(len, 18);
    assert.equal(r.data[2 + 2]! & 0x0f, 0x05, "ILLEGAL REQUEST");
    assert.equal(r.data[2 + 12], 0x21, "LBA out of range");
    c.close();
  } finally {
    await t.close();
  }
});

test("writes gather immediate, unsolicited and R2T-solicited data with several R2Ts outstanding", async () => {
  const t = await startTestServer();
  try {
    const c = await loggedIn(t.port, [
      ["InitialR2T", "No"],
      ["ImmediateData", "Yes"],
      ["FirstBurstLength", "1024"],
      ["MaxBurstLength", "2048"],
      ["MaxOutstandingR2T", "2"],
    ]);
    const payload = Buffer.alloc(8192);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
    c.send(
      scsiCommandPdu({
        itt: 9,
        cmdSN: c.cmdSN++,
        cdb: write10(2, 16),
        edtl: 8192,
        write: true,
        final: false,
        data: payload.subarray(0, 512),
      }),
    );
    c.send({
      opcode: 0x05,
      flags: 0x80,
      itt: 9,
      word20: 0xffffffff,
      word36: 0,
      word40: 512,
      data: payload.subarray(512, 1024),
    });
    const r2ts: Pdu[] = [await c.next((p) => p.opcode === 0x31), await c.next((p) => p.opcode === 0x31)];
    assert.equal(
      await c.silent(200, (p) => p.opcode === 0x31),
      true,
      "no more than MaxOutstandingR2T R2Ts at once",
    );
    const answer = (r2t: Pdu) => {
      const ttt = r2t.header.readUInt32BE(20);
      const off = r2t.header.readUInt32BE(40);
      const len = r2t.header.readUInt32BE(44);
      assert.ok(len <= 2048);
      for (let p = 0, sn = 0; p < len; p += 1024, sn++) {
        const n = Math.min(1024, len - p);
        c.send({
          opcode: 0x05,
          flags: p + n === len ? 0x80 : 0,
          itt: 9,
          word20: ttt,
          word36: sn,
          word40: off + p,
          data: payload.subarray(off + p, off + p + n),
        });
      }
      return { off, len, r2tsn: r2t.header.readUInt32BE(36) };
    };
    const seen = [answer(r2ts[0]!), answer(r2ts[1]!)];
    for (;;) {
      const p = await c.next((x) => x.opcode === 0x31 || x.opcode === 0x21);
      if (p.opcode === 0x21) {
        assert.equal(status(p), 0);
        assert.deepEqual(residual(p), { over: false, under: false, count: 0 });
        break;
      }
      seen.push(answer(p));
    }
    assert.deepEqual(
      seen.map((s) => [s.off, s.len, s.r2tsn]),
      [
        [1024, 2048, 0],
        [3072, 2048, 1],
        [5120, 2048, 2],
        [7168, 1024, 3],
      ],
    );
    assert.deepEqual(t.scsi.disk.subarray(1024, 1024 + 8192), payload);
    assert.deepEqual(t.done.at(-1), {
      kind: "write",
      bytes: 8192,
      latencyMs: t.done.at(-1)!.latencyMs,
      ok: true,
    });
    c.close();
  } finally {
    await t.close();
  }
});

test("a DataSN gap fails the command with CHECK CONDITION and leaves the disk untouched", async () => {
  const t = await startTestServer();
  try {
    const c = await loggedIn(t.port, [["InitialR2T", "Yes"]]);
    c.send(scsiCommandPdu({ itt: 10, cmdSN: c.cmdSN++, cdb: write10(0, 2), edtl: 1024, write: true }));
    const r2t = await c.next((p) => p.opcode === 0x31);
    const ttt = r2t.header.readUInt32BE(20);
    c.send({
      opcode: 0x05,
      flags: 0,
      itt: 10,
      word20: ttt,
      word36: 0,
      word40: 0,
      data: Buffer.alloc(512, 1),
    });
    c.send({
      opcode: 0x05,
      flags: 0x80,
      itt: 10,
      word20: ttt,
      word36: 5,
      word40: 512,
      data: Buffer.alloc(512, 1),
    });
    const r = await c.next(isResponse(10));
    assert.equal(status(r), 2);
    assert.equal(r.data[2 + 2]! & 0x0f, 0x0b, "ABORTED COMMAND");
    assert.equal(t.scsi.disk[0], 0);
    // the session goes on
    c.send(scsiCommandPdu({ itt: 11, cmdSN: c.cmdSN++, cdb: Buffer.from([0, 0, 0, 0, 0, 0]), edtl: 0 }));
    assert.equal(status(await c.next(isResponse(11))), 0);
    c.close();
  } finally {
    await t.close();
  }
});

test("commands outside the CmdSN window are dropped silently and the session goes on", async () => {
  const t = await startTestServer({ commandWindow: 8 });
  try {
    const c = await loggedIn(t.port);
    const tur = Buffer.from([0, 0, 0, 0, 0, 0]);
    c.send(scsiCommandPdu({ itt: 20, cmdSN: c.cmdSN + 100, cdb: tur, edtl: 0 }));
    c.send(scsiCommandPdu({ itt: 21, cmdSN: c.cmdSN - 1, cdb: tur, edtl: 0 }));
    assert.equal(await c.silent(300), true, "no answer to out-of-window commands");
    c.send(scsiCommandPdu({ itt: 22, cmdSN: c.cmdSN++, cdb: tur, edtl: 0 }));
    const r = await c.next(isResponse(22));
    assert.equal(status(r), 0);
    assert.equal(r.header.readUInt32BE(28), c.cmdSN, "ExpCmdSN advanced by one");
    assert.equal(r.header.readUInt32BE(32), c.cmdSN + 7, "MaxCmdSN = ExpCmdSN + window - 1");
    c.close();
  } finally {
    await t.close();
  }
});

test("header and data digests (CRC32C) protect every PDU; a bad data digest is rejected", async () => {
  const t = await startTestServer();
  try {
    const c = await TestInitiator.connect(t.port);
    const r = await c.login({
      target: TARGET,
      keys: [
        ["HeaderDigest", "CRC32C,None"],
        ["DataDigest", "CRC32C"],
      ],
    });
    assert.equal(r.keys.get("HeaderDigest"), "CRC32C");
    assert.equal(r.keys.get("DataDigest"), "CRC32C");
    c.digests = { header: true, data: true };
    c.reader.headerDigest = c.reader.dataDigest = true;
    const data = Buffer.alloc(1000, 0x3c);
    c.send(
      scsiCommandPdu({
        itt: 30,
        cmdSN: c.cmdSN++,
        cdb: write10(0, 2),
        edtl: 1024,
        write: true,
        data: Buffer.concat([data, Buffer.alloc(24, 0x3c)]),
      }),
    );
    assert.equal(status(await c.next(isResponse(30))), 0);
    c.send(scsiCommandPdu({ itt: 31, cmdSN: c.cmdSN++, cdb: read10(0, 1), edtl: 512, read: true }));
    const rd = await readAll(c, 31);
    assert.deepEqual(rd.data, Buffer.alloc(512, 0x3c));
    const ping = buildPdu(
      {
        opcode: 0x00,
        immediate: true,
        flags: 0x80,
        itt: 32,
        word20: 0xffffffff,
        cmdSN: c.cmdSN,
        data: Buffer.from("hello"),
      },
      c.digests,
    );
    ping[ping.length - 1]! ^= 0xff;
    c.send(ping);
    const rej = await c.next((p) => p.opcode === 0x3f);
    assert.equal(rej.header[2], 0x02, "reason: data digest error");
    assert.equal(rej.data.readUInt32BE(16), 32, "the rejected header comes back");
    c.close();
  } finally {
    await t.close();
  }
});

test("unknown opcodes and SNACK get a Reject; the session survives", async () => {
  const t = await startTestServer();
  try {
    const c = await loggedIn(t.port);
    c.send({ opcode: 0x1c, itt: 40 });
    assert.equal((await c.next((p) => p.opcode === 0x3f)).header[2], 0x05);
    c.send({ opcode: 0x10, itt: 41 });
    assert.equal((await c.next((p) => p.opcode === 0x3f)).header[2], 0x03);
    c.send({
      opcode: 0x00,
      immediate: true,
      itt: 42,
      word20: 0xffffffff,
      cmdSN: c.cmdSN,
      data: Buffer.from("ping!"),
    });
    const nop = await c.next((p) => p.opcode === 0x20);
    assert.equal(nop.itt, 42);
    assert.equal(nop.data.toString(), "ping!");
    c.close();
  } finally {
    await t.close();
  }
});

test("an oversized data segment ends the connection but not the server", async () => {
  const t = await startTestServer();
  try {
    const c = await loggedIn(t.port);
    c.send(
      buildPdu({ opcode: 0x00, immediate: true, itt: 50, word20: 0xffffffff, dataSegmentLength: 0xffffff }),
    );
    await c.waitClosed();
    const d = await loggedIn(t.port);
    d.close();
  } finally {
    await t.close();
  }
});

test("task management: ABORT TASK, unknown task, LUN RESET and a LUN that does not exist", async () => {
  const t = await startTestServer();
  try {
    const c = await loggedIn(t.port);
    t.scsi.delayMs = 1000;
    c.send(scsiCommandPdu({ itt: 60, cmdSN: c.cmdSN++, cdb: read10(0, 1), edtl: 512, read: true }));
    await new Promise((r) => setTimeout(r, 50));
    c.send({ opcode: 0x02, immediate: true, flags: 0x80 | 1, itt: 61, word20: 60, cmdSN: c.cmdSN });
    const abort = await c.next((p) => p.opcode === 0x22);
    assert.equal(abort.header[2], 0, "function complete");
    assert.equal(await c.silent(1500, isResponse(60)), true, "the aborted task gets no response");
    t.scsi.delayMs = 0;
    c.send({ opcode: 0x02, immediate: true, flags: 0x80 | 1, itt: 62, word20: 999, cmdSN: c.cmdSN });
    assert.equal((await c.next((p) => p.opcode === 0x22)).header[2], 1, "task does not exist");
    c.send({
      opcode: 0x02,
      immediate: true,
      flags: 0x80 | 5,
      itt: 63,
      lun: 0,
      word20: 0xffffffff,
      cmdSN: c.cmdSN,
    });
    assert.equal((await c.next((p) => p.opcode === 0x22)).header[2], 0);
    assert.ok(t.scsi.events.some((e) => e.startsWith("lunReset")));
    c.send({
      opcode: 0x02,
      immediate: true,
      flags: 0x80 | 5,
      itt: 64,
      lun: 5,
      word20: 0xffffffff,
      cmdSN: c.cmdSN,
    });
    assert.equal((await c.next((p) => p.opcode === 0x22)).header[2], 2, "LUN does not exist");
    // the CmdSN window still works after the aborted task released its slot
    c.send(scsiCommandPdu({ itt: 65, cmdSN: c.cmdSN++, cdb: Buffer.from([0, 0, 0, 0, 0, 0]), edtl: 0 }));
    assert.equal(status(await c.next(isResponse(65))), 0);
    c.close();
  } finally {
    await t.close();
  }
});

test("the target pings idle initiators and drops the ones that do not answer", async () => {
  const t = await startTestServer({ nopIntervalMs: 200, nopTimeoutMs: 1000 });
  try {
    const alive = await loggedIn(t.port, [], Buffer.from("400000000011", "hex"));
    const dead = await loggedIn(t.port, [], Buffer.from("400000000012", "hex"));
    const answer = async () => {
      for (let i = 0; i < 8; i++) {
        const p = await alive.next((x) => x.opcode === 0x20);
        assert.equal(p.itt, 0xffffffff);
        alive.send({
          opcode: 0x00,
          immediate: true,
          flags: 0x80,
          itt: 0xffffffff,
          word20: p.header.readUInt32BE(20),
          cmdSN: alive.cmdSN,
        });
      }
    };
    await Promise.all([answer(), dead.next((x) => x.opcode === 0x20)]);
    await dead.waitClosed();
    assert.equal(alive.closed, false);
    assert.deepEqual(
      t.server.sessions().map((s) => s.isid),
      ["400000000011"],
    );
    alive.close();
  } finally {
    await t.close();
  }
});

test("logout closes the session and tells the SCSI layer the nexus is gone", async () => {
  const t = await startTestServer();
  try {
    const c = await loggedIn(t.port);
    const [info] = t.server.sessions();
    assert.ok(info);
    SessionInfoSchema.parse(info);
    assert.equal(info.initiator, "iqn.2026-11.dev.hasan:test-initiator");
    c.send({ opcode: 0x06, immediate: true, flags: 0x80, itt: 70, cmdSN: c.cmdSN });
    const r = await c.next((p) => p.opcode === 0x26);
    assert.equal(r.header[2], 0);
    assert.equal(r.header.readUInt16BE(40), 2, "Time2Wait");
    await c.waitClosed();
    assert.deepEqual(t.server.sessions(), []);
    assert.deepEqual(
      t.scsi.events.map((e) => e.split(" ")[0]),
      ["created", "lost"],
    );
  } finally {
    await t.close();
  }
});

test("a second login with the same ISID reinstates the session", async () => {
  const t = await startTestServer();
  try {
    const isid = Buffer.from("400000000099", "hex");
    const first = await loggedIn(t.port, [], isid);
    const second = await loggedIn(t.port, [], isid);
    await first.waitClosed();
    assert.equal(t.server.sessions().length, 1);
    assert.deepEqual(
      t.scsi.events.map((e) => e.split(" ")[0]),
      ["created", "lost", "created"],
    );
    second.close();
  } finally {
    await t.close();
  }
});

test("discovery reports this portal and the partner's with their portal group tags", async () => {
  const t = await startTestServer({ extraPortals: () => [{ address: "127.0.0.2:3260", portalGroupTag: 2 }] });
  try {
    const c = await TestInitiator.connect(t.port);
    const r = await c.login({ target: "", sessionType: "Discovery" });
    assert.equal(r.status, 0);
    c.send({
      opcode: 0x04,
      immediate: true,
      flags: 0x80,
      itt: 80,
      word20: 0xffffffff,
      cmdSN: c.cmdSN,
      data: encodeKeyValues([["SendTargets", "All"]]),
    });
    const p = await c.next((x) => x.opcode === 0x24);
    const text = p.data.toString("utf8").split("\0").filter(Boolean);
    assert.deepEqual(text, [
      `TargetName=${TARGET}`,
      `TargetAddress=127.0.0.1:${t.port},1`,
      "TargetAddress=127.0.0.2:3260,2",
    ]);
    // SCSI commands have no place in a discovery session
    c.send(
      scsiCommandPdu({
        itt: 81,
        cmdSN: c.cmdSN,
        immediate: true,
        cdb: Buffer.from([0, 0, 0, 0, 0, 0]),
        edtl: 0,
      }),
    );
    assert.equal((await c.next((x) => x.opcode === 0x3f)).header[2], 0x04);
    c.close();
  } finally {
    await t.close();
  }
});

test("login failures carry the RFC 7143 status class and detail", async () => {
  const t = await startTestServer({ auth: { allowedInitiators: ["iqn.2026-11.dev.hasan:good"] } });
  try {
    const cases: { keys: [string, string][]; versionMin?: number; want: number }[] = [
      {
        keys: [
          ["InitiatorName", "iqn.2026-11.dev.hasan:good"],
          ["TargetName", "iqn.2026-11.dev.hasan:other"],
        ],
        want: 0x0203,
      },
      { keys: [["TargetName", TARGET]], want: 0x0207 },
      {
        keys: [
          ["InitiatorName", "iqn.2026-11.dev.hasan:bad"],
          ["TargetName", TARGET],
        ],
        want: 0x0202,
      },
      {
        keys: [
          ["InitiatorName", "iqn.2026-11.dev.hasan:good"],
          ["TargetName", TARGET],
        ],
        versionMin: 2,
        want: 0x0205,
      },
    ];
    for (const k of cases) {
      const c = await TestInitiator.connect(t.port);
      c.send(loginPdu({ keys: k.keys, csg: 1, nsg: 3, transit: true, versionMin: k.versionMin }));
      const r = await c.next((p) => p.opcode === 0x23);
      assert.equal(r.header.readUInt16BE(36), k.want, JSON.stringify(k));
      await c.waitClosed();
    }
  } finally {
    await t.close();
  }
});

test("CHAP login through the security stage, mutual CHAP answered, wrong secret refused", async () => {
  const { chapDigest } = await import("../../../target/iscsi/chap.js");
  const t = await startTestServer({
    auth: {
      chap: { user: "alice", secret: "alice-secret-1" },
      mutualChap: { user: "tgt", secret: "target-secret-1" },
      allowedInitiators: [],
    },
  });
  try {
    for (const secret of ["alice-secret-1", "wrong-secret"]) {
      const c = await TestInitiator.connect(t.port);
      const base: [string, string][] = [
        ["InitiatorName", "iqn.2026-11.dev.hasan:i"],
        ["TargetName", TARGET],
        ["AuthMethod", "CHAP,None"],
      ];
      c.send(loginPdu({ keys: base, csg: 0, nsg: 1, transit: false }));
      let r = await c.next((p) => p.opcode === 0x23);
      assert.equal(new Map(parseKeyValues(r.data)).get("AuthMethod"), "CHAP");
      c.send(loginPdu({ keys: [["CHAP_A", "56,7,5"]], csg: 0, nsg: 1, transit: false }));
      r = await c.next((p) => p.opcode === 0x23);
      const k = new Map(parseKeyValues(r.data));
      assert.equal(k.get("CHAP_A"), "7", "SHA-256 preferred as offered");
      const id = Number(k.get("CHAP_I"));
      const challenge = Buffer.from(k.get("CHAP_C")!.slice(2), "hex");
      const mine = Buffer.alloc(32, 9);
      c.send(
        loginPdu({
          keys: [
            ["CHAP_N", "alice"],
            ["CHAP_R", "0x" + chapDigest(7, id, secret, challenge).toString("hex")],
            ["CHAP_I", "77"],
            ["CHAP_C", "0b" + mine.toString("base64")],
          ],
          csg: 0,
          nsg: 1,
          transit: true,
        }),
      );
      r = await c.next((p) => p.opcode === 0x23);
      if (secret === "wrong-secret") {
        assert.equal(r.header.readUInt16BE(36), 0x0201);
        await c.waitClosed();
        continue;
      }
      assert.equal(r.header.readUInt16BE(36), 0);
      assert.equal(r.header[1]! & 0x83, 0x81, "transit to the operational stage");
      const m = new Map(parseKeyValues(r.data));
      assert.equal(m.get("CHAP_N"), "tgt");
      assert.equal(m.get("CHAP_R"), "0x" + chapDigest(7, 77, "target-secret-1", mine).toString("hex"));
      c.send(loginPdu({ keys: [], csg: 1, nsg: 3, transit: true }));
      r = await c.next((p) => p.opcode === 0x23);
      assert.equal(r.header.readUInt16BE(36), 0);
      assert.ok(r.header.readUInt16BE(14) > 0, "TSIH assigned");
      c.close();
    }
  } finally {
    await t.close();
  }
});

test("close() lets an in-flight command finish and asks initiators to log out", async () => {
  const t = await startTestServer();
  const c = await loggedIn(t.port);
  t.scsi.delayMs = 200;
  c.send(scsiCommandPdu({ itt: 90, cmdSN: c.cmdSN++, cdb: read10(0, 1), edtl: 512, read: true }));
  await new Promise((r) => setTimeout(r, 50));
  const closing = t.server.close({ graceMs: 2000 });
  const asyncMsg = await c.next((p) => p.opcode === 0x32);
  assert.equal(asyncMsg.header[36], 1, "AsyncEvent: logout requested");
  const r = await readAll(c, 90);
  assert.equal(r.data.length, 512);
  c.send({ opcode: 0x06, immediate: true, flags: 0x80, itt: 91, cmdSN: c.cmdSN });
  assert.equal((await c.next((p) => p.opcode === 0x26)).header[2], 0);
  await closing;
  await c.waitClosed();
});

test("a login naming the session's TSIH reinstates its connection; unknown TSIH and a second CID are refused", async () => {
  const t = await startTestServer();
  try {
    const isid = Buffer.from("4000000000aa", "hex");
    const first = await TestInitiator.connect(t.port);
    const r = await first.login({ target: TARGET, isid });
    assert.equal(r.status, 0);
    const keys: [string, string][] = [
      ["InitiatorName", "iqn.2026-11.dev.hasan:test-initiator"],
      ["TargetName", TARGET],
    ];
    const attempt = async (tsih: number, cid: number) => {
      const c = await TestInitiator.connect(t.port);
      c.send(loginPdu({ keys, csg: 1, nsg: 3, transit: true, isid, tsih, cid }));
      const p = await c.next((x) => x.opcode === 0x23);
      return { c, status: p.header.readUInt16BE(36), tsih: p.header.readUInt16BE(14) };
    };
    const unknown = await attempt(r.tsih + 100, 0);
    assert.equal(unknown.status, 0x020a, "session does not exist");
    const other = await attempt(r.tsih, 1);
    assert.equal(other.status, 0x0206, "too many connections");
    const again = await attempt(r.tsih, 0);
    assert.equal(again.status, 0);
    assert.equal(again.tsih, r.tsih);
    await first.waitClosed();
    assert.equal(t.server.sessions().length, 1);
    assert.deepEqual(
      t.scsi.events.map((e) => e.split(" ")[0]),
      ["created"],
      "the nexus survives connection reinstatement",
    );
    again.c.send(scsiCommandPdu({ itt: 1, cmdSN: 1, cdb: Buffer.from([0, 0, 0, 0, 0, 0]), edtl: 0 }));
    assert.equal(status(await again.c.next(isResponse(1))), 0);
    for (const x of [unknown.c, other.c, again.c]) x.close();
  } finally {
    await t.close();
  }
});

test("discovery sessions refuse SCSI commands and task management", async () => {
  const t = await startTestServer();
  try {
    const c = await TestInitiator.connect(t.port);
    assert.equal((await c.login({ target: "", sessionType: "Discovery" })).status, 0);
    c.send({ opcode: 0x02, immediate: true, flags: 0x80 | 5, itt: 2, word20: 0xffffffff, cmdSN: c.cmdSN });
    assert.equal((await c.next((x) => x.opcode === 0x3f)).header[2], 0x04);
    c.close();
  } finally {
    await t.close();
  }
});

test("text longer than the initiator's MaxRecvDataSegmentLength comes in pieces with the C bit", async () => {
  const many = Array.from({ length: 40 }, (_, i) => ({
    address: `127.0.0.1:${4000 + i}`,
    portalGroupTag: 2,
  }));
  const t = await startTestServer({ extraPortals: () => many });
  try {
    const c = await TestInitiator.connect(t.port);
    const r = await c.login({
      target: "",
      sessionType: "Discovery",
      keys: [["MaxRecvDataSegmentLength", "512"]],
    });
    assert.equal(r.status, 0);
    const pieces: Buffer[] = [];
    let ttt = 0xffffffff;
    for (let i = 0; ; i++) {
      const data = i === 0 ? encodeKeyValues([["SendTargets", "All"]]) : undefined;
      c.send({ opcode: 0x04, immediate: true, flags: 0x80, itt: 100, word20: ttt, cmdSN: c.cmdSN, data });
      const p = await c.next((x) => x.opcode === 0x24);
      assert.ok(p.data.length <= 512);
      pieces.push(p.data);
      if (p.flags & 0x80) {
        assert.equal(p.header.readUInt32BE(20), 0xffffffff, "the last piece releases the TTT");
        break;
      }
      assert.equal(p.flags & 0x40, 0x40, "C bit on every piece but the last");
      ttt = p.header.readUInt32BE(20);
    }
    assert.ok(pieces.length > 1);
    const addresses = parseKeyValuesMulti(Buffer.concat(pieces));
    assert.equal(addresses.length, 41);
    c.close();
  } finally {
    await t.close();
  }
});

test("login text split over several PDUs with the C bit is joined", async () => {
  const t = await startTestServer();
  try {
    const c = await TestInitiator.connect(t.port);
    const text = encodeKeyValues([
      ["InitiatorName", "iqn.2026-11.dev.hasan:split"],
      ["TargetName", TARGET],
      ["MaxBurstLength", "65536"],
    ]);
    const cut = 20;
    const first = loginPdu({ keys: [], csg: 1, nsg: 3, transit: false });
    first[1] = 0x40 | (1 << 2); // C bit, CSG 1, no transit
    const head = Buffer.concat([first.subarray(0, 48), text.subarray(0, cut)]);
    head[7] = cut;
    c.send(Buffer.concat([head, Buffer.alloc((4 - (cut % 4)) % 4)]));
    const ack = await c.next((p) => p.opcode === 0x23);
    assert.equal(ack.header.readUInt16BE(36), 0);
    assert.equal(ack.data.length, 0, "an empty response asks for the rest");
    const restPdu = loginPdu({ keys: [], csg: 1, nsg: 3, transit: true });
    const rest = text.subarray(cut);
    const tail = Buffer.concat([restPdu.subarray(0, 48), rest, Buffer.alloc((4 - (rest.length % 4)) % 4)]);
    tail[5] = 0;
    tail[6] = (rest.length >> 8) & 0xff;
    tail[7] = rest.length & 0xff;
    c.send(tail);
    const done = await c.next((p) => p.opcode === 0x23);
    assert.equal(done.header.readUInt16BE(36), 0);
    assert.equal(new Map(parseKeyValues(done.data)).get("MaxBurstLength"), "65536");
    c.close();
  } finally {
    await t.close();
  }
});

/** key=value pairs where keys may repeat (TargetAddress). */
function parseKeyValuesMulti(data: Buffer): string[] {
  return data
    .toString("utf8")
    .split("\0")
    .filter((kv) => kv.startsWith("TargetAddress="));
}
