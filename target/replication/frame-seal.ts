/**
 * Sealed records: how every frame crosses the peer link once the handshake authenticated both
 * ends (peer protocol 3). The frames that one send queue pass hands to the socket are sealed
 * together as one record:
 *
 *   magic u32 "HSNS" | length u32 | AES-256-GCM(frames, `length` bytes) | tag (16 bytes)
 *
 * - Key: the record key of this direction and epoch (peer-keys.ts): per connection, per direction.
 * - Nonce: 32 zero bits ‖ the record's number in this direction (u64), counted by both ends and
 *   never sent: a record replayed, reordered or dropped on the way is opened with another nonce
 *   than it was sealed with, and fails its tag like an altered one.
 * - Additional authenticated data: the record header (magic and length).
 * - The plaintext is whole frames in the handshake's format (protocol.ts); a frame never spans two
 *   records. Frames are given to the node only once their record's tag checked: nothing of an
 *   altered record is applied, and the link closes.
 * - Why records and not one seal per frame: node:crypto has no way to reuse a cipher with a new
 *   nonce, and setting up one costs several microseconds, as much as sealing a 4 KiB frame; frames
 *   queued together (32 writes in flight leave in one writev) share one setup. Small frames share a
 *   record up to RECORD_TARGET_BYTES; a frame from ALONE_FRAME_BYTES on gets a record of its own,
 *   so heartbeats queued before a large write are not held back until all of it has arrived.
 * - The receiver decrypts the bytes as they arrive and allocates nothing from a record's announced
 *   length. A frame inside may announce no more than its record holds; a large payload is gathered
 *   by the frame decoder into a pooled buffer as it is decrypted (pages committed as written).
 * - Each end makes the cipher of its next record in each direction ahead of time (prepare(), once
 *   the link is idle again): node:crypto sets one up per nonce, and after an idle moment that costs
 *   tens of microseconds, four times on the path of every acknowledged write at queue depth 1.
 *   A prepared cipher serves only the record number it was made for.
 * - AES-GCM with one key should seal well under 2^64 blocks; the key changes every REKEY_BYTES
 *   (64 GiB) per direction, at the same record on both ends.
 *
 * Authenticated records (peer protocol 7, when both nodes ask for them: LinkProtection):
 *
 *   magic u32 "HSNA" | length u32 | frames (`length` bytes, in plain) | tag (16 bytes)
 *
 * The tag is AES-256-GCM's over no plaintext with the header and the frames as additional data
 * (GMAC), under the same keys and nonces: a record altered, injected, replayed, reordered or
 * dropped fails it as a sealed one does, but the frames cross the network readable. GHASH alone
 * costs about a fifth of sealing, and the frames leave from the buffers they were built in (no
 * cipher output to allocate and copy): the choice for a network trusted with the data, or a link
 * that TLS already encrypts.
 */
import { createCipheriv, createDecipheriv, type CipherGCM, type DecipherGCM } from "node:crypto";
import { recordKey } from "./peer-keys.js";
import {
  FrameDecoder,
  HEADER_BYTES,
  MAGIC,
  MAX_DATA_BYTES,
  MAX_JSON_BYTES,
  ProtocolError,
  type LinkProtection,
  type Message,
} from "./protocol.js";

export const RECORD_MAGIC = 0x48534e53; // "HSNS"
export const AUTHENTICATED_RECORD_MAGIC = 0x48534e41; // "HSNA"

export const RECORD_HEADER_BYTES = 8;
export const TAG_BYTES = 16;
/** The largest record: one frame of the largest size the protocol allows. */
export const MAX_RECORD_BYTES = HEADER_BYTES + MAX_JSON_BYTES + MAX_DATA_BYTES;
/** Small frames share a record up to this many bytes. */
export const RECORD_TARGET_BYTES = 256 * 1024;
/** A frame of at least this many bytes is sealed in a record of its own. */
export const ALONE_FRAME_BYTES = 64 * 1024;
/** Bytes sealed per direction under one record key. */
export const REKEY_BYTES = 2 ** 36;
/**
 * Bytes encrypted or decrypted per call. node:crypto allocates every call's output and copies it
 * once more; outputs of this size stay in the heap instead of fresh mappings: 1 MiB sealed in
 * slices of 64 KiB cost 0.72 ms of CPU, in one call 0.9 ms, in slices of 8 KiB 1.07 ms.
 */
