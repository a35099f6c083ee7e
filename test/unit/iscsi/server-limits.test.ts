/**
 * Limits a client cannot exceed, on a live server over a RAM disk: write memory, the CmdSN window
 * for immediate commands, the login PDU size, connection counts, failed-login pacing and
 * TARGET COLD RESET.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chapDigest } from "../../../target/iscsi/chap.js";
import { parseKeyValues } from "../../../target/iscsi/text-keys.js";
import { TestInitiator, buildPdu, loginPdu, scsiCommandPdu, write10, type Pdu } from "./support/initiator.js";
import { TARGET, startTestServer } from "./support/server.js";

const MiB = 1024 * 1024;
const R2T = 0x31;
const TASK_SET_FULL = 0x28;
const BUSY = 0x08;

const isResponse = (itt: number) => (p: Pdu) => p.opcode === 0x21 && p.itt === itt;
const statusOf = (p: Pdu): number => p.header[3]!;
const senseOf = (p: Pdu) => ({ key: p.data[2 + 2]! & 0x0f, asc: p.data[2 + 12], ascq: p.data[2 + 13] });

async function loggedIn(
  port: number,
  isid = "400000000001",
  keys: [string, string][] = [],
  localAddress?: string,
): Promise<TestInitiator> {
  const c = await TestInitiator.connect(port, "127.0.0.1", localAddress);
  const r = await c.login({ target: TARGET, keys, isid: Buffer.from(isid, "hex") });
  assert.equal(r.status, 0, "login status");
  return c;
}

/** A write of `bytes` at LBA 0 without data; the answer is an R2T or a status. */
function announceWrite(c: TestInitiator, itt: number, bytes: number, immediate = false): void {
  c.send(
    scsiCommandPdu({
      itt,
      cmdSN: immediate ? c.cmdSN : c.cmdSN++,
      cdb: write10(0, bytes / 512),
      edtl: bytes,
      write: true,
      immediate,
    }),
  );
}

/** Answers every R2T for `itt` with `fill` bytes until the status comes. */
async function sendData(c: TestInitiator, itt: number, first: Pdu, fill: number): Promise<Pdu> {
  let r2t: Pdu = first;
  for (;;) {
    const ttt = r2t.header.readUInt32BE(20);
    const off = r2t.header.readUInt32BE(40);
    const len = r2t.header.readUInt32BE(44);
    for (let p = 0, sn = 0; p < len; p += 65536, sn++) {
      const n = Math.min(65536, len - p);
      c.send({
        opcode: 0x05,
        flags: p + n === len ? 0x80 : 0,
        itt,
        word20: ttt,
        word36: sn,
        word40: off + p,
        data: Buffer.alloc(n, fill),
      });
    }
    const next = await c.next((x) => x.itt === itt && (x.opcode === R2T || x.opcode === 0x21));
    if (next.opcode === 0x21) return next;
    r2t = next;
  }
}

test("a write beyond the session's write memory gets TASK SET FULL, beyond the target's BUSY, one larger than the session may hold ILLEGAL REQUEST; once a write is done its memory serves the next", async () => {
  const t = await startTestServer({ writeMemory: { target: 3 * MiB, session: 2 * MiB } }, 8 * MiB);
  try {
    const a = await loggedIn(t.port, "400000000001");
    const b = await loggedIn(t.port, "400000000002");
    announceWrite(a, 1, 2 * MiB);
    const r2tA = await a.next((p) => p.itt === 1 && p.opcode === R2T);
    announceWrite(a, 2, 4096);
    const full = await a.next(isResponse(2));
    assert.equal(statusOf(full), TASK_SET_FULL, "session A holds its 2 MiB");
    assert.equal(full.data.length, 0, "no sense data with TASK SET FULL");
    announceWrite(b, 3, 2 * MiB);
    assert.equal(statusOf(await b.next(isResponse(3))), BUSY, "the target's 3 MiB cannot hold 2 more");
    announceWrite(b, 4, MiB);
    const r2tB = await b.next((p) => p.itt === 4 && p.opcode === R2T);
    announceWrite(b, 5, 4 * MiB);
    const tooLarge = await b.next(isResponse(5));
    assert.equal(statusOf(tooLarge), 0x02);
    assert.deepEqual(senseOf(tooLarge), { key: 0x05, asc: 0x24, ascq: 0x00 }, "INVALID FIELD IN CDB");
    assert.equal(statusOf(await sendData(a, 1, r2tA, 0xa1)), 0, "the accepted write completes");
    assert.equal(t.scsi.disk[2 * MiB - 1], 0xa1);
    assert.equal(statusOf(await sendData(b, 4, r2tB, 0xb1)), 0);
    // the memory is free again: a refused write now goes through, and the window moved on
    announceWrite(b, 6, 2 * MiB);
    const r2t = await b.next((p) => p.itt === 6 && p.opcode === R2T);
    assert.equal(statusOf(await sendData(b, 6, r2t, 0xb2)), 0);
    assert.equal(t.server.writeMemory.inUse, 0);
    a.close();
    b.close();
  } finally {
    await t.close();
  }
});

