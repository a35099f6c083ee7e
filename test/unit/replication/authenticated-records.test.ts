/**
 * Authenticated records (peer protocol 7): frames cross in plain under a GMAC tag when both nodes
 * ask for it, and a handshake altered to weaken the records closes the link. What a tag refuses
 * (flipped bytes, replay, reorder, drop) is tested for both kinds in frame-seal.test.ts.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  AUTHENTICATED_RECORD_MAGIC,
  FrameAuthError,
  RECORD_HEADER_BYTES,
  RECORD_MAGIC,
  RecordOpener,
  RecordSealer,
  TAG_BYTES,
} from "../../../target/replication/frame-seal.js";
import { newNonce } from "../../../target/replication/peer-auth.js";
import { sessionKeys } from "../../../target/replication/peer-keys.js";
import {
  encodeFrame,
  frameBytes,
  FrameDecoder,
  PEER_PROTOCOL_VERSION,
  type LinkProtection,
} from "../../../target/replication/protocol.js";
import { throughMitm, type MitmLink } from "../../support/peer-mitm.js";
import { waitFor } from "../../support/processes.js";
import {
  heartbeatFrame as heartbeat,
  openByReads,
  openInPieces as open,
  sealRecord as seal,
  writeFrame as write,
} from "../../support/sealed-records.js";

const [na, nb] = [newNonce(), newNonce()];
const secret = [Buffer.from("the-pair-secret")];

function ends(sealerProtection: LinkProtection = "authenticated", openerProtection = sealerProtection) {
  return {
    sealer: new RecordSealer(sessionKeys(secret, "a", na, nb, sealerProtection).send, {
      protection: sealerProtection,
    }),
    // the opener's reads land in a reused buffer, as on the link (onread)
    opener: new RecordOpener(
      sessionKeys(secret, "b", na, nb, openerProtection).receive,
      new FrameDecoder({ chunksReused: true }),
      { protection: openerProtection },
    ),
  };
}

const refused = (e: unknown) => e instanceof FrameAuthError && /failed authentication/.test(e.message);

describe("authenticated records", () => {
  it("carry the frames in plain, with their own magic, and leave from the frames' own buffers", () => {
    const { sealer } = ends();
    const pattern = Buffer.alloc(4096, "HASAN-PLAINTEXT-");
    const frame = write(1, pattern);
    const out = sealer.seal(frame, frameBytes(frame));
    assert.ok(out.includes(frame[frame.length - 1]!), "the payload buffer itself is handed to the socket");
    const wire = Buffer.concat(out);
    assert.equal(wire.readUInt32BE(0), AUTHENTICATED_RECORD_MAGIC);
    assert.notEqual(wire.indexOf("HASAN-PLAINTEXT-"), -1);
    assert.equal(wire.length, RECORD_HEADER_BYTES + frameBytes(frame) + TAG_BYTES);
  });

  it("an encrypted record on an authenticated link, or the other way round, is refused", () => {
    const enc = ends("encrypted", "authenticated");
    assert.throws(
      () => open(enc.opener, seal(enc.sealer, heartbeat(1))),
      (e: unknown) =>
        e instanceof FrameAuthError && /an encrypted record on an authenticated link/.test(e.message),
    );
    const auth = ends("authenticated", "encrypted");
    assert.throws(
      () => open(auth.opener, seal(auth.sealer, heartbeat(1))),
      (e: unknown) =>
        e instanceof FrameAuthError && /an authenticated record on an encrypted link/.test(e.message),
    );
  });

  it("the keys of an authenticated link are not those of an encrypted one: a record relabelled does not open", () => {
    assert.notDeepEqual(
      sessionKeys(secret, "a", na, nb, "authenticated").send,
      sessionKeys(secret, "a", na, nb).send,
    );
    // an authenticated record given the encrypted magic by a man in the middle
    const { sealer } = ends();
    const wire = seal(sealer, heartbeat(1));
    wire.writeUInt32BE(RECORD_MAGIC, 0);
    assert.throws(() => open(ends("encrypted").opener, wire), refused);
  });
});

describe("what the link's records do, agreed in the handshake", () => {
  const links: MitmLink[] = [];
  after(() => links.forEach((l) => l.close()));
  const pattern = Buffer.alloc(64 * 1024, "HASAN-PLAINTEXT-");
  const sendWrite = async (l: MitmLink) => {
    l.a.send("write", { offset: 0, fua: false }, pattern, 1);
    await waitFor("b got the write", async () => l.atB.some((m) => m.type === "write"), 5000, 10);
    assert.deepEqual(l.atB.find((m) => m.type === "write")!.data, pattern);
    return Buffer.concat(l.seen.aToB).indexOf("HASAN-PLAINTEXT-") !== -1;
  };

  it(`both nodes asking for authenticated records (protocol ${PEER_PROTOCOL_VERSION}) send the data in plain`, async () => {
    const l = await throughMitm({ protection: { a: "authenticated", b: "authenticated" } });
    links.push(l);
    assert.equal(l.a.protection, "authenticated");
    assert.equal(l.b.protection, "authenticated");
    assert.ok(await sendWrite(l), "the data crossed in plain");
  });

  for (const [a, b] of [
    ["authenticated", undefined],
    [undefined, "authenticated"],
    ["encrypted", "encrypted"],
  ] as const) {
    it(`a asking ${a ?? "nothing"}, b ${b ?? "nothing"}: the records are encrypted`, async () => {
      const l = await throughMitm({ protection: { ...(a ? { a } : {}), ...(b ? { b } : {}) } });
      links.push(l);
      assert.equal(l.a.protection, "encrypted");
      assert.equal(l.b.protection, "encrypted");
      assert.ok(!(await sendWrite(l)), "the data did not cross in plain");
    });
  }

  it("a byte flipped in an authenticated write's record closes the link with a clear reason; b applies nothing", async () => {
    const l = await throughMitm({ protection: { a: "authenticated", b: "authenticated" } });
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
    assert.match(reason, /frame authentication failed: .*failed authentication \(bad tag\)/);
    assert.equal(l.atB.filter((m) => m.type === "write").length, 0);
  });

  it("a man in the middle who rewrites b's helloReply to ask for authenticated records gets the link closed, not weakened", async () => {
    // b asks for encrypted records; a for authenticated ones. Rewritten, a would think both agreed.
    const decoder = new FrameDecoder();
    let rewritten = false;
    const l = await throughMitm({
      protection: { a: "authenticated", b: "encrypted" },
      waitReady: false,
      alterBtoA: (chunk) => {
        if (rewritten) return chunk;
        const [m] = decoder.push(chunk, 1);
        if (m?.type !== "helloReply") return chunk;
        rewritten = true;
        return Buffer.concat([
          ...encodeFrame("helloReply", 0, { ...m.body, records: "authenticated" }),
          decoder.takeRest(),
        ]);
      },
    });
    links.push(l);
    await waitFor("both ends closed the link", async () => l.a.closed && l.b.closed, 5000, 10);
    assert.ok(rewritten, "the helloReply was rewritten");
    assert.equal(l.atB.length, 0, "b applied nothing");
  });
});

describe("ciphers made ahead of time", () => {
  for (const protection of ["encrypted", "authenticated"] as const)
    it(`${protection}: records sealed and opened with prepared ciphers are the same bytes as without, across key changes`, () => {
      const o = { rekeyBytes: 10_000, protection };
      const keys = {
        a: sessionKeys(secret, "a", na, nb, protection),
        b: sessionKeys(secret, "b", na, nb, protection),
      };
      const prepared = new RecordSealer(keys.a.send, o);
      const plain = new RecordSealer(keys.a.send, o);
      const opener = new RecordOpener(keys.b.receive, new FrameDecoder({ chunksReused: true }), o);
      for (let i = 1; i <= 20; i++) {
        const d = randomBytes(4096);
        // prepared once, twice, or not at all before a record: always the record's own cipher
        if (i % 3 !== 0) prepared.prepare();
        if (i % 3 === 1) prepared.prepare();
        if (i % 2 === 0) opener.prepare();
        const bytes = seal(prepared, write(i, d));
        assert.deepEqual(bytes, seal(plain, write(i, d)), `record ${i}`);
        const [m] = open(opener, bytes);
        assert.deepEqual(m!.data, d, `record ${i}`);
      }
    });

  it("a decipher prepared for the next record does not open a replay of the last one", () => {
    const { sealer, opener } = ends();
    const r1 = seal(sealer, heartbeat(1));
    assert.equal(open(opener, r1).length, 1);
    opener.prepare();
    assert.throws(() => open(opener, r1), refused);
  });
});

describe("large payloads read in place", () => {
  const big = randomBytes(1 << 20);
  const stream = (sealer: RecordSealer) =>
    Buffer.concat([
      seal(sealer, write(1, randomBytes(4096)), heartbeat(1)),
      seal(sealer, write(2, big)),
      seal(sealer, write(3, randomBytes(512))),
    ]);

  for (const readSize of [1000, 64 * 1024, 300 * 1024])
    it(`authenticated: the rest of a 1 MiB write lands straight in its buffer (reads of ${readSize})`, () => {
      const { sealer, opener } = ends();
      const r = openByReads(opener, stream(sealer), readSize);
      assert.deepEqual(
        r.messages.map((m) => m.type),
        ["write", "heartbeat", "write", "write"],
      );
      const w = r.messages[2]!;
      assert.deepEqual(w.data, big);
      assert.ok(r.inPlace > 0, "reads landed in the payload's buffer");
      assert.ok(
        r.targets.every((t) => t === w.data.buffer),
        "every read outside the scratch buffer landed in the message's own data",
      );
    });

  it("authenticated: a byte flipped in the part read in place fails the tag; nothing of the record is given out", () => {
    const { sealer, opener } = ends();
    const wire = stream(sealer);
    // a byte near the end of the 1 MiB payload: read in place, not from the scratch buffer
    const at = wire.indexOf(big.subarray(big.length - 64));
    assert.ok(at > 0);
    wire[at + 10]! ^= 0x01;
    const first = openByReads(opener, wire.subarray(0, at - 200_000), 64 * 1024);
    assert.equal(first.messages.length, 2, "the record before it opened");
    assert.ok(first.inPlace > 0);
    assert.throws(() => openByReads(opener, wire.subarray(at - 200_000), 64 * 1024), refused);
  });

  it("encrypted: every read lands in the scratch buffer (the bytes need a cipher pass)", () => {
    const { sealer, opener } = ends("encrypted");
    const r = openByReads(opener, stream(sealer), 64 * 1024);
    assert.equal(r.inPlace, 0);
    assert.deepEqual(r.messages[2]!.data, big);
  });
});
