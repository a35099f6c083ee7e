/**
 * What protecting the peer link's frames costs in CPU, per frame, in this process:
 * AES-256-GCM (confidentiality and integrity) against HMAC-SHA256 (integrity only), each with one
 * seal per frame and one per record of 32 frames (what frame-seal.ts does with frames queued
 * together), on 4 KiB and 1 MiB frames. `node dist/test/bench/frame-seal-bench.js`
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { RecordOpener, RecordSealer } from "../../target/replication/frame-seal.js";
import { encodeFrame, frameBytes } from "../../target/replication/protocol.js";

const key = randomBytes(32);
const head = randomBytes(8);

function nonce(n: number): Buffer {
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(n >>> 0, 8);
  return iv;
}

function gcmSeal(n: number, parts: Buffer[]): Buffer[] {
  const c = createCipheriv("aes-256-gcm", key, nonce(n));
  c.setAAD(head);
  const out = parts.map((p) => c.update(p));
  c.final();
  out.push(c.getAuthTag());
  return out;
}

function gcmOpen(n: number, parts: Buffer[], tag: Buffer): Buffer[] {
  const d = createDecipheriv("aes-256-gcm", key, nonce(n));
  d.setAAD(head);
  const out = parts.map((p) => d.update(p));
  d.setAuthTag(tag);
  d.final();
  return out;
}

function hmac(n: number, parts: Buffer[]): Buffer {
  const h = createHmac("sha256", key).update(nonce(n)).update(head);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** CPU µs per call of fn over `ms` milliseconds. */
function cpuPer(fn: (i: number) => void, ms = 1500): number {
  for (let i = 0; i < 50; i++) fn(i);
  const c0 = process.cpuUsage();
  const t0 = Date.now();
  let i = 0;
  while (Date.now() - t0 < ms) for (let k = 0; k < 10; k++) fn(i++);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / i;
}

const rows: string[][] = [];
for (const size of [4096, 1 << 20]) {
  const data = randomBytes(size);
  const frame = encodeFrame("write", 1, { offset: 0, fua: false }, data);
  const perRecord = size === 4096 ? 32 : 1;
  const batch = Array.from({ length: perRecord }, () => frame).flat();
  const label = `${size === 4096 ? "4 KiB" : "1 MiB"}`;
  // one seal per frame
  const sealed = gcmSeal(0, frame);
  const tag = sealed.pop()!;
  const mac = hmac(0, frame);
  rows.push([
    `${label}, one seal per frame`,
    cpuPer((i) => gcmSeal(i, frame)).toFixed(1),
    cpuPer(() => gcmOpen(0, sealed, tag)).toFixed(1),
    cpuPer((i) => hmac(i, frame)).toFixed(1),
    cpuPer(() => {
      if (!timingSafeEqual(hmac(0, frame), mac)) throw new Error("bad mac");
    }).toFixed(1),
  ]);
  if (perRecord > 1) {
    // one seal per record of 32 frames: raw, then through frame-seal.ts (opening includes decoding the frames)
    const len = frameBytes(batch);
    const joined = [Buffer.concat(batch, len)];
    const bsealed = gcmSeal(0, joined);
    const btag = bsealed.pop()!;
    const bmac = hmac(0, joined);
    rows.push([
      `${label}, one seal per ${perRecord} frames`,
      (cpuPer((i) => gcmSeal(i, [Buffer.concat(batch, len)])) / perRecord).toFixed(1),
      (cpuPer(() => gcmOpen(0, bsealed, btag)) / perRecord).toFixed(1),
      (cpuPer((i) => hmac(i, batch)) / perRecord).toFixed(1),
      (
        cpuPer(() => {
          if (!timingSafeEqual(hmac(0, joined), bmac)) throw new Error("bad mac");
        }) / perRecord
      ).toFixed(1),
    ]);
  }
  // through frame-seal.ts, the bytes arriving in socket reads of 256 KiB; opening includes decoding
  // the frames, and large payloads go back to the pool as the node hands them back
  const len = frameBytes(batch);
  const sealer = new RecordSealer(key);
  const records = Array.from({ length: 16 }, () => Buffer.concat(sealer.seal(batch, len)));
  let opener = new RecordOpener(key);
  let r = 0;
  rows.push([
    `${label}, frame-seal.ts records of ${perRecord}`,
    (cpuPer(() => sealer.seal(batch, len)) / perRecord).toFixed(1),
    (
      cpuPer(() => {
        if (r === records.length) {
          opener = new RecordOpener(key);
          r = 0;
        }
        const rec = records[r++]!;
        for (let at = 0; at < rec.length; at += 256 * 1024)
          for (const m of opener.push(rec.subarray(at, at + 256 * 1024))) opener.release(m.data);
      }) / perRecord
    ).toFixed(1),
    "",
    "",
  ]);
}
const header = [
  "frames",
  "AES-256-GCM seal µs/frame",
  "open µs/frame",
  "HMAC-SHA256 sign µs/frame",
  "verify µs/frame",
];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
console.log(line(header));
console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
for (const r of rows) console.log(line(r));

// For comparison, integrity without confidentiality from AES-GCM (GMAC: the frame as additional
// authenticated data, nothing encrypted): what a MAC-only protection could cost.
for (const size of [4096, 1 << 20]) {
  const frame = encodeFrame("write", 1, { offset: 0, fua: false }, randomBytes(size));
  const gmac = cpuPer((i) => {
    const c = createCipheriv("aes-256-gcm", key, nonce(i));
    c.setAAD(head);
    for (const part of frame) c.setAAD(part);
    c.final();
    c.getAuthTag();
  });
  console.log(
    `GMAC-AES-256 (MAC only), one per ${size === 4096 ? "4 KiB" : "1 MiB"} frame: ${gmac.toFixed(1)} µs`,
  );
}
