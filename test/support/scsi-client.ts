import { TestInitiator, scsiCommandPdu } from "../unit/iscsi/support/initiator.js";

/**
 * A minimal SCSI-over-iSCSI client for checks no packaged tool makes (REPORT TARGET PORT GROUPS,
 * persistent reservations seen from two portals). Commands run one at a time.
 */
export interface ScsiResult {
  status: number;
  senseKey: number | undefined;
  asc: number | undefined;
  ascq: number | undefined;
  data: Buffer;
}

export class ScsiClient {
  private itt = 1;
  private constructor(private readonly ini: TestInitiator) {}

  static async open(o: { host?: string; port: number; iqn: string; initiator: string; isid?: string }) {
    const ini = await TestInitiator.connect(o.port, o.host ?? "127.0.0.1");
    const r = await ini.login({
      target: o.iqn,
      initiator: o.initiator,
      isid: Buffer.from(o.isid ?? "400000000001", "hex"),
      keys: [
        ["ImmediateData", "Yes"],
        ["MaxRecvDataSegmentLength", "262144"],
      ],
    });
    if (r.status !== 0) throw new Error(`login to ${o.iqn} failed with status 0x${r.status.toString(16)}`);
    return new ScsiClient(ini);
  }

  async command(cdb: Buffer, o: { dataOut?: Buffer; allocation?: number } = {}): Promise<ScsiResult> {
    const itt = this.itt++;
    const write = !!o.dataOut && o.dataOut.length > 0;
    const edtl = write ? (o.dataOut?.length ?? 0) : (o.allocation ?? 0);
    this.ini.send(
      scsiCommandPdu({
        itt,
        cmdSN: this.ini.cmdSN++,
        cdb,
        edtl,
        read: !write && edtl > 0,
        write,
        ...(write ? { data: o.dataOut } : {}),
      }),
    );
    const chunks: Buffer[] = [];
    for (;;) {
      const p = await this.ini.next((x) => x.itt === itt && (x.opcode === 0x25 || x.opcode === 0x21), 30_000);
      if (p.opcode === 0x25) {
        chunks.push(p.data);
        // Phase-collapsed status: S bit on the final Data-In.
        if (p.flags & 0x01) return { status: p.header[3] ?? 0, ...noSense, data: Buffer.concat(chunks) };
        continue;
      }
      const status = p.header[3] ?? 0;
      let sense: Pick<ScsiResult, "senseKey" | "asc" | "ascq"> = noSense;
      if (status === 0x02 && p.data.length >= 2) {
        const s = p.data.subarray(2);
        sense = { senseKey: (s[2] ?? 0) & 0x0f, asc: s[12], ascq: s[13] };
      }
      return { status, ...sense, data: Buffer.concat(chunks) };
    }
  }

  /** Runs a command, first clearing any pending unit attentions (as initiators do after login). */
  async commandClearingUnitAttention(cdb: Buffer, o: { dataOut?: Buffer; allocation?: number } = {}) {
    for (let i = 0; i < 8; i++) {
      const r = await this.command(cdb, o);
      if (!(r.status === 0x02 && r.senseKey === 0x06)) return r;
    }
    throw new Error("unit attentions kept coming");
  }

  close(): void {
    this.ini.close();
  }
}

const noSense = { senseKey: undefined, asc: undefined, ascq: undefined };

export const cdbs = {
  reportTargetPortGroups(allocation = 1024): Buffer {
    const c = Buffer.alloc(12);
    c[0] = 0xa3;
    c[1] = 0x0a;
    c.writeUInt32BE(allocation, 6);
    return c;
  },
  persistentReserveIn(serviceAction: number, allocation = 1024): Buffer {
    const c = Buffer.alloc(10);
    c[0] = 0x5e;
    c[1] = serviceAction;
    c.writeUInt16BE(allocation, 7);
    return c;
  },
  persistentReserveOut(serviceAction: number, type: number, paramLength = 24): Buffer {
    const c = Buffer.alloc(10);
    c[0] = 0x5f;
    c[1] = serviceAction;
    c[2] = type & 0x0f;
    c.writeUInt32BE(paramLength, 5);
    return c;
  },
  prOutParams(key: bigint, serviceActionKey: bigint): Buffer {
    const p = Buffer.alloc(24);
    p.writeBigUInt64BE(key, 0);
    p.writeBigUInt64BE(serviceActionKey, 8);
    return p;
  },
  write10(lba: number, blocks: number): Buffer {
    const c = Buffer.alloc(10);
    c[0] = 0x2a;
    c.writeUInt32BE(lba, 2);
    c.writeUInt16BE(blocks, 7);
    return c;
  },
  testUnitReady(): Buffer {
    return Buffer.alloc(6);
  },
  /** MODE SENSE(10) of one page without block descriptors; pc 0 current, 1 changeable, 2 default, 3 saved. */
  modeSense10(page: number, pc = 0, allocation = 255): Buffer {
    const c = Buffer.alloc(10);
    c[0] = 0x5a;
    c[1] = 0x08; // DBD
    c[2] = ((pc & 3) << 6) | (page & 0x3f);
    c.writeUInt16BE(allocation, 7);
    return c;
  },
  /** MODE SELECT(10) in the SPC page format (PF) with a `length`-byte parameter list. */
  modeSelect10(length: number): Buffer {
    const c = Buffer.alloc(10);
    c[0] = 0x55;
    c[1] = 0x10; // PF
    c.writeUInt16BE(length, 7);
    return c;
  },
  /** A MODE SELECT(10) parameter list: the header and the caching page (08h) with WCE as given. */
  cachingPageParams(wce: boolean): Buffer {
    const p = Buffer.alloc(8 + 20);
    p[8] = 0x08;
    p[9] = 18;
    p[10] = wce ? 0x04 : 0x00;
    return p;
  },
};

/** The WCE bit of the caching page in MODE SENSE(10) data. */
export function cachingPageWce(data: Buffer): boolean {
  let at = 8 + data.readUInt16BE(6);
  const end = Math.min(data.length, 2 + data.readUInt16BE(0));
  while (at + 2 < end) {
    if ((data[at]! & 0x3f) === 0x08) return (data[at + 2]! & 0x04) !== 0;
    at += 2 + data[at + 1]!;
  }
  throw new Error("no caching page in the MODE SENSE data");
}

/** Parses REPORT TARGET PORT GROUPS (length-only format) into groups. */
export function parsePortGroups(data: Buffer): { id: number; state: number; ports: number[] }[] {
  const len = data.readUInt32BE(0);
  const groups: { id: number; state: number; ports: number[] }[] = [];
  let off = 4;
  while (off + 8 <= Math.min(data.length, 4 + len)) {
    const state = (data[off] ?? 0) & 0x0f;
    const id = data.readUInt16BE(off + 2);
    const count = data[off + 7] ?? 0;
    const ports: number[] = [];
    for (let i = 0; i < count; i++) ports.push(data.readUInt16BE(off + 8 + i * 4 + 2));
    groups.push({ id, state, ports });
    off += 8 + count * 4;
  }
  return groups;
}
