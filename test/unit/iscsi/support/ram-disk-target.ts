/**
 * A small ScsiTarget over a RAM disk for transport tests: enough of SPC/SBC (INQUIRY, READ
 * CAPACITY, READ/WRITE 10/16, REPORT LUNS, MODE SENSE, TEST UNIT READY, SYNCHRONIZE CACHE) for
 * iscsi-inq, iscsi-ls, qemu-io and qemu-img to work against the transport.
 */
import type { Nexus, ScsiCommand, ScsiResponse, ScsiTarget } from "../../../../target/scsi/types.js";

function sense(key: number, asc: number, ascq: number): Buffer {
  const s = Buffer.alloc(18);
  s[0] = 0x70;
  s[2] = key;
  s[7] = 10;
  s[12] = asc;
  s[13] = ascq;
  return s;
}

const illegal = (asc = 0x24): ScsiResponse => ({ status: 2, sense: sense(0x05, asc, 0) });

export class RamDiskTarget implements ScsiTarget {
  readonly disk: Buffer;
  readonly events: string[] = [];
  /** Delay applied to every command, to keep commands in flight in tests. */
  delayMs = 0;
  private readonly blockSize = 512;

  constructor(sizeBytes: number) {
    this.disk = Buffer.alloc(sizeBytes);
  }

  luns(_nexus: Nexus): number[] {
    return [0];
  }

  async lunReset(nexus: Nexus, lun: number): Promise<void> {
    this.events.push(`lunReset ${nexus.id} ${lun}`);
  }

  async clearTaskSet(nexus: Nexus, lun: number): Promise<void> {
    this.events.push(`clearTaskSet ${nexus.id} ${lun}`);
  }

  nexusCreated(nexus: Nexus): void {
    this.events.push(`created ${nexus.id}`);
  }

  nexusLost(nexus: Nexus): void {
    this.events.push(`lost ${nexus.id}`);
  }

  async execute(c: ScsiCommand): Promise<ScsiResponse> {
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    return this.run(c);
  }

  private run(c: ScsiCommand): ScsiResponse {
    const cdb = c.cdb;
    if (c.lun !== 0 && cdb[0] !== 0xa0 && cdb[0] !== 0x12) return { status: 2, sense: sense(0x05, 0x25, 0) };
    const blocks = this.disk.length / this.blockSize;
    switch (cdb[0]) {
      case 0x00: // TEST UNIT READY
      case 0x35: // SYNCHRONIZE CACHE 10
      case 0x91: // SYNCHRONIZE CACHE 16
        return { status: 0 };
      case 0x03: // REQUEST SENSE
        return { status: 0, dataIn: sense(0, 0, 0).subarray(0, Math.min(18, cdb[4]!)) };
      case 0x12:
        return this.inquiry(c);
      case 0x25: {
        const d = Buffer.alloc(8);
        d.writeUInt32BE(Math.min(0xffffffff, blocks - 1), 0);
        d.writeUInt32BE(this.blockSize, 4);
        return { status: 0, dataIn: d };
      }
      case 0x9e: {
        if ((cdb[1]! & 0x1f) !== 0x10) return illegal();
        const d = Buffer.alloc(32);
        d.writeBigUInt64BE(BigInt(blocks - 1), 0);
        d.writeUInt32BE(this.blockSize, 8);
        return { status: 0, dataIn: d.subarray(0, Math.min(32, cdb.readUInt32BE(10))) };
      }
      case 0xa0: {
        const d = Buffer.alloc(16);
        d.writeUInt32BE(8, 0);
        return { status: 0, dataIn: d.subarray(0, Math.min(16, cdb.readUInt32BE(6))) };
      }
      case 0x1a: {
        const d = Buffer.from([3, 0, 0, 0]);
        return { status: 0, dataIn: d.subarray(0, Math.min(4, cdb[4]!)) };
      }
      case 0x5a: {
        const d = Buffer.alloc(8);
        d.writeUInt16BE(6, 0);
        return { status: 0, dataIn: d.subarray(0, Math.min(8, cdb.readUInt16BE(7))) };
      }
      case 0x28:
      case 0x88:
      case 0x2a:
      case 0x8a: {
        const sixteen = cdb[0] === 0x88 || cdb[0] === 0x8a;
        const lba = sixteen ? Number(cdb.readBigUInt64BE(2)) : cdb.readUInt32BE(2);
        const count = sixteen ? cdb.readUInt32BE(10) : cdb.readUInt16BE(7);
        if (lba + count > blocks) return { status: 2, sense: sense(0x05, 0x21, 0) };
        const off = lba * this.blockSize;
        const len = count * this.blockSize;
        if (cdb[0] === 0x28 || cdb[0] === 0x88) {
          return { status: 0, dataIn: this.disk.subarray(off, off + len) };
        }
        c.dataOut.copy(this.disk, off, 0, Math.min(len, c.dataOut.length));
        return { status: 0, dataOutLength: len };
      }
      default:
        return { status: 2, sense: sense(0x05, 0x20, 0) };
    }
  }

  private inquiry(c: ScsiCommand): ScsiResponse {
    const cdb = c.cdb;
    const alloc = cdb.readUInt16BE(3);
    const lunOk = c.lun === 0;
    let d: Buffer;
    if (cdb[1]! & 1) {
      switch (cdb[2]) {
        case 0x00:
          d = Buffer.from([0, 0, 0, 3, 0x00, 0x80, 0x83]);
          break;
        case 0x80:
          d = Buffer.concat([Buffer.from([0, 0x80, 0, 8]), Buffer.from("RAMDISK1")]);
          break;
        case 0x83: {
          const naa = Buffer.from([0x01, 0x03, 0x00, 0x08, 0x60, 0x01, 0x40, 0x51, 0x23, 0x45, 0x67, 0x89]);
          d = Buffer.concat([Buffer.from([0, 0x83, 0, naa.length]), naa]);
          break;
        }
        default:
          return illegal();
      }
    } else {
      d = Buffer.alloc(36, 0x20);
      d[0] = lunOk ? 0 : 0x7f;
      d[1] = 0;
      d[2] = 6;
      d[3] = 2;
      d[4] = 31;
      d[5] = 0;
      d[6] = 0;
      d[7] = 0x02;
      d.write("HASAN   ", 8, "ascii");
      d.write("RAMDISK         ", 16, "ascii");
      d.write("0001", 32, "ascii");
    }
    return { status: 0, dataIn: d.subarray(0, Math.min(d.length, alloc)) };
  }
}
