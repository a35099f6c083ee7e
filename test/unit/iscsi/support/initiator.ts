/**
 * A deliberately small iSCSI initiator for transport tests: builds PDUs byte by byte so tests
 * can send exactly what they mean (including malformed PDUs) and read what the target answers.
 */
import { connect, type Socket } from "node:net";
import { crc32c } from "@node-rs/crc32";
import { PduReader, type PduConsumer } from "../../../../target/iscsi/framing.js";
import { encodeKeyValues, parseKeyValues, type KeyValues } from "../../../../target/iscsi/text-keys.js";

export interface Pdu {
  header: Buffer;
  data: Buffer;
  opcode: number;
  flags: number;
  itt: number;
}

export interface PduFields {
  opcode: number;
  immediate?: boolean;
  flags?: number;
  lun?: number;
  itt?: number;
  /** bytes 20–23 */
  word20?: number;
  cmdSN?: number;
  expStatSN?: number;
  /** bytes 32–47 */
  tail?: Buffer;
  /** bytes 36, 40, 44 */
  word36?: number;
  word40?: number;
  word44?: number;
  data?: Buffer;
  ahs?: Buffer;
  /** override the data segment length field */
  dataSegmentLength?: number;
}

export function buildPdu(f: PduFields, digests = { header: false, data: false }): Buffer {
  const ahs = f.ahs ?? Buffer.alloc(0);
  const h = Buffer.alloc(48);
  h[0] = (f.immediate ? 0x40 : 0) | f.opcode;
  h[1] = f.flags ?? 0x80;
  h[4] = ahs.length / 4;
  const data = f.data ?? Buffer.alloc(0);
  const dsl = f.dataSegmentLength ?? data.length;
  h[5] = (dsl >> 16) & 0xff;
  h[6] = (dsl >> 8) & 0xff;
  h[7] = dsl & 0xff;
  if (f.lun !== undefined) h[9] = f.lun;
  h.writeUInt32BE((f.itt ?? 0) >>> 0, 16);
  h.writeUInt32BE((f.word20 ?? 0) >>> 0, 20);
  h.writeUInt32BE((f.cmdSN ?? 0) >>> 0, 24);
  h.writeUInt32BE((f.expStatSN ?? 0) >>> 0, 28);
  if (f.tail) f.tail.copy(h, 32);
  if (f.word36 !== undefined) h.writeUInt32BE(f.word36 >>> 0, 36);
  if (f.word40 !== undefined) h.writeUInt32BE(f.word40 >>> 0, 40);
  if (f.word44 !== undefined) h.writeUInt32BE(f.word44 >>> 0, 44);
  const parts = [h, ahs];
  if (digests.header) {
    const d = Buffer.alloc(4);
    d.writeUInt32LE(crc32c(Buffer.concat([h, ahs])) >>> 0);
    parts.push(d);
  }
  if (data.length) {
    const pad = Buffer.alloc((4 - (data.length % 4)) % 4);
    parts.push(data, pad);
    if (digests.data) {
      const d = Buffer.alloc(4);
      d.writeUInt32LE(crc32c(Buffer.concat([data, pad])) >>> 0);
      parts.push(d);
    }
  }
  return Buffer.concat(parts);
}

export function loginPdu(o: {
  keys: KeyValues;
  csg: number;
  nsg: number;
  transit: boolean;
  isid?: Buffer;
  tsih?: number;
  itt?: number;
  cid?: number;
  cmdSN?: number;
  versionMin?: number;
}): Buffer {
  const data = encodeKeyValues(o.keys);
  const b = buildPdu({
    opcode: 0x03,
    immediate: true,
    flags: (o.transit ? 0x80 : 0) | (o.csg << 2) | o.nsg,
    itt: o.itt ?? 1,
    word20: (o.cid ?? 0) << 16,
    cmdSN: o.cmdSN ?? 1,
    data,
  });
  b[3] = o.versionMin ?? 0;
  (o.isid ?? Buffer.from("400000000001", "hex")).copy(b, 8);
  b.writeUInt16BE(o.tsih ?? 0, 14);
  return b;
}

