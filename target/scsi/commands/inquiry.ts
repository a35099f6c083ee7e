/** INQUIRY: standard data and the vital product data pages (SPC-4 6.6, 7.8; SBC-3 6.5). */
import { dataIn, type Handler, type LuContext } from "../lu-context.js";
import { invalidFieldInCdb } from "../sense.js";

const SUPPORTED_VPD_PAGES = [0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2] as const;

/** Version descriptors: SAM-5, SPC-4, SBC-3, iSCSI (SPC-4 table 148). */
const VERSION_DESCRIPTORS = [0x00a0, 0x0460, 0x04c0, 0x0960];

const STANDARD_LENGTH = 96;

function ascii(b: Buffer, at: number, width: number, text: string): void {
  b.fill(0x20, at, at + width);
  b.write(text.slice(0, width), at, "ascii");
}

/** Standard INQUIRY data; `peripheral` is 0x00 for the LU, 0x7f for a LUN that does not exist. */
export function standardInquiry(lu: LuContext, peripheral: number): Buffer {
  const b = Buffer.alloc(STANDARD_LENGTH);
  b[0] = peripheral;
  b[2] = 0x06; // SPC-4
  b[3] = 0x12; // HISUP, response data format 2
  b[4] = STANDARD_LENGTH - 5;
  b[5] = 0x10; // TPGS = 01b: implicit asymmetric access
  b[6] = 0x10; // MULTIP: reachable through the ports of both nodes
  b[7] = 0x02; // CMDQUE
  ascii(b, 8, 8, lu.vendor);
  ascii(b, 16, 16, lu.product);
  ascii(b, 32, 4, lu.revision);
  VERSION_DESCRIPTORS.forEach((d, i) => b.writeUInt16BE(d, 58 + 2 * i));
  return b;
}

export const inquiry: Handler = (lu, cmd) => {
  const cdb = cmd.cdb;
  const evpd = (cdb[1]! & 0x01) !== 0;
  if (cdb[1]! & 0x02) throw invalidFieldInCdb(1, 1); // CMDDT is obsolete
  const pageCode = cdb[2]!;
  const allocationLength = cdb.readUInt16BE(3);
  if (!evpd) {
    if (pageCode !== 0) throw invalidFieldInCdb(2);
    return dataIn(standardInquiry(lu, 0x00), allocationLength);
  }
  return dataIn(
    vpdPage(lu, pageCode, cmd.nexus.relativeTargetPort, cmd.nexus.targetPortGroup),
    allocationLength,
  );
};

function vpdPage(lu: LuContext, page: number, relativePort: number, portGroup: number): Buffer {
  switch (page) {
    case 0x00:
      return withHeader(page, Buffer.from(SUPPORTED_VPD_PAGES));
    case 0x80:
      return withHeader(page, Buffer.from(lu.serial, "ascii"));
    case 0x83:
      return withHeader(page, deviceIdentification(lu, relativePort, portGroup));
    case 0xb0:
      return withHeader(page, blockLimits(lu));
    case 0xb1: {
      const p = Buffer.alloc(0x3c);
      p.writeUInt16BE(1, 0); // MEDIUM ROTATION RATE: non-rotating medium
      return withHeader(page, p);
    }
    case 0xb2: {
      const p = Buffer.alloc(4);
      p[1] = 0x80 | 0x40 | 0x20 | 0x04; // LBPU, LBPWS, LBPWS10, LBPRZ
      p[2] = 0x02; // PROVISIONING TYPE: thin
      return withHeader(page, p);
    }
    default:
      throw invalidFieldInCdb(2);
  }
}

function withHeader(page: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(4 + payload.length);
  b[1] = page;
  b.writeUInt16BE(payload.length, 2);
  payload.copy(b, 4);
  return b;
}

function designator(codeSet: number, piv: boolean, association: number, type: number, id: Buffer): Buffer {
  const b = Buffer.alloc(4 + id.length);
  // PROTOCOL IDENTIFIER 5h (iSCSI) is only meaningful with PIV set.
  b[0] = (piv ? 0x50 : 0) | codeSet;
  b[1] = (piv ? 0x80 : 0) | (association << 4) | type;
  b[3] = id.length;
  id.copy(b, 4);
  return b;
}

function u32Id(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(value & 0xffff, 2);
  return b;
}

function deviceIdentification(lu: LuContext, relativePort: number, portGroup: number): Buffer {
  const t10 = Buffer.alloc(8 + lu.serial.length, 0x20);
  t10.write(lu.vendor.slice(0, 8), 0, "ascii");
  t10.write(lu.serial, 8, "ascii");
  return Buffer.concat([
    designator(1, false, 0, 3, lu.naa), // NAA, logical unit
    designator(2, false, 0, 1, t10), // T10 vendor ID, logical unit
    designator(1, true, 1, 4, u32Id(relativePort)), // relative target port
    designator(1, true, 1, 5, u32Id(portGroup)), // target port group
  ]);
}

function blockLimits(lu: LuContext): Buffer {
  const l = lu.limits;
  const p = Buffer.alloc(0x3c);
  // WSNZ = 0: WRITE SAME with zero blocks means "to the last LBA".
  p[1] = Math.min(255, l.maxCompareAndWriteBlocks);
  p.writeUInt16BE(Math.min(0xffff, l.unmapGranularityBlocks), 2); // OPTIMAL TRANSFER LENGTH GRANULARITY
  p.writeUInt32BE(l.maxTransferBlocks, 4);
  p.writeUInt32BE(l.optimalTransferBlocks, 8);
  p.writeUInt32BE(l.maxUnmapBlocks, 16);
  p.writeUInt32BE(l.maxUnmapDescriptors, 20);
  p.writeUInt32BE(l.unmapGranularityBlocks, 24);
  p.writeUInt32BE(0x80000000, 28); // UGAVALID, alignment 0
  p.writeUInt32BE(0, 32);
  p.writeUInt32BE(l.maxWriteSameBlocks, 36);
  return p;
}
