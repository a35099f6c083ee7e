/**
 * Splits a TCP byte stream into PDUs. Headers are handed out as views into the received chunk
 * when they lie in one piece, else gathered in one reused buffer. Data segments go straight into
 * the buffer the consumer names for them (a task's Data-Out buffer), or are handed out as views,
 * or gathered in a reused buffer when they span chunks. Digests are checked on the way.
 */
import { crc32cUpdate, readDigest } from "./digest.js";
import { BHS_LENGTH, DIGEST_LENGTH, dataSegmentLength, padLength } from "./pdu.js";

export interface PduConsumer {
  /**
   * Called once a header is complete and checked, before its data segment is read. May return
   * the buffer (exactly `length` bytes) the data segment should be copied into.
   */
  dataDestination(header: Buffer, length: number): Buffer | undefined;
  /**
   * A whole PDU. `header` is BHS + AHS (no digest). `data` is valid only during the call unless
   * it is the buffer dataDestination returned (`inPlace`).
   */
  pdu(header: Buffer, data: Buffer, inPlace: boolean): void;
  /** The data digest did not match; the PDU's data must be discarded. */
  dataDigestError(header: Buffer): void;
  /** The stream cannot be followed any more (header digest error, oversized segment). */
  fatal(reason: string, header: Buffer | undefined): void;
}

const EMPTY = Buffer.alloc(0);
const ZERO_PAD = Buffer.alloc(4);
const MAX_HEADER = BHS_LENGTH + 255 * 4 + DIGEST_LENGTH;

export class PduReader {
  headerDigest = false;
  dataDigest = false;
  private stopped = false;

  // header gathering
  private readonly headerBuf = Buffer.allocUnsafe(MAX_HEADER);
  private headerFill = 0;
  private headerNeed = BHS_LENGTH;

  // data gathering (valid while `inData`)
  private inData = false;
  private header: Buffer = EMPTY;
  private dataLength = 0;
  private dataFill = 0;
  private trailerNeed = 0; // padding + digest
  private readonly trailer = Buffer.alloc(8);
  private trailerFill = 0;
  private dest: Buffer = EMPTY;
  private destInPlace = false;
  private assembly: Buffer = Buffer.allocUnsafe(0);

  constructor(
    private readonly consumer: PduConsumer,
    /** Largest data segment accepted. */
    public maxDataSegment: number,
  ) {}

  stop(): void {
    this.stopped = true;
  }

  push(chunk: Buffer): void {
    let p = 0;
    const n = chunk.length;
    while (p < n && !this.stopped) {
      if (this.inData) {
        p = this.continueData(chunk, p);
        continue;
      }
      // fast path: the whole header lies in this chunk
      if (this.headerFill === 0 && n - p >= BHS_LENGTH) {
        const need = BHS_LENGTH + chunk[p + 4]! * 4 + (this.headerDigest ? DIGEST_LENGTH : 0);
        if (n - p >= need) {
          const h = chunk.subarray(p, p + need);
          p += need;
          p = this.headerComplete(h, chunk, p);
          continue;
        }
      }
      const take = Math.min(this.headerNeed - this.headerFill, n - p);
      chunk.copy(this.headerBuf, this.headerFill, p, p + take);
      this.headerFill += take;
      p += take;
      if (this.headerFill === BHS_LENGTH && this.headerNeed === BHS_LENGTH) {
        this.headerNeed = BHS_LENGTH + this.headerBuf[4]! * 4 + (this.headerDigest ? DIGEST_LENGTH : 0);
      }
      if (this.headerFill === this.headerNeed) {
        const h = this.headerBuf.subarray(0, this.headerNeed);
        this.headerFill = 0;
        this.headerNeed = BHS_LENGTH;
        p = this.headerComplete(h, chunk, p);
      }
    }
  }

