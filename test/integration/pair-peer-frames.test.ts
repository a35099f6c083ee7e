/**
 * The peer link between two real node processes with a man in the middle (the proxy on the link):
 * every frame after the handshake is sealed, so what he alters, replays or injects is refused and
 * never applied, and what he reads is no plaintext; strangers on the peer port before
 * authentication cannot keep the partner out nor make a node allocate.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { open } from "node:fs/promises";
import net from "node:net";
import { encodeFrame, HEADER_BYTES, MAGIC } from "../../target/replication/protocol.js";
import { IoError, PairHarness, type Node } from "../support/pair-harness.js";
import type { StreamUnit } from "../support/pair-proxy.js";
import { MiB, residentBytes } from "../support/process-memory.js";

let h: PairHarness;
afterEach(() => h?.cleanup());

const REFUSED = "refused a sealed record from the peer that failed authentication";

async function started(
  o: { startB?: boolean; tap?: (u: StreamUnit) => Buffer[]; records?: "authenticated" } = {},
): Promise<PairHarness> {
  h = new PairHarness(o.records ? { records: o.records } : {});
  await h.setup();
  if (o.tap) h.proxy.tap = o.tap;
  await Promise.all([h.start("a"), ...(o.startB === false ? [] : [h.start("b")])]);
  if (o.startB !== false) await h.waitInSync();
  return h;
}

/** Bytes of node n's LUN file (what its disk holds, whatever the pair's state). */
async function onDisk(n: Node, offset: number, length: number): Promise<Buffer> {
  const f = await open(h.lunPath(n), "r");
  try {
    const b = Buffer.alloc(length);
    await f.read(b, 0, length, offset);
    return b;
  } finally {
    await f.close();
  }
}