test("immediate WRITEs waiting for their data take CmdSN window slots: with all 8 taken the next gets TASK SET FULL, and one finishing frees a slot", async () => {
  const t = await startTestServer({ commandWindow: 8 });
  try {
    const c = await loggedIn(t.port);
    const r2ts: Pdu[] = [];
    for (let itt = 1; itt <= 8; itt++) {
      announceWrite(c, itt, 4096, true);
      r2ts.push(await c.next((p) => p.itt === itt && p.opcode === R2T));
    }
    announceWrite(c, 9, 4096, true);
    assert.equal(statusOf(await c.next(isResponse(9))), TASK_SET_FULL);
    const done = await sendData(c, 1, r2ts[0]!, 0x11);
    assert.equal(statusOf(done), 0);
    announceWrite(c, 10, 4096, true);
    assert.ok(await c.next((p) => p.itt === 10 && p.opcode === R2T), "a slot is free again");
    c.close();
  } finally {
    await t.close();
  }
});

test("a write whose requested Data-Out never comes fails with ABORTED COMMAND / INITIATOR RESPONSE TIMEOUT and gives its memory back", async () => {
  const t = await startTestServer({ dataOutTimeoutMs: 300, nopIntervalMs: 100 });
  try {
    const c = await loggedIn(t.port);
    announceWrite(c, 1, MiB);
    await c.next((p) => p.itt === 1 && p.opcode === R2T);
    assert.equal(t.server.writeMemory.inUse, MiB);
    const r = await c.next(isResponse(1), 5000);
    assert.equal(statusOf(r), 0x02);
    assert.deepEqual(senseOf(r), { key: 0x0b, asc: 0x4b, ascq: 0x06 });
    assert.equal(t.server.writeMemory.inUse, 0);
    c.close();
  } finally {
    await t.close();
  }
});

test("a login PDU of 8193 bytes is refused with login status 0x0200 and the connection closes; 8192 bytes log in", async () => {
  const t = await startTestServer();
  try {
    const keys = (total: number): [string, string][] => {
      const head = `InitiatorName=iqn.2026-11.dev.hasan:i\0TargetName=${TARGET}\0X-pad=`;
      return [
        ["InitiatorName", "iqn.2026-11.dev.hasan:i"],
        ["TargetName", TARGET],
        ["X-pad", "p".repeat(total - head.length - 1)],
      ];
    };
    const big = await TestInitiator.connect(t.port);
    big.send(loginPdu({ keys: keys(8193), csg: 1, nsg: 3, transit: true }));
    const r = await big.next((p) => p.opcode === 0x23);
    assert.equal(r.header.readUInt16BE(36), 0x0200);
    await big.waitClosed();
    const ok = await TestInitiator.connect(t.port);
    ok.send(loginPdu({ keys: keys(8192), csg: 1, nsg: 3, transit: true }));
    assert.equal((await ok.next((p) => p.opcode === 0x23)).header.readUInt16BE(36), 0);
    ok.close();
  } finally {
    await t.close();
  }
});

test("a 3rd connection from one address (2 allowed) is closed at once; with all 4 slots taken the oldest connection still in login gives way, a logged-in one never does", async () => {
  const t = await startTestServer({ connectionLimits: { total: 4, perSource: 2 } });
  try {
    const logged = await loggedIn(t.port, "400000000001", [], "127.0.0.2");
    const waiting = await TestInitiator.connect(t.port, "127.0.0.1", "127.0.0.2");
    const third = await TestInitiator.connect(t.port, "127.0.0.1", "127.0.0.2");
    await third.waitClosed(2000);
    const oldest = await TestInitiator.connect(t.port, "127.0.0.1", "127.0.0.3");
    await new Promise((r) => setTimeout(r, 50));
    const newer = await TestInitiator.connect(t.port, "127.0.0.1", "127.0.0.3");
    await new Promise((r) => setTimeout(r, 50));
    // all four taken: the next one in evicts `waiting`, the oldest in login
    const late = await loggedIn(t.port, "400000000002", [], "127.0.0.4");
    await waiting.waitClosed(2000);
    assert.equal(oldest.closed, false);
    assert.equal(newer.closed, false);
    assert.equal(logged.closed, false, "a logged-in connection is never evicted");
    // and the one after that evicts `oldest`
    const later = await loggedIn(t.port, "400000000003", [], "127.0.0.4");
    await oldest.waitClosed(2000);
    assert.equal(newer.closed, false);
    for (const c of [logged, newer, late, later]) c.close();
  } finally {
    await t.close();
  }
});