export function scsiCommandPdu(o: {
  itt: number;
  cmdSN: number;
  cdb: Buffer;
  edtl: number;
  read?: boolean;
  write?: boolean;
  final?: boolean;
  lun?: number;
  immediate?: boolean;
  data?: Buffer;
}): PduFields {
  const cdb = Buffer.alloc(16);
  o.cdb.copy(cdb);
  return {
    opcode: 0x01,
    immediate: o.immediate,
    flags: (o.final === false ? 0 : 0x80) | (o.read ? 0x40 : 0) | (o.write ? 0x20 : 0) | 1,
    lun: o.lun ?? 0,
    itt: o.itt,
    word20: o.edtl,
    cmdSN: o.cmdSN,
    tail: cdb,
    data: o.data,
  };
}

export function read10(lba: number, blocks: number): Buffer {
  const c = Buffer.alloc(10);
  c[0] = 0x28;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}

export function write10(lba: number, blocks: number): Buffer {
  const c = Buffer.alloc(10);
  c[0] = 0x2a;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}

export class TestInitiator implements PduConsumer {
  readonly socket: Socket;
  readonly reader: PduReader;
  readonly received: Pdu[] = [];
  closed = false;
  digests = { header: false, data: false };
  cmdSN = 1;
  expStatSN = 0;
  private waiters: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    this.reader = new PduReader(this, 16 * 1024 * 1024);
    socket.on("data", (c: Buffer) => this.reader.push(c));
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => undefined);
  }

  /** `localAddress` picks the source address (any of 127.0.0.0/8 on loopback). */
  static async connect(port: number, host = "127.0.0.1", localAddress?: string): Promise<TestInitiator> {
    const s = connect({ port, host, ...(localAddress ? { localAddress } : {}) });
    await new Promise<void>((resolve, reject) => {
      s.once("connect", resolve);
      s.once("error", reject);
    });
    s.setNoDelay(true);
    return new TestInitiator(s);
  }

  dataDestination(): Buffer | undefined {
    return undefined;
  }
  pdu(header: Buffer, data: Buffer): void {
    const h = Buffer.from(header);
    this.received.push({
      header: h,
      data: Buffer.from(data),
      opcode: h[0]! & 0x3f,
      flags: h[1]!,
      itt: h.readUInt32BE(16),
    });
    this.wake();
  }
  dataDigestError(): void {
    throw new Error("target sent a bad data digest");
  }
  fatal(reason: string): void {
    throw new Error(`target stream broken: ${reason}`);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(b: Buffer | PduFields): void {
    this.socket.write(Buffer.isBuffer(b) ? b : buildPdu(b, this.digests));
  }

  /** Waits for the next PDU matching `pred` (removing it), or throws after `timeoutMs`. */
  async next(pred: (p: Pdu) => boolean = () => true, timeoutMs = 10_000): Promise<Pdu> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex(pred);
      if (i >= 0) return this.received.splice(i, 1)[0]!;
      if (this.closed) throw new Error("connection closed while waiting for a PDU");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for a PDU");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves true if nothing matching arrives within `ms`. */
  async silent(ms: number, pred: (p: Pdu) => boolean = () => true): Promise<boolean> {
    try {
      await this.next(pred, ms);
      return false;
    } catch {
      return true;
    }
  }

  async waitClosed(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error("connection not closed");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** A one-PDU login straight to full feature phase. */
  async login(o: {
    target: string;
    initiator?: string;
    isid?: Buffer;
    keys?: KeyValues;
    sessionType?: "Normal" | "Discovery";
  }): Promise<{ status: number; keys: Map<string, string>; tsih: number; pdu: Pdu }> {
    const keys: KeyValues = [
      ["InitiatorName", o.initiator ?? "iqn.2026-11.dev.hasan:test-initiator"],
      ...(o.sessionType === "Discovery"
        ? ([["SessionType", "Discovery"]] as KeyValues)
        : ([["TargetName", o.target]] as KeyValues)),
      ...(o.keys ?? []),
    ];
    this.send(loginPdu({ keys, csg: 1, nsg: 3, transit: true, isid: o.isid, cmdSN: this.cmdSN }));
    const r = await this.next((p) => p.opcode === 0x23);
    const status = r.header.readUInt16BE(36);
    this.expStatSN = r.header.readUInt32BE(24) + 1;
    return { status, keys: new Map(parseKeyValues(r.data)), tsih: r.header.readUInt16BE(14), pdu: r };
  }

  close(): void {
    this.socket.destroy();
  }
}