const CRYPT_SLICE = 64 * 1024;
const ALGORITHM = "aes-256-gcm";

/** A record that did not open: altered, injected, replayed, reordered or dropped on the way. */
export class FrameAuthError extends ProtocolError {
  constructor(message: string) {
    super(message);
    this.name = "FrameAuthError";
  }
}

export interface SealOptions {
  /** bytes per record key (tests set a small value) */
  rekeyBytes?: number;
  /** default "encrypted" */
  protection?: LinkProtection;
}

const magicOf = (p: LinkProtection) => (p === "authenticated" ? AUTHENTICATED_RECORD_MAGIC : RECORD_MAGIC);

/** The record keys and numbers of one direction, advanced identically by both ends. */
class RecordSchedule {
  /** records sealed (or opened) so far in this direction: the next record's number */
  count = 0;
  private epoch = 0;
  private inEpoch = 0;
  key: Buffer;

  constructor(
    private readonly traffic: Buffer,
    private readonly rekeyBytes: number,
  ) {
    this.key = recordKey(traffic, 0);
  }

  nonce(): Buffer {
    const iv = Buffer.alloc(12);
    iv.writeUInt32BE(Math.floor(this.count / 2 ** 32), 4);
    iv.writeUInt32BE(this.count >>> 0, 8);
    return iv;
  }

  advance(length: number): void {
    this.count++;
    this.inEpoch += length;
    if (this.inEpoch >= this.rekeyBytes) {
      this.epoch++;
      this.inEpoch = 0;
      this.key = recordKey(this.traffic, this.epoch);
    }
  }
}

export class RecordSealer {
  private readonly schedule: RecordSchedule;
  /**
   * Where the small frames of one record are gathered for one cipher call, reused from record to
   * record: a fresh buffer per record (up to RECORD_TARGET_BYTES) made the garbage collector a
   * fifth of a 4 KiB write's CPU. The cipher reads it synchronously, so reuse is safe.
   */
  private gather: Buffer | null = null;
  readonly protection: LinkProtection;
  /** the cipher of record `count`, made ahead of time (prepare) */
  private next: { count: number; cipher: CipherGCM } | null = null;

  constructor(traffic: Buffer, o: SealOptions = {}) {
    this.schedule = new RecordSchedule(traffic, o.rekeyBytes ?? REKEY_BYTES);
    this.protection = o.protection ?? "encrypted";
  }

  /** Records sealed so far. */
  get count(): number {
    return this.schedule.count;
  }

  /**
   * Seals `parts` (whole encoded frames, `length` bytes in all) as the next record; returns what
   * to write, in order. Authenticated records return `parts` themselves: they must not change
   * until the socket has taken them.
   */
  seal(parts: readonly Buffer[], length: number): Buffer[] {
    if (length < HEADER_BYTES || length > MAX_RECORD_BYTES)
      throw new ProtocolError(`a record of ${length} bytes cannot be sealed`);
    const head = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
    head.writeUInt32BE(magicOf(this.protection), 0);
    head.writeUInt32BE(length, 4);
    const s = this.schedule;
    const cipher = this.cipherOf(s.count);
    cipher.setAAD(head);
    const out: Buffer[] = [head];
    if (this.protection === "authenticated") {
      for (const p of parts) {
        for (let at = 0; at < p.length; at += CRYPT_SLICE)
          cipher.setAAD(p.subarray(at, Math.min(p.length, at + CRYPT_SLICE)));
        out.push(p);
      }
    } else if (parts.length > 1 && parts.every((p) => p.length < ALONE_FRAME_BYTES)) {
      // One call for many small parts: each call costs more than copying a few kilobytes.
      out.push(cipher.update(this.gathered(parts, length)));
    } else {
      for (const p of parts)
        for (let at = 0; at < p.length; at += CRYPT_SLICE)
          out.push(cipher.update(p.subarray(at, Math.min(p.length, at + CRYPT_SLICE))));
    }
    cipher.final();
    out.push(cipher.getAuthTag());
    s.advance(length);
    return out;
  }

