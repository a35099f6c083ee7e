/**
 * Thousands of connections that start a login and never finish it, against a real target
 * process: login PDUs beyond 8192 bytes are refused at once, the connections held stay within the
 * limits, resident memory stays within a stated bound, and a good initiator still logs in.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { startTarget, type TargetHandle } from "../support/target-process.js";
import { MiB, residentBytes, watchResident } from "../support/process-memory.js";
import { run } from "../support/processes.js";

const CONNECTIONS = 3000;
const SOURCES = 60;
const RSS_BUDGET = 200 * MiB;

interface Hostile {
  socket: Socket;
  closed: boolean;
  /** The first bytes the target sent back. */
  answer: Buffer;
}

/** A Login Request header announcing `announced` bytes of data (not sent here). */
function loginHeader(announced: number, i: number): Buffer {
  const h = Buffer.alloc(48);
  h[0] = 0x43; // Login Request, immediate
  h[1] = 0x81; // T, CSG 0 (security), NSG 1
  h.writeUIntBE(announced, 5, 3);
  Buffer.from("400000000000", "hex").copy(h, 8);
  h.writeUInt16BE(i & 0xffff, 12);
  h.writeUInt32BE(i, 16);
  return h;
}

/** One connection from 127.0.1.<n> that sends a login header and `sent` bytes of its data. */
function halfOpenLogin(target: TargetHandle, i: number, announced: number, sent: number): Promise<Hostile> {
  return new Promise((resolve) => {
    const socket = connect({
      host: target.host,
      port: target.port,
      localAddress: `127.0.1.${1 + (i % SOURCES)}`,
    });
    const h: Hostile = { socket, closed: false, answer: Buffer.alloc(0) };
    socket.on("data", (d: Buffer) => {
      if (h.answer.length < 48) h.answer = Buffer.concat([h.answer, d]);
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      h.closed = true;
      resolve(h);
    });
    socket.on("connect", () => {
      socket.write(loginHeader(announced, i));
      socket.write(Buffer.alloc(sent, 0x41));
      resolve(h);
    });
  });
}

/** Opens the connections in batches, while iscsi-inq logs in again and again; returns its results. */
async function flood(
  target: TargetHandle,
  announced: number,
  sent: number,
): Promise<{ hostile: Hostile[]; logins: number[] }> {
  const hostile: Hostile[] = [];
  const logins: number[] = [];
  let flooding = true;
  const good = (async () => {
    while (flooding || logins.length < 2) {
      const r = await run("iscsi-inq", ["-i", "iqn.2026-11.dev.hasan:good", target.url(0)], {
        timeoutMs: 30_000,
      });
      logins.push(r.code);
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  for (let i = 0; i < CONNECTIONS; i += 200) {
    const batch = [];
    for (let k = i; k < Math.min(CONNECTIONS, i + 200); k++)
      batch.push(halfOpenLogin(target, k, announced, sent));
    hostile.push(...(await Promise.all(batch)));
  }
  // let the target read what was sent
  await new Promise((r) => setTimeout(r, 1000));
  flooding = false;
  await good;
  return { hostile, logins };
}

test(`${CONNECTIONS} half-open logins announcing 255 KiB login PDUs and sending 64 KiB, from ${SOURCES} loopback addresses: each is refused at once with login status 0x0200, resident memory stays under 200 MiB and iscsi-inq logs in meanwhile`, async (t) => {
  const target = await startTarget({ size: "16Mi" });
  const rss = watchResident(target.process.pid!);
  try {
    const before = residentBytes(target.process.pid!);
    const { hostile, logins } = await flood(target, 255 * 1024, 64 * 1024);
    const peak = rss.stop();
    const open = hostile.filter((h) => !h.closed).length;
    t.diagnostic(
      `resident ${(before / MiB).toFixed(0)} MiB before, peak ${(peak / MiB).toFixed(0)} MiB; ${open} hostile connections still open; iscsi-inq logged in ${logins.filter((c) => c === 0).length} of ${logins.length} times`,
    );
    assert.equal(target.process.exitCode, null, "the target is still running");
    assert.ok(logins.length >= 2 && logins.every((c) => c === 0), `iscsi-inq exit codes ${logins.join(",")}`);
    const answered = hostile.filter((h) => h.answer.length >= 48);
    assert.ok(answered.length > CONNECTIONS / 2, `login responses seen: ${answered.length}`);
    for (const h of answered) {
      assert.equal(h.answer[0]! & 0x3f, 0x23, "a Login Response");
      assert.equal(h.answer.readUInt16BE(36), 0x0200, "initiator error");
    }
    assert.equal(open, 0, "the target closed every refused connection");
    assert.ok(peak < RSS_BUDGET, `peak resident ${(peak / MiB).toFixed(0)} MiB`);
  } finally {
    rss.stop();
    await target.stop();
  }
});

test(`${CONNECTIONS} stalled logins within the 8 KiB limit (8 KiB announced, 4 KiB sent) from ${SOURCES} loopback addresses: at most 1024 held, the oldest give way, resident memory stays under 200 MiB and iscsi-inq logs in meanwhile`, async (t) => {
  const target = await startTarget({ size: "16Mi" });
  const rss = watchResident(target.process.pid!);
  try {
    const before = residentBytes(target.process.pid!);
    const { hostile, logins } = await flood(target, 8192, 4096);
    const peak = rss.stop();
    const open = hostile.filter((h) => !h.closed).length;
    t.diagnostic(
      `resident ${(before / MiB).toFixed(0)} MiB before, peak ${(peak / MiB).toFixed(0)} MiB; ${open} hostile connections still open; iscsi-inq logged in ${logins.filter((c) => c === 0).length} of ${logins.length} times`,
    );
    assert.equal(target.process.exitCode, null, "the target is still running");
    assert.ok(logins.length >= 2 && logins.every((c) => c === 0), `iscsi-inq exit codes ${logins.join(",")}`);
    assert.ok(open <= 1024, `connections held: ${open}`);
    assert.ok(peak < RSS_BUDGET, `peak resident ${(peak / MiB).toFixed(0)} MiB`);
    // the login timeout (10 s) ends the rest
    const deadline = Date.now() + 20_000;
    while (hostile.some((h) => !h.closed) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 200));
    assert.equal(hostile.filter((h) => !h.closed).length, 0, "stalled logins end with the login timeout");
  } finally {
    rss.stop();
    await target.stop();
  }
});
