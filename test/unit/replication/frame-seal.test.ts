/**
 * Peer protocol 3's protection of the frames after the handshake: session keys (peer-keys.ts),
 * sealed records (frame-seal.ts), the plain handshake's bounds (protocol.ts), and the link end to
 * end over loopback with a man in the middle.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  AUTHENTICATED_RECORD_MAGIC,
  FrameAuthError,
  RECORD_MAGIC,
  RecordOpener,
  RecordSealer,
  RECORD_HEADER_BYTES,
  TAG_BYTES,
} from "../../../target/replication/frame-seal.js";
import { commonSecrets, newNonce, peerProofs } from "../../../target/replication/peer-auth.js";
import { recordKey, sessionKeys } from "../../../target/replication/peer-keys.js";
import {
  encodeFrame,
  frameBytes,
  FrameDecoder,
  HEADER_BYTES,
  MAGIC,
  PRE_AUTH_MAX_FRAME_BYTES,
  ProtocolError,
  type LinkProtection,
  type Message,
} from "../../../target/replication/protocol.js";
import { throughMitm } from "../../support/peer-mitm.js";
import { waitFor } from "../../support/processes.js";
import {
  heartbeatFrame as heartbeat,
  openInPieces as open,
  sealRecord as seal,
  writeFrame as write,
} from "../../support/sealed-records.js";

const [na, nb] = [newNonce(), newNonce()];
const secret = [Buffer.from("the-pair-secret")];

describe("session keys", () => {
  it("both ends derive the same keys: what a seals with, b opens with, and the other way round", () => {
    const a = sessionKeys(secret, "a", na, nb);
    const b = sessionKeys(secret, "b", na, nb);
    assert.deepEqual(a.send, b.receive);
    assert.deepEqual(a.receive, b.send);
    assert.equal(a.send.length, 32);
  });

  it("the two directions have different keys (a node's own records reflected to it do not open)", () => {
    const a = sessionKeys(secret, "a", na, nb);
    assert.notDeepEqual(a.send, a.receive);
  });

  it("other nonces (another connection), swapped nonces or another secret give other keys", () => {
    const a = sessionKeys(secret, "a", na, nb);
    assert.notDeepEqual(sessionKeys(secret, "a", na, newNonce()).send, a.send);
    assert.notDeepEqual(sessionKeys(secret, "a", newNonce(), nb).send, a.send);
    assert.notDeepEqual(sessionKeys(secret, "a", nb, na).send, a.send);
    assert.notDeepEqual(sessionKeys([Buffer.from("another-secret")], "a", na, nb).send, a.send);
  });

  it("two nodes mid-rotation listing their common secrets in another order derive the same keys", () => {
    const [x, y] = [Buffer.from("secret-x-123456"), Buffer.from("secret-y-123456")];
    // a accepts [x, y], b accepts [y, x]: each keeps the secrets the other proved
    const aCommon = commonSecrets([x, y], "b", na, nb, peerProofs([y, x], "b", na, nb));
    const bCommon = commonSecrets([y, x], "a", na, nb, peerProofs([x, y], "a", na, nb));
    assert.equal(aCommon.length, 2);
    assert.deepEqual(sessionKeys(aCommon, "a", na, nb).send, sessionKeys(bCommon, "b", na, nb).receive);
    // a partner that proved only one of them: both keep that one
    const only = commonSecrets([x, y], "b", na, nb, peerProofs([y], "b", na, nb));
    assert.deepEqual(only, [y]);
  });

  it("each record key epoch has its own key", () => {
    const t = sessionKeys(secret, "a", na, nb).send;
    assert.notDeepEqual(recordKey(t, 0), recordKey(t, 1));
  });

  it("refuses to derive keys without a common secret", () => {
    assert.throws(() => sessionKeys([], "a", na, nb), /no common peer secret/);
  });
});

/** The kind of record the "sealed records" tests run with (each runs for both). */
let protection: LinkProtection = "encrypted";

/**
 * A sealer of a's records and the opener b has for them; the opener's decoder copies what it
 * keeps, because open() reuses its read buffer as the link does.
 */
