import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  encodeAckBatch,
  encodeFrame,
  FrameDecoder,
  HEADER_BYTES,
  MAGIC,
  ProtocolError,
  type Message,
} from "../../../target/replication/protocol.js";
import { macMatches, newNonce, peerMac } from "../../../target/replication/peer-auth.js";

const join = (parts: Buffer[]) => Buffer.concat(parts);

function header(type: number, jsonLength: number, dataLength: number, magic = MAGIC): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.writeUInt32BE(magic, 0);
  h.writeUInt8(type, 4);
  h.writeUInt32BE(1, 8);
  h.writeUInt32BE(jsonLength, 12);
  h.writeUInt32BE(dataLength, 16);
  return h;
}

describe("peer protocol codec", () => {
  it("round-trips messages, split at every byte boundary", () => {
    const data = randomBytes(3000);
    const stream = join([
      ...encodeFrame("write", 7, { offset: 4096, fua: true }, data),
      ...encodeFrame("heartbeat", 0, { seq: 1, ack: 0 }),
      ...encodeFrame("reply", 7, { ok: false, error: "nope", unavailable: "standby" }),
    ]);
    for (const cut of [1, 5, 19, 20, 21, 100, stream.length - 1]) {
      const d = new FrameDecoder();
      const got: Message[] = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      assert.equal(got.length, 3);
      const w = got[0]!;
      assert.equal(w.type, "write");
      assert.equal(w.id, 7);
      assert.deepEqual(w.body, { offset: 4096, fua: true });
      assert.deepEqual(w.data, data);
      assert.equal(got[2]!.type, "reply");
    }
  });

  it("assembles large payloads across chunks, between small frames, and reuses released buffers", () => {
    const big = randomBytes(256 * 1024);
    const small = randomBytes(4096);
    const stream = join([
      ...encodeFrame("write", 1, { offset: 0, fua: false }, small),
      ...encodeFrame("resyncChunk", 2, { offset: 262144 }, big),
      ...encodeFrame("write", 3, { offset: 8192, fua: false }, small),
    ]);
    for (const size of [1, 7, 1000, 65536, 100_000, stream.length]) {
      const d = new FrameDecoder();
      const got: Message[] = [];
      for (let at = 0; at < stream.length; at += size) got.push(...d.push(stream.subarray(at, at + size)));
      assert.deepEqual(
        got.map((m) => [m.type, m.id]),
        [
          ["write", 1],
          ["resyncChunk", 2],
          ["write", 3],
        ],
        `chunks of ${size}`,
      );
      assert.deepEqual(got[0]!.data, small);
      assert.deepEqual(got[1]!.data, big);
      assert.deepEqual(got[1]!.body, { offset: 262144 });
      assert.deepEqual(got[2]!.data, small);
      // A released buffer carries the next payload of its size.
      d.release(got[1]!.data);
      const again = randomBytes(256 * 1024);
      const [next] = d.push(join(encodeFrame("resyncChunk", 4, { offset: 0 }, again)));
      assert.equal(next!.data, got[1]!.data, "the same buffer, reused");
      assert.deepEqual(next!.data, again);
    }
  });

  it("reading into one reused buffer: large payloads land in place, nothing points into the buffer", () => {
    const big = randomBytes(300 * 1024);
    const smalls = Array.from({ length: 20 }, () => randomBytes(4096));
    const stream = join([
      ...smalls
        .slice(0, 10)
        .flatMap((d, i) => encodeFrame("write", i + 1, { offset: i * 4096, fua: false }, d)),
      ...encodeFrame("resyncChunk", 100, { offset: 0 }, big),
      ...smalls
        .slice(10)
        .flatMap((d, i) => encodeFrame("write", i + 11, { offset: i * 4096, fua: false }, d)),
      ...encodeFrame("reply", 7, { ok: true }),
    ]);
    for (const readSize of [13, 4096, 70_000]) {
      const d = new FrameDecoder({ chunksReused: true });
      const scratch = Buffer.alloc(64 * 1024);
      const got: Message[] = [];
      let inPlace = 0;
      for (let at = 0; at < stream.length;) {
        const target = d.readTarget(scratch);
        if (target !== scratch) inPlace++;
        const n = Math.min(target.length, readSize, stream.length - at);
        stream.copy(target, 0, at, at + n);
        at += n;
        got.push(...d.pushRead(target, n));
        scratch.fill(0xee); // the socket reuses its buffer for the next read
      }
      assert.equal(got.length, 22, `reads of ${readSize}`);
      got.slice(0, 10).forEach((m, i) => assert.deepEqual(m.data, smalls[i], `small ${i}`));
      assert.deepEqual(got[10]!.data, big);
      got.slice(11, 21).forEach((m, i) => assert.deepEqual(m.data, smalls[10 + i], `small ${10 + i}`));
      assert.equal(got[21]!.type, "reply");
      assert.ok(inPlace > 0, "the rest of the large payload is read straight into its buffer");
    }
  });

  it("refuses a large frame with a bad body before taking its payload", () => {
    const d = new FrameDecoder();
    const json = Buffer.from('{"offset":-5}');
    assert.throws(
      () => d.push(join([header(14, json.length, 1 << 20), json, Buffer.alloc(100)])),
      (e: unknown) => e instanceof ProtocolError && /invalid body/.test(e.message),
    );
  });

  const refuse = (name: string, bytes: Buffer, pattern: RegExp) =>
    it(`refuses ${name}`, () => {
      assert.throws(
        () => new FrameDecoder().push(bytes),
        (e: unknown) => e instanceof ProtocolError && pattern.test(e.message),
      );
    });
  refuse("a bad magic", Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), /bad magic/);
  refuse("an unknown type", header(200, 2, 0), /unknown message type/);
  refuse("an oversized JSON part", header(4, 10_000_000, 0), /too large/);
  refuse("an oversized data part", header(7, 2, 0x7fffffff), /too large/);
  refuse("data on a type that carries none", header(4, 2, 10), /unexpected data/);
  refuse("a body that is not JSON", join([header(4, 3, 0), Buffer.from("{{{")]), /not valid JSON/);
  refuse(
    "a body failing the schema",
    join([header(7, 14, 0), Buffer.from('{"offset":-1}!')]),
    /JSON|invalid/,
  );
  refuse("unknown fields", join([header(4, 9, 0), Buffer.from('{"evil":1')]), /JSON|invalid/);

  it("the frames of a mirrored write have binary bodies that round-trip every offset and flag", () => {
    const data = randomBytes(4096);
    const offsets = [0, 4096, 2 ** 32 - 512, 2 ** 32, 2 ** 40 + 512, Number.MAX_SAFE_INTEGER];
    const frames = [
      ...offsets.map((offset, i) => encodeFrame("write", i + 1, { offset, fua: i % 2 === 0 }, data)),
      encodeFrame("forwardWrite", 20, { offset: 8192, fua: true }, data),
      encodeFrame("reply", 21, { ok: true }),
      encodeFrame("reply", 22, { ok: true, result: -1 }),
      encodeFrame("reply", 23, { ok: true, result: 123_456 }),
      encodeFrame("reply", 24, { ok: true }, Buffer.from("read data")),
    ];
    for (const f of frames) assert.equal(f[0]![5], 0x01, "binary body flag");
    const got = new FrameDecoder().push(join(frames.flat()));
    assert.deepEqual(
      got.map((m) => [m.type, m.id, m.body]),
      [
        ...offsets.map((offset, i) => ["write", i + 1, { offset, fua: i % 2 === 0 }]),
        ["forwardWrite", 20, { offset: 8192, fua: true }],
        ["reply", 21, { ok: true }],
        ["reply", 22, { ok: true, result: -1 }],
        ["reply", 23, { ok: true, result: 123_456 }],
        ["reply", 24, { ok: true }],
      ],
    );
    assert.deepEqual(got[0]!.data, data);
    assert.equal(got.at(-1)!.data.toString(), "read data");
  });

  it("a reply that is not a plain success keeps its JSON body", () => {
    const frame = encodeFrame("reply", 9, { ok: false, error: "disk failed", unavailable: "unavailable" });
    assert.equal(frame[0]![5], 0, "no binary body flag");
    const [m] = new FrameDecoder().push(join(frame));
    assert.deepEqual(m!.body, { ok: false, error: "disk failed", unavailable: "unavailable" });
  });

  it("one frame of batched acknowledgements gives one reply { ok: true } per id, in order", () => {
    const ids = [5, 1, 0xfffffff0, 77];
    const got = new FrameDecoder().push(encodeAckBatch(ids));
    assert.deepEqual(
      got.map((m) => [m.type, m.id, m.body, m.data.length]),
      ids.map((id) => ["reply", id, { ok: true }, 0]),
    );
    assert.throws(() => encodeAckBatch([]), ProtocolError);
    assert.throws(() => encodeAckBatch(new Array<number>(1025).fill(1)), ProtocolError);
  });

  /** A frame of `type` with header flags `flags` and `body`, built by hand. */
  const flagged = (type: number, flags: number, body: Buffer, data = Buffer.alloc(0), id = 1) => {
    const h = header(type, body.length, data.length);
    h.writeUInt8(flags, 5);
    h.writeUInt32BE(id, 8);
    return join([h, body, data]);
  };
  const writeBody = (high: number, low: number, bits: number) => {
    const b = Buffer.alloc(9);
    b.writeUInt32BE(high, 0);
    b.writeUInt32BE(low, 4);
    b.writeUInt8(bits, 8);
    return b;
  };
  refuse("a binary body on a type that has none", flagged(4, 0x01, Buffer.alloc(8)), /invalid binary body/);
  refuse("a binary write body of another length", flagged(7, 0x01, Buffer.alloc(8)), /invalid binary body/);
  refuse("a binary write offset beyond 2^53", flagged(7, 0x01, writeBody(0x200000, 0, 0)), /beyond 2\^53/);
  refuse("unknown binary write flags", flagged(7, 0x01, writeBody(0, 0, 0x02)), /unknown write flags/);
  refuse("a binary reply of another length", flagged(16, 0x01, Buffer.alloc(3)), /invalid binary body/);
  refuse("an unknown header flag", flagged(16, 0x04, Buffer.alloc(0)), /reserved header bits/);
  refuse("a batch flag without a binary body", flagged(16, 0x02, Buffer.from("{}")), /reserved header bits/);
  refuse("a batch of acknowledgements on a write", flagged(7, 0x03, Buffer.alloc(4, 1)), /only replies/);
  refuse(
    "a batch of acknowledgements with an id",
    flagged(16, 0x03, Buffer.alloc(4, 1), undefined, 7),
    /not 0/,
  );
  refuse(
    "a batch of acknowledgements listing id 0",
    flagged(16, 0x03, Buffer.alloc(8), undefined, 0),
    /id 0/,
  );
  refuse(
    "an empty batch of acknowledgements",
    flagged(16, 0x03, Buffer.alloc(0), undefined, 0),
    /of 0 bytes/,
  );
  refuse(
    "a batch of acknowledgements carrying data",
    flagged(16, 0x03, Buffer.alloc(4, 1), Buffer.alloc(4), 0),
    /carries data/,
  );

  it("never crashes on random garbage: it either waits for more bytes or refuses", () => {
    for (let i = 0; i < 2000; i++) {
      const d = new FrameDecoder();
      const junk = randomBytes(4 + (i % 200));
      if (i % 3 === 0) junk.writeUInt32BE(MAGIC, 0);
      try {
        d.push(junk);
      } catch (e) {
        assert.ok(e instanceof ProtocolError, `unexpected ${String(e)}`);
      }
    }
  });
});

describe("peer authentication", () => {
  it("accepts the right MAC and refuses a wrong secret or a reflected one", () => {
    const secret = Buffer.from("s3cret");
    const na = newNonce();
    const nb = newNonce();
    const mac = peerMac(secret, "b", na, nb);
    assert.ok(macMatches(peerMac(secret, "b", na, nb), mac));
    assert.ok(!macMatches(peerMac(Buffer.from("other"), "b", na, nb), mac));
    assert.ok(!macMatches(peerMac(secret, "a", na, nb), mac), "a MAC for b cannot pass as a's");
  });
});