  /** Makes the next record's cipher now, off the path of the record that will use it. */
  prepare(): void {
    if (this.next?.count !== this.schedule.count)
      this.next = { count: this.schedule.count, cipher: this.newCipher() };
  }

  private cipherOf(count: number): CipherGCM {
    const n = this.next;
    this.next = null;
    return n?.count === count ? n.cipher : this.newCipher();
  }

  private newCipher(): CipherGCM {
    const s = this.schedule;
    return createCipheriv(ALGORITHM, s.key, s.nonce(), { authTagLength: TAG_BYTES });
  }

  /** `parts` copied one after the other into the reused gathering buffer. */
  private gathered(parts: readonly Buffer[], length: number): Buffer {
    if (length > RECORD_TARGET_BYTES) return Buffer.concat(parts as Buffer[], length);
    const g = (this.gather ??= Buffer.allocUnsafeSlow(RECORD_TARGET_BYTES));
    let at = 0;
    for (const p of parts) at += p.copy(g, at);
    return g.subarray(0, length);
  }
}

type OpenState = "head" | "body" | "tag";

/**
 * Opens the records of one direction as their bytes arrive, and hands out the frames of each
 * record once its tag checked. Throws FrameAuthError for a record that does not open, and
 * ProtocolError for malformed frames inside an authentic one; the connection must then close.
 */
export class RecordOpener {
  private readonly schedule: RecordSchedule;
  private state: OpenState = "head";
  private readonly head = Buffer.alloc(RECORD_HEADER_BYTES);
  private headHave = 0;
  private readonly tag = Buffer.alloc(TAG_BYTES);
  private tagHave = 0;
  private length = 0;
  private remaining = 0;
  private decipher: DecipherGCM | null = null;
  /** the decipher of record `count`, made ahead of time (prepare) */
  private next: { count: number; decipher: DecipherGCM } | null = null;
  /** frames of the record in progress, given out once its tag checked */
  private held: Message[] = [];
  /** the first malformed frame of the record in progress (reported if the record is authentic) */
  private broken: ProtocolError | null = null;

  readonly protection: LinkProtection;

  /**
   * With authenticated records the decoder sees the received chunks themselves: give it one that
   * copies what it keeps (`chunksReused`) when the caller reuses its read buffers.
   */
  constructor(
    traffic: Buffer,
    private readonly decoder: FrameDecoder = new FrameDecoder(),
    o: SealOptions = {},
  ) {
    this.schedule = new RecordSchedule(traffic, o.rekeyBytes ?? REKEY_BYTES);
    this.protection = o.protection ?? "encrypted";
  }

  /** Makes the next record's decipher now, between records, off the path of that record. */
  prepare(): void {
    if (this.state === "head" && this.headHave === 0 && this.next?.count !== this.schedule.count)
      this.next = { count: this.schedule.count, decipher: this.newDecipher() };
  }

  private decipherOf(count: number): DecipherGCM {
    const n = this.next;
    this.next = null;
    return n?.count === count ? n.decipher : this.newDecipher();
  }

  private newDecipher(): DecipherGCM {
    const s = this.schedule;
    return createDecipheriv(ALGORITHM, s.key, s.nonce(), { authTagLength: TAG_BYTES });
  }

  /** Records opened so far. */
  get count(): number {
    return this.schedule.count;
  }

  /** Gives a message's data back for reuse (see FrameDecoder.release). */
  release(data: Buffer): void {
    this.decoder.release(data);
  }

  /**
   * Where the next socket read should land: on an authenticated link, the rest of a large payload
   * in progress (its bytes cross in plain, so the kernel copies them straight into the buffer the
   * message will carry, with no copy out of a read buffer); else `scratch`. Hand the result to
   * pushRead.
   */
  readTarget(scratch: Buffer): Buffer {
    if (this.protection !== "authenticated" || this.state !== "body" || this.broken) return scratch;
    const t = this.decoder.readTarget(scratch);
    if (t === scratch) return scratch;
    // A frame never runs past its record (finish() refuses one); the bound keeps a read that
    // would from consuming the tag.
    return t.length > this.remaining ? t.subarray(0, this.remaining) : t;
  }