function pairOfEnds(o: { rekeyBytes?: number } = {}) {
  const a = sessionKeys(secret, "a", na, nb, protection);
  const b = sessionKeys(secret, "b", na, nb, protection);
  const opts = { ...o, protection };
  return {
    sealer: new RecordSealer(a.send, opts),
    opener: new RecordOpener(b.receive, new FrameDecoder({ chunksReused: true }), opts),
    /** a's opener for b's records: what a reflected record of a's own reaches */
    reflected: new RecordOpener(a.receive, new FrameDecoder(), { protection }),
  };
}

const refusedAsTampered = (e: unknown) =>
  e instanceof FrameAuthError && /failed authentication/.test(e.message);

for (const kind of ["encrypted", "authenticated"] as const)
  describe(`sealed records (${kind})`, () => {
    before(() => (protection = kind));

    it("frames sealed in records open in order, whatever the pieces the bytes arrive in", () => {
      const data = Array.from({ length: 8 }, () => randomBytes(4096));
      const big = randomBytes(1 << 20);
      for (const step of [1, 7, 4096, 65_536, 1 << 22]) {
        const { sealer, opener } = pairOfEnds();
        const wire = Buffer.concat([
          seal(sealer, heartbeat(1), ...data.map((d, i) => write(i + 1, d))),
          seal(sealer, encodeFrame("resyncChunk", 0, { offset: 0 }, big)),
          seal(sealer, heartbeat(2)),
        ]);
        const got = open(opener, wire, step);
        assert.equal(got.length, 11, `pieces of ${step}`);
        assert.equal(got[0]!.type, "heartbeat");
        data.forEach((d, i) => assert.deepEqual(got[i + 1]!.data, d));
        assert.deepEqual(got[9]!.data, big);
        assert.equal(opener.count, 3);
      }
    });

    if (kind === "encrypted")
      it("the written data does not appear in the sealed bytes", () => {
        const { sealer } = pairOfEnds();
        const pattern = Buffer.alloc(4096, "HASAN-PLAINTEXT-");
        const wire = seal(sealer, write(1, pattern));
        assert.equal(wire.indexOf("HASAN-PLAINTEXT-"), -1);
        assert.equal(wire.indexOf('"offset"'), -1, "the frame's JSON is sealed too");
      });

    it("a byte flipped anywhere in a record (header, frames, tag) is refused and none of its frames is given out", () => {
      const { sealer } = pairOfEnds();
      const wire = seal(sealer, heartbeat(1), write(1, randomBytes(4096)));
      for (const at of [
        1,
        RECORD_HEADER_BYTES,
        RECORD_HEADER_BYTES + HEADER_BYTES + 3,
        2000,
        wire.length - 1,
      ]) {
        const { opener } = pairOfEnds();
        const bad = Buffer.from(wire);
        bad[at]! ^= 0x01;
        const got: Message[] = [];
        assert.throws(
          () => got.push(...open(opener, bad, 512)),
          (e: unknown) => e instanceof ProtocolError,
          `byte ${at}`,
        );
        assert.equal(got.length, 0, `nothing given out (byte ${at})`);
      }
      const { opener } = pairOfEnds();
      const bad = Buffer.from(wire);
      bad[wire.length - TAG_BYTES - 10]! ^= 0x80;
      assert.throws(() => open(opener, bad), refusedAsTampered);
      // a shorter length in the header: the record's last byte is taken for its tag
      const short = Buffer.from(wire);
      short.writeUInt32BE(short.readUInt32BE(4) - 1, 4);
      assert.throws(() => open(pairOfEnds().opener, short), refusedAsTampered);
    });

    it("a replayed record is refused", () => {
      const { sealer, opener } = pairOfEnds();
      const r1 = seal(sealer, write(1, randomBytes(4096)));
      assert.equal(open(opener, r1).length, 1);
      assert.throws(() => open(opener, r1), refusedAsTampered);
    });

    it("reordered records are refused", () => {
      const { sealer, opener } = pairOfEnds();
      const r1 = seal(sealer, write(1, randomBytes(4096)));
      const r2 = seal(sealer, write(2, randomBytes(4096)));
      assert.throws(() => open(opener, Buffer.concat([r2, r1])), refusedAsTampered);
    });

    it("a dropped record makes the next one refused", () => {
      const { sealer, opener } = pairOfEnds();
      seal(sealer, write(1, randomBytes(4096)));
      const r2 = seal(sealer, write(2, randomBytes(4096)));
      assert.throws(() => open(opener, r2), refusedAsTampered);
    });

    it("a record reflected back to its sender, or opened by another connection, is refused", () => {
      const { sealer, reflected } = pairOfEnds();
      const r1 = seal(sealer, heartbeat(1));
      assert.throws(() => open(reflected, r1), refusedAsTampered);
      const other = new RecordOpener(
        sessionKeys(secret, "b", na, newNonce(), kind).receive,
        new FrameDecoder(),
        {
          protection: kind,
        },
      );
      assert.throws(() => open(other, r1), refusedAsTampered);
    });

    it("an unsealed (version 2) frame injected after authentication is refused as not sealed", () => {
      const { opener } = pairOfEnds();
      const plain = Buffer.concat(write(1, randomBytes(4096)));
      assert.throws(
        () => open(opener, plain),
        (e: unknown) =>
          e instanceof FrameAuthError && /an unsealed frame where a sealed record was due/.test(e.message),
      );
    });

    it("a forged record header announcing more than the largest frame is refused before anything is read", () => {
      const { opener } = pairOfEnds();
      const head = Buffer.alloc(RECORD_HEADER_BYTES);
      head.writeUInt32BE(kind === "encrypted" ? RECORD_MAGIC : AUTHENTICATED_RECORD_MAGIC, 0);
      head.writeUInt32BE(0xffffffff, 4);
      assert.throws(
        () => opener.push(head),
        (e: unknown) => e instanceof FrameAuthError && /cannot hold/.test(e.message),
      );
    });

    it("a sealed frame announcing more than its record holds is refused before its payload is taken", () => {
      const { sealer, opener } = pairOfEnds();
      const json = Buffer.from('{"offset":0,"fua":false}');
      const head = Buffer.alloc(HEADER_BYTES);
      head.writeUInt32BE(MAGIC, 0);
      head.writeUInt8(7, 4); // write
      head.writeUInt32BE(json.length, 12);
      head.writeUInt32BE(64 * 1024 * 1024, 16);
      const parts = [head, json, Buffer.alloc(4096)];
      const record = Buffer.concat(sealer.seal(parts, frameBytes(parts)));
      assert.throws(
        () => open(opener, record),
        (e: unknown) =>
          e instanceof ProtocolError &&
          !(e instanceof FrameAuthError) &&
          /more than the 4120 a frame may carry in its sealed record/.test(e.message),
      );
    });

    it("keys change every rekeyBytes at the same record on both ends", () => {
      const { sealer, opener } = pairOfEnds({ rekeyBytes: 10_000 });
      for (let i = 1; i <= 20; i++) {
        const d = randomBytes(4096);
        const [m] = open(opener, seal(sealer, write(i, d)));
        assert.deepEqual(m!.data, d);
      }
      // an opener that never changes key fails once the sealer moved on
      const { sealer: s2 } = pairOfEnds({ rekeyBytes: 10_000 });
      const stale = new RecordOpener(sessionKeys(secret, "b", na, nb, kind).receive, new FrameDecoder(), {
        rekeyBytes: 1e12,
        protection: kind,
      });
      assert.throws(() => {
        for (let i = 1; i <= 5; i++) open(stale, seal(s2, write(i, randomBytes(4096))));
      }, refusedAsTampered);
    });
  });