/** A CHAP login with `secret`; resolves with the final status and how long the answer took. */
async function chapLogin(
  port: number,
  secret: string,
  isid: string,
): Promise<{ status: number; ms: number }> {
  const c = await TestInitiator.connect(port);
  try {
    const base: [string, string][] = [
      ["InitiatorName", "iqn.2026-11.dev.hasan:i"],
      ["TargetName", TARGET],
      ["AuthMethod", "CHAP"],
    ];
    const isidBuf = Buffer.from(isid, "hex");
    c.send(loginPdu({ keys: base, csg: 0, nsg: 1, transit: false, isid: isidBuf }));
    await c.next((p) => p.opcode === 0x23);
    c.send(loginPdu({ keys: [["CHAP_A", "5"]], csg: 0, nsg: 1, transit: false, isid: isidBuf }));
    const k = new Map(parseKeyValues((await c.next((p) => p.opcode === 0x23)).data));
    const response = chapDigest(
      5,
      Number(k.get("CHAP_I")),
      secret,
      Buffer.from(k.get("CHAP_C")!.slice(2), "hex"),
    );
    const started = Date.now();
    c.send(
      loginPdu({
        keys: [
          ["CHAP_N", "alice"],
          ["CHAP_R", "0x" + response.toString("hex")],
        ],
        csg: 0,
        nsg: 1,
        transit: true,
        isid: isidBuf,
      }),
    );
    const r = await c.next((p) => p.opcode === 0x23, 10_000);
    return { status: r.header.readUInt16BE(36), ms: Date.now() - started };
  } finally {
    c.close();
  }
}

test("wrong CHAP secrets are answered with 0x0201 after 1 s, two at once from one address 1 s apart, while the right secret logs in at once", async () => {
  const t = await startTestServer({
    auth: { chap: { user: "alice", secret: "alice-secret-1" }, allowedInitiators: [] },
  });
  try {
    const [w1, w2, ok] = await Promise.all([
      chapLogin(t.port, "wrong-secret-1", "400000000001"),
      chapLogin(t.port, "wrong-secret-2", "400000000002"),
      chapLogin(t.port, "alice-secret-1", "400000000003"),
    ]);
    assert.equal(ok.status, 0);
    assert.ok(ok.ms < 500, `the right secret answered in ${ok.ms} ms`);
    assert.deepEqual([w1.status, w2.status], [0x0201, 0x0201]);
    const [first, second] = [w1.ms, w2.ms].sort((x, y) => x - y);
    assert.ok(first! >= 950, `first failure answered after ${first} ms`);
    assert.ok(second! >= 1950, `second failure answered after ${second} ms`);
  } finally {
    await t.close();
  }
});

test("TARGET COLD RESET is refused with 'function authorization failed' and the other initiator's session goes on; with allowColdReset it completes and every connection drops", async () => {
  const coldReset = (c: TestInitiator, itt: number) =>
    c.send(
      buildPdu({ opcode: 0x02, immediate: true, flags: 0x80 | 7, itt, word20: 0xffffffff, cmdSN: c.cmdSN }),
    );
  const refused = await startTestServer();
  try {
    const a = await loggedIn(refused.port, "400000000001");
    const b = await loggedIn(refused.port, "400000000002");
    coldReset(a, 70);
    assert.equal((await a.next((p) => p.opcode === 0x22)).header[2], 6, "function authorization failed");
    b.send(scsiCommandPdu({ itt: 71, cmdSN: b.cmdSN++, cdb: Buffer.alloc(6), edtl: 0 }));
    assert.equal(statusOf(await b.next(isResponse(71))), 0, "the other session goes on");
    assert.equal(a.closed || b.closed, false);
    a.close();
    b.close();
  } finally {
    await refused.close();
  }
  const allowed = await startTestServer({ allowColdReset: true });
  try {
    const a = await loggedIn(allowed.port, "400000000001");
    const b = await loggedIn(allowed.port, "400000000002");
    coldReset(a, 72);
    assert.equal((await a.next((p) => p.opcode === 0x22)).header[2], 0, "function complete");
    await a.waitClosed();
    await b.waitClosed();
  } finally {
    await allowed.close();
  }
});