  /** n bytes were read into `target` (from readTarget); `scratch`'s bytes may be reused after. */
  pushRead(target: Uint8Array, n: number, scratch: Buffer): Message[] {
    const bytes = Buffer.from(target.buffer, target.byteOffset, n);
    if (target.buffer === scratch.buffer) return this.push(bytes);
    // Read into a payload in progress (readTarget): authenticated in place, then counted as
    // filled; its frame is held like any other until the record's tag checked.
    this.decipher!.setAAD(bytes);
    this.remaining -= n;
    try {
      for (const m of this.decoder.pushRead(target, n)) this.held.push(m);
    } catch (e) {
      this.broken = e instanceof ProtocolError ? e : new ProtocolError(String(e));
      this.dropHeld();
    }
    if (this.remaining === 0) this.state = "tag";
    return [];
  }

  /** The bytes of `chunk` may be reused once this returns. */
  push(chunk: Buffer): Message[] {
    const out: Message[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.state === "head") {
        const n = Math.min(RECORD_HEADER_BYTES - this.headHave, chunk.length - at);
        chunk.copy(this.head, this.headHave, at, at + n);
        this.headHave += n;
        at += n;
        if (this.headHave === RECORD_HEADER_BYTES) this.begin();
      } else if (this.state === "body") {
        const n = Math.min(this.remaining, chunk.length - at, CRYPT_SLICE);
        const body = chunk.subarray(at, at + n);
        let plain = body;
        if (this.protection === "authenticated") this.decipher!.setAAD(body);
        else plain = this.decipher!.update(body);
        at += n;
        this.remaining -= n;
        this.feed(plain);
        if (this.remaining === 0) this.state = "tag";
      } else {
        const n = Math.min(TAG_BYTES - this.tagHave, chunk.length - at);
        chunk.copy(this.tag, this.tagHave, at, at + n);
        this.tagHave += n;
        at += n;
        if (this.tagHave === TAG_BYTES) for (const m of this.finish()) out.push(m);
      }
    }
    return out;
  }

  private refusal(why: string): FrameAuthError {
    return new FrameAuthError(
      `sealed record ${this.schedule.count} from the partner failed authentication (${why}): it was ` +
        `altered, injected, replayed, reordered or dropped on the way`,
    );
  }

  private begin(): void {
    const magic = this.head.readUInt32BE(0);
    if (magic === MAGIC) throw this.refusal("an unsealed frame where a sealed record was due");
    if (magic !== RECORD_MAGIC && magic !== AUTHENTICATED_RECORD_MAGIC)
      throw this.refusal(`bad record magic 0x${magic.toString(16).padStart(8, "0")}`);
    if (magic !== magicOf(this.protection))
      throw this.refusal(
        `an ${magic === RECORD_MAGIC ? "encrypted" : "authenticated"} record on an ${this.protection} link`,
      );
    const length = this.head.readUInt32BE(4);
    if (length < HEADER_BYTES || length > MAX_RECORD_BYTES)
      throw this.refusal(`a record cannot hold ${length} bytes`);
    const d = this.decipherOf(this.schedule.count);
    d.setAAD(this.head);
    this.decoder.setLimit({ bytes: length - HEADER_BYTES, what: "in its sealed record" });
    this.decipher = d;
    this.length = length;
    this.remaining = length;
    this.state = "body";
  }

  /** Decrypted bytes, not yet authentic: decoded, but their frames held until the tag checked. */
  private feed(plain: Buffer): void {
    if (this.broken || plain.length === 0) return;
    try {
      for (const m of this.decoder.push(plain)) this.held.push(m);
    } catch (e) {
      this.broken = e instanceof ProtocolError ? e : new ProtocolError(String(e));
      this.dropHeld();
    }
  }

  private finish(): Message[] {
    const d = this.decipher!;
    d.setAuthTag(this.tag);
    try {
      d.final();
    } catch {
      this.dropHeld();
      throw this.refusal("bad tag");
    }
    if (this.broken) throw this.broken;
    if (!this.decoder.idle) throw new ProtocolError(`a frame runs past the end of its sealed record`);
    this.schedule.advance(this.length);
    const out = this.held;
    this.held = [];
    this.decipher = null;
    this.headHave = 0;
    this.tagHave = 0;
    this.state = "head";
    return out;
  }

  private dropHeld(): void {
    for (const m of this.held) if (m.data.length > 0) this.decoder.release(m.data);
    this.held = [];
  }
}