describe("the handshake's plain frames", () => {
  const preAuth = () =>
    new FrameDecoder({ limit: { bytes: PRE_AUTH_MAX_FRAME_BYTES, what: "before authentication" } });

  it("a pre-auth frame header announcing 64 MiB is refused from its 20 header bytes, before any allocation", () => {
    const head = Buffer.alloc(HEADER_BYTES);
    head.writeUInt32BE(MAGIC, 0);
    head.writeUInt8(7, 4); // write
    head.writeUInt32BE(16, 12);
    head.writeUInt32BE(64 * 1024 * 1024, 16);
    assert.throws(
      () => preAuth().push(head),
      (e: unknown) =>
        e instanceof ProtocolError &&
        /announces 67108880 bytes, more than the 4096 a frame may carry before authentication/.test(
          e.message,
        ),
    );
  });

  it("a hello of 4 KiB or less passes; push(chunk, 1) stops after one frame and leaves the rest unread", () => {
    const d = preAuth();
    const hello = Buffer.concat(encodeFrame("hello", 0, { node: "a", nonce: newNonce(), version: 3 }));
    const after = Buffer.from("HSNS-sealed-bytes-follow");
    const [m, ...more] = d.push(Buffer.concat([hello, after]), 1);
    assert.equal(m!.type, "hello");
    assert.equal(more.length, 0);
    assert.deepEqual(d.takeRest(), after);
    assert.ok(d.idle);
  });
});

