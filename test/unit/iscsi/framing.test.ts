import { test } from "node:test";
import assert from "node:assert/strict";
import { PduReader, type PduConsumer } from "../../../target/iscsi/framing.js";
import { dataSegmentLength, lunOf, padLength, parseAhs, writeLun } from "../../../target/iscsi/pdu.js";
import { buildPdu } from "./support/initiator.js";

class Collector implements PduConsumer {
  pdus: { header: Buffer; data: Buffer }[] = [];
  errors: string[] = [];
  destination: Buffer | undefined;
  dataDestination(_h: Buffer, length: number): Buffer | undefined {
    return this.destination ? this.destination.subarray(0, length) : undefined;
  }
  pdu(header: Buffer, data: Buffer): void {
    this.pdus.push({ header: Buffer.from(header), data: Buffer.from(data) });
  }
  dataDigestError(): void {
    this.errors.push("data digest");
  }
  fatal(reason: string): void {
    this.errors.push(reason);
  }
}

const stream = (digests: { header: boolean; data: boolean }) =>
  Buffer.concat([
    buildPdu({ opcode: 0x00, itt: 1, data: Buffer.from("abcde") }, digests),
    buildPdu({ opcode: 0x01, itt: 2, ahs: Buffer.from([0, 5, 1, 0, 1, 2, 3, 4, 0, 0, 0, 0]) }, digests),
    buildPdu({ opcode: 0x05, itt: 3, data: Buffer.alloc(70000, 7) }, digests),
    buildPdu({ opcode: 0x00, itt: 4 }, digests),
  ]);

test("PDUs are framed the same however the stream is cut, with and without digests", () => {
  for (const digests of [
    { header: false, data: false },
    { header: true, data: true },
  ]) {
    const bytes = stream(digests);
    for (const cut of [1, 3, 47, 48, 49, 53, 100, 4096, 65536, bytes.length]) {
      const c = new Collector();
      const r = new PduReader(c, 1 << 20);
      r.headerDigest = digests.header;
      r.dataDigest = digests.data;
      for (let p = 0; p < bytes.length; p += cut) r.push(bytes.subarray(p, p + cut));
      assert.deepEqual(c.errors, []);
      assert.deepEqual(
        c.pdus.map((p) => [p.header.readUInt32BE(16), p.header.length, p.data.length]),
        [
          [1, 48, 5],
          [2, 60, 0],
          [3, 48, 70000],
          [4, 48, 0],
        ],
        `cut ${cut} digests ${JSON.stringify(digests)}`,
      );
      assert.equal(c.pdus[0]!.data.toString(), "abcde");
      assert.ok(c.pdus[2]!.data.every((b) => b === 7));
    }
  }
});

test("data lands in the consumer's buffer when it names one", () => {
  const c = new Collector();
  c.destination = Buffer.alloc(100);
  const r = new PduReader(c, 1 << 20);
  const b = buildPdu({ opcode: 0x05, itt: 9, data: Buffer.from("payload") });
  r.push(b.subarray(0, 50));
  r.push(b.subarray(50));
  assert.equal(c.destination.subarray(0, 7).toString(), "payload");
});

test("a corrupt header digest is fatal, a corrupt data digest drops only that PDU", () => {
  const digests = { header: true, data: true };
  const good = buildPdu({ opcode: 0x00, itt: 1, data: Buffer.from("xyz") }, digests);
  const badData = Buffer.from(good);
  badData[badData.length - 1]! ^= 1;
  const c = new Collector();
  const r = new PduReader(c, 8192);
  r.headerDigest = r.dataDigest = true;
  r.push(Buffer.concat([badData, good]));
  assert.deepEqual(c.errors, ["data digest"]);
  assert.equal(c.pdus.length, 1);
  const badHeader = Buffer.from(good);
  badHeader[10]! ^= 1;
  const c2 = new Collector();
  const r2 = new PduReader(c2, 8192);
  r2.headerDigest = r2.dataDigest = true;
  r2.push(Buffer.concat([badHeader, good]));
  assert.deepEqual(c2.errors, ["header digest error"]);
  assert.equal(c2.pdus.length, 0, "nothing after a broken header is trusted");
});

test("data segments above the limit are refused before any buffering", () => {
  const c = new Collector();
  const r = new PduReader(c, 8192);
  r.push(buildPdu({ opcode: 0x00, itt: 1, dataSegmentLength: 8193 }));
  assert.match(c.errors[0] ?? "", /exceeds/);
});

test("header field helpers", () => {
  const h = Buffer.alloc(48);
  h[5] = 0x01;
  h[6] = 0x02;
  h[7] = 0x03;
  assert.equal(dataSegmentLength(h), 0x010203);
  assert.deepEqual([0, 1, 2, 3, 4, 5].map(padLength), [0, 3, 2, 1, 0, 3]);
  for (const lun of [0, 1, 255, 256, 1000, 16383]) {
    writeLun(h, lun);
    assert.equal(lunOf(h), lun);
  }
  h[8] = 0x80; // extended addressing: not ours
  assert.equal(lunOf(h), -1);
  const ahs = parseAhs(Buffer.from([0, 5, 1, 0, 9, 9, 9, 9, 0, 6, 2, 0, 1, 1, 1, 1, 1, 0, 0, 0]));
  assert.ok(Array.isArray(ahs));
  assert.deepEqual(
    ahs.map((a) => [a.type, a.data.length]),
    [
      [1, 4],
      [2, 5],
    ],
  );
  assert.equal(typeof parseAhs(Buffer.from([0, 40, 1, 0])), "string", "AHS longer than its area");
  assert.equal(typeof parseAhs(Buffer.from([0, 0, 1, 0])), "string", "zero-length AHS");
});