/** A client writing until a node acknowledges it (an unavailable pair is retried, as initiators do). */
async function clientWrite(offset: number, data: Buffer): Promise<void> {
  const t0 = Date.now();
  for (let i = 0; ; i++) {
    const n: Node = i % 2 === 0 ? "a" : "b";
    try {
      await h.write(n, offset, data);
      return;
    } catch (e) {
      if (!(e instanceof IoError) || Date.now() - t0 > 60_000) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function refusedRecords(n: Node): Promise<string[]> {
  return (await h.logText(n)).split("\n").filter((l) => l.includes(REFUSED));
}

/** Both readable through both portals, the LUN files identical. */
async function bothHold(offset: number, data: Buffer): Promise<void> {
  assert.deepEqual(await h.read("a", offset, data.length), data, "read through portal a");
  assert.deepEqual(await h.read("b", offset, data.length), data, "read through portal b");
  await Promise.all([h.flush("a"), h.flush("b")]);
  assert.equal(await h.fileHash("a"), await h.fileHash("b"));
}

const isWriteRecord = (u: StreamUnit) =>
  u.dir === "a-to-b" && u.kind === "record" && u.bytes.length > 64 * 1024;

/**
 * A byte flipped in a write's record on the wire: node b refuses it and closes the link, nothing of
 * the write reaches b's disk, and after the resync both portals read what the client wrote.
 */
async function flippedWriteRecordRefused(records?: "authenticated"): Promise<void> {
  let armed = false;
  let flipped = false;
  await started({
    ...(records ? { records } : {}),
    tap: (u) => {
      if (!armed || flipped || !isWriteRecord(u)) return [u.bytes];
      flipped = true;
      // keep the pair apart until the test has looked at b's disk
      h.proxy.refuseNew = true;
      const bad = Buffer.from(u.bytes);
      bad[bad.length >> 1]! ^= 0x20;
      return [bad];
    },
  });
  const offset = 3 * MiB;
  const before = await onDisk("b", offset, 256 * 1024);
  const data = randomBytes(256 * 1024);
  armed = true;
  const write = h.write("a", offset, data).then(
    () => null,
    (e: Error) => e,
  );
  await h.waitFor("b refused the altered record", async () => (await refusedRecords("b")).length > 0, 20_000);
  assert.ok(flipped);
  assert.match((await refusedRecords("b"))[0]!, /failed authentication \(bad tag\)/);
  const outcome = await write;
  if (outcome && !(outcome instanceof IoError)) throw outcome;
  assert.deepEqual(
    await onDisk("b", offset, data.length),
    before,
    "nothing of the altered write reached b's disk",
  );
  h.proxy.refuseNew = false;
  await h.waitInSync();
  // a write the pair did not acknowledge is retried by the client
  if (outcome) await clientWrite(offset, data);
  await h.waitInSync();
  await bothHold(offset, data);
}

describe("pair: the peer link's frames are sealed", { timeout: 300_000 }, () => {
  it("a byte flipped in a write's sealed record on the wire: node b refuses it and closes the link, the write is not on b's disk, and after the resync both portals read what the client wrote", async () => {
    await flippedWriteRecordRefused();
  });

  it("a sealed write record replayed by a man in the middle after the handshake: node b refuses it and does not apply it again; the pair recovers", async () => {
    let capture = false;
    let captured: Buffer | null = null;
    await started({
      tap: (u) => {
        if (capture && !captured && isWriteRecord(u)) captured = Buffer.from(u.bytes);
        return [u.bytes];
      },
    });
    const offset = 5 * MiB;
    const first = randomBytes(128 * 1024);
    const second = randomBytes(128 * 1024);
    capture = true;
    await h.write("a", offset, first);
    assert.ok(captured, "the proxy kept the record of the first write");
    await h.write("a", offset, second);
    assert.deepEqual(await onDisk("b", offset, second.length), second);
    h.proxy.refuseNew = true;
    h.proxy.inject("a-to-b", captured);
    await h.waitFor(
      "b refused the replayed record",
      async () => (await refusedRecords("b")).length > 0,
      20_000,
    );
    assert.deepEqual(await onDisk("b", offset, second.length), second, "the replayed write was not applied");
    h.proxy.refuseNew = false;
    await h.waitInSync();
    await bothHold(offset, second);
  });

  it("an unsealed write frame injected by a man in the middle after the handshake: node b refuses it as not sealed and applies nothing", async () => {
    await started({ tap: (u) => [u.bytes] });
    const offset = 7 * MiB;
    const forged = Buffer.alloc(64 * 1024, 0x66);
    h.proxy.refuseNew = true;
    h.proxy.inject("a-to-b", Buffer.concat(encodeFrame("write", 1, { offset, fua: false }, forged)));
    await h.waitFor(
      "b refused the injected frame",
      async () => (await refusedRecords("b")).length > 0,
      20_000,
    );
    assert.match((await refusedRecords("b"))[0]!, /an unsealed frame where a sealed record was due/);
    assert.deepEqual(
      await onDisk("b", offset, forged.length),
      Buffer.alloc(forged.length),
      "nothing applied",
    );
    h.proxy.refuseNew = false;
    await h.waitInSync();
    await bothHold(offset, Buffer.alloc(forged.length));
  });

  it("what crosses the wire between the nodes (mirrored and forwarded writes, reads, a resync) never contains the written data in plaintext", async () => {
    const wire: Buffer[] = [];
    let bytes = 0;
    await started({
      tap: (u) => {
        wire.push(u.bytes);
        bytes += u.bytes.length;
        return [u.bytes];
      },
    });
    assert.equal((await h.status("a")).peer.records, "encrypted");
    const pattern = (tag: string) => Buffer.alloc(64 * 1024, `HASAN-PLAINTEXT-${tag}-`);
    await h.write("a", 0, pattern("A"));
    await h.write("b", MiB, pattern("B"));
    assert.deepEqual(await h.read("b", 0, 65536), pattern("A"));
    assert.deepEqual(await h.read("a", MiB, 65536), pattern("B"));
    await h.kill("b");
    await h.waitFor("a serving alone", async () => (await h.status("a")).serving);
    await h.write("a", 2 * MiB, pattern("R"));
    await h.start("b");
    await h.waitInSync();
    assert.deepEqual(await h.read("b", 2 * MiB, 65536), pattern("R"), "resynced");
    const all = Buffer.concat(wire);
    assert.ok(bytes > 3 * 65536, `the proxy saw the traffic (${bytes} bytes)`);
    assert.equal(all.indexOf("HASAN-PLAINTEXT"), -1, "no written data in plaintext on the wire");
    assert.equal(all.indexOf('"offset"'), -1, "nor the frames' JSON");
  });
});

describe("pair: authenticated records (both nodes ask for them)", { timeout: 300_000 }, () => {
  it("the written data crosses the link readable, under records the partner checks: mirrored and forwarded writes and a resync reach both copies", async () => {
    const wire: Buffer[] = [];
    await started({
      records: "authenticated",
      tap: (u) => {
        wire.push(u.bytes);
        return [u.bytes];
      },
    });
    for (const n of ["a", "b"] as const) {
      const peer = (await h.status(n)).peer;
      assert.deepEqual([peer.records, peer.protocol], ["authenticated", 7], `node ${n} reports the link`);
    }
    const pattern = (tag: string) => Buffer.alloc(64 * 1024, `HASAN-PLAINTEXT-${tag}-`);
    await h.write("a", 0, pattern("A"));
    await h.write("b", MiB, pattern("B"));
    await h.kill("b");
    await h.waitFor("a serving alone", async () => (await h.status("a")).serving);
    await h.write("a", 2 * MiB, pattern("R"));
    await h.start("b");
    await h.waitInSync();
    const all = Buffer.concat(wire);
    for (const tag of ["A", "B", "R"])
      assert.notEqual(all.indexOf(`HASAN-PLAINTEXT-${tag}-`), -1, `write ${tag} crossed in plain`);
    assert.ok(
      wire.every((u) => u.readUInt32BE(0) !== 0x48534e53),
      "no encrypted record: both nodes agreed on authenticated ones",
    );
    await bothHold(0, pattern("A"));
    await bothHold(MiB, pattern("B"));
    await bothHold(2 * MiB, pattern("R"));
  });

  it("a byte flipped in a write's authenticated record: node b refuses it, applies nothing, and the pair recovers", async () => {
    await flippedWriteRecordRefused("authenticated");
  });
});

describe("pair: the peer port before authentication", { timeout: 300_000 }, () => {
  it("200 idle unauthenticated connections to node b's peer port: node a still connects and the pair reaches Working", async () => {
    h = new PairHarness();
    await h.setup();
    await h.start("b");
    const strangers = await Promise.all(
      Array.from(
        { length: 200 },
        () =>
          new Promise<net.Socket>((resolve) => {
            const s = net.connect({ host: "127.0.0.1", port: h.peerListenPort() }, () => resolve(s));
            s.on("error", () => undefined);
          }),
      ),
    );
    try {
      await h.start("a");
      const t0 = Date.now();
      // sooner than any stranger's handshake deadline (3 s): none of them held the partner out
      await h.waitFor("node b linked with node a", async () => (await h.status("b")).peer.connected, 2500);
      assert.ok(Date.now() - t0 < 2500);
      await h.waitInSync(30_000);
      assert.match(await h.logText("b"), /all slots for unauthenticated connections taken; dropped one/);
      const data = randomBytes(65536);
      await h.write("a", 0, data);
      await bothHold(0, data);
    } finally {
      for (const s of strangers) s.destroy();
    }
  });

  it("a frame header announcing 64 MiB before authentication: node b closes the connection at once, its RSS grows by less than 4 MiB, and the pair stays Working", async () => {
    await started();
    const pid = h.pid("b");
    const rssBefore = residentBytes(pid);
    const json = Buffer.from(JSON.stringify({ offset: 0, fua: false }));
    const head = Buffer.alloc(HEADER_BYTES);
    head.writeUInt32BE(MAGIC, 0);
    head.writeUInt8(7, 4); // write
    head.writeUInt32BE(json.length, 12);
    head.writeUInt32BE(64 * MiB, 16);
    const s = net.connect({ host: "127.0.0.1", port: h.peerListenPort() });
    s.on("error", () => undefined);
    await new Promise<void>((r) => s.once("connect", () => r()));
    const closed = new Promise<void>((r) => s.once("close", () => r()));
    s.write(Buffer.concat([head, json]));
    // then stream what the header announced, as long as b takes it
    let sent = 0;
    const chunk = Buffer.alloc(MiB, 0x5a);
    const pump = async () => {
      while (!s.destroyed && sent < 32 * MiB) {
        if (!s.write(chunk)) await new Promise((r) => setTimeout(r, 5));
        sent += MiB;
      }
    };
    void pump();
    const t0 = Date.now();
    await closed;
    const after = Date.now() - t0;
    assert.ok(after < 2000, `closed after ${after} ms, before the handshake deadline`);
    const grew = residentBytes(pid) - rssBefore;
    assert.ok(grew < 4 * MiB, `node b's RSS grew by ${(grew / MiB).toFixed(1)} MiB`);
    assert.equal((await h.status("b")).state, "Working");
    assert.equal((await h.status("a")).state, "Working");
  });
});