  /** Checks the header and starts on its data segment; returns the new chunk position. */
  private headerComplete(raw: Buffer, chunk: Buffer, p: number): number {
    let h = raw;
    if (this.headerDigest) {
      const len = raw.length - DIGEST_LENGTH;
      h = raw.subarray(0, len);
      if (crc32cUpdate(h) >>> 0 !== readDigest(raw, len)) {
        this.stopped = true;
        this.consumer.fatal("header digest error", h);
        return chunk.length;
      }
    }
    const dsl = dataSegmentLength(h);
    if (dsl > this.maxDataSegment) {
      this.stopped = true;
      this.consumer.fatal(`data segment of ${dsl} bytes exceeds ${this.maxDataSegment}`, h);
      return chunk.length;
    }
    if (dsl === 0) {
      this.consumer.pdu(h, EMPTY, false);
      return p;
    }
    const pad = padLength(dsl);
    const trailer = pad + (this.dataDigest ? DIGEST_LENGTH : 0);
    const dest = this.consumer.dataDestination(h, dsl);
    if (this.stopped) return chunk.length;
    // fast path: data, padding and digest all in this chunk
    if (chunk.length - p >= dsl + trailer) {
      let data = chunk.subarray(p, p + dsl);
      if (dest) {
        data.copy(dest);
        data = dest;
      }
      const end = p + dsl + trailer;
      if (this.dataDigest) {
        const want = readDigest(chunk, p + dsl + pad);
        let crc = crc32cUpdate(data);
        if (pad) crc = crc32cUpdate(ZERO_PAD.subarray(0, pad), crc);
        if (crc >>> 0 !== want) {
          this.consumer.dataDigestError(h);
          return end;
        }
      }
      this.consumer.pdu(h, data, dest !== undefined);
      return end;
    }
    // slow path: gather across chunks; keep the header while the data arrives
    // the header may be a view into a receive buffer that gets reused; keep our own copy (the
    // next header overwrites headerBuf only after this data segment)
    if (h.buffer !== this.headerBuf.buffer || h.byteOffset !== this.headerBuf.byteOffset) {
      h.copy(this.headerBuf, 0);
      h = this.headerBuf.subarray(0, h.length);
    }
    this.header = h;
    this.inData = true;
    this.dataLength = dsl;
    this.dataFill = 0;
    this.trailerNeed = trailer;
    this.trailerFill = 0;
    if (dest) {
      this.dest = dest;
      this.destInPlace = true;
    } else {
      // grows with need: a connection that only ever sends small PDUs keeps a small buffer
      if (this.assembly.length < dsl)
        this.assembly = Buffer.allocUnsafe(
          Math.max(dsl, Math.min(2 * this.assembly.length, this.maxDataSegment)),
        );
      this.dest = this.assembly.subarray(0, dsl);
      this.destInPlace = false;
    }
    return p;
  }

  private continueData(chunk: Buffer, p: number): number {
    const n = chunk.length;
    if (this.dataFill < this.dataLength) {
      const take = Math.min(this.dataLength - this.dataFill, n - p);
      chunk.copy(this.dest, this.dataFill, p, p + take);
      this.dataFill += take;
      p += take;
    }
    if (this.dataFill === this.dataLength && this.trailerFill < this.trailerNeed && p < n) {
      const take = Math.min(this.trailerNeed - this.trailerFill, n - p);
      chunk.copy(this.trailer, this.trailerFill, p, p + take);
      this.trailerFill += take;
      p += take;
    }
    if (this.dataFill === this.dataLength && this.trailerFill === this.trailerNeed) {
      this.inData = false;
      const h = this.header;
      const data = this.dest;
      this.header = EMPTY;
      this.dest = EMPTY;
      if (this.dataDigest) {
        const pad = this.trailerNeed - DIGEST_LENGTH;
        let crc = crc32cUpdate(data);
        if (pad) crc = crc32cUpdate(ZERO_PAD.subarray(0, pad), crc);
        if (crc >>> 0 !== readDigest(this.trailer, pad)) {
          this.consumer.dataDigestError(h);
          return p;
        }
      }
      this.consumer.pdu(h, data, this.destInPlace);
    }
    return p;
  }
}