describe("the peer link on the wire", () => {
  const links: Array<{ close: () => void }> = [];
  after(() => links.forEach((l) => l.close()));

  it("what crosses the wire after the handshake does not contain the written data", async () => {
    const l = await throughMitm();
    links.push(l);
    const pattern = Buffer.alloc(64 * 1024, "HASAN-PLAINTEXT-");
    l.a.send("write", { offset: 0, fua: false }, pattern, 1);
    await waitFor("b got the write", async () => l.atB.some((m) => m.type === "write"), 5000, 10);
    const w = l.atB.find((m) => m.type === "write")!;
    assert.deepEqual(w.data, pattern);
    assert.equal(Buffer.concat(l.seen.aToB).indexOf("HASAN-PLAINTEXT-"), -1);
  });

  it("a frame injected by a man in the middle after the handshake is refused: the link closes and b applies nothing", async () => {
    const l = await throughMitm();
    links.push(l);
    l.inject(Buffer.concat(encodeFrame("write", 1, { offset: 0, fua: false }, Buffer.alloc(4096, 1))));
    await waitFor("b closed the link", async () => l.b.closed, 5000, 10);
    assert.equal(l.atB.filter((m) => m.type === "write").length, 0);
  });

  it("a record replayed by a man in the middle is refused: the link closes and the write is applied once", async () => {
    const l = await throughMitm();
    links.push(l);
    let captured: Buffer | null = null;
    // records cross whole here (small, one write each): keep the one carrying the write
    l.alter((chunk) => {
      if (chunk.length > 4096 && !captured) captured = Buffer.from(chunk);
      return chunk;
    });
    l.a.send("write", { offset: 0, fua: false }, Buffer.alloc(4096, 7), 1);
    await waitFor("b got the write", async () => l.atB.length === 1, 5000, 10);
    assert.ok(captured, "captured the record");
    l.alter(null);
    l.inject(captured);
    await waitFor("b closed the link", async () => l.b.closed, 5000, 10);
    assert.equal(l.atB.filter((m) => m.type === "write").length, 1, "applied once");
  });

  it("a byte flipped in a write's record is refused: the link closes with a clear reason and b applies nothing", async () => {
    const l = await throughMitm();
    links.push(l);
    let reason = "";
    l.b.onClosed = (r) => (reason = r);
    l.alter((chunk) => {
      if (chunk.length <= 4096) return chunk;
      const bad = Buffer.from(chunk);
      bad[bad.length >> 1]! ^= 0x04;
      return bad;
    });
    l.a.send("write", { offset: 0, fua: false }, Buffer.alloc(64 * 1024, 9), 1);
    await waitFor("b closed the link", async () => l.b.closed, 5000, 10);
    assert.match(
      reason,
      /frame authentication failed: sealed record \d+ from the partner failed authentication \(bad tag\)/,
    );
    assert.equal(l.atB.filter((m) => m.type === "write").length, 0);
  });
});
