/**
 * MODE SENSE/SELECT 6 and 10 (SPC-4 6.11-6.14) with the caching (08h), control (0Ah)
 * and informational exceptions (1Ch) pages. Only WCE is changeable.
 */
import { GOOD, dataIn, type Handler, type LuContext, type ModeState } from "../lu-context.js";
import { invalidFieldInCdb, invalidFieldInParameterList, parameterListLengthError } from "../sense.js";
import { UA } from "../unit-state.js";

type PageControl = "current" | "changeable" | "default" | "saved";
const PAGE_CONTROLS: readonly PageControl[] = ["current", "changeable", "default", "saved"];

const DEFAULT_MODE: ModeState = { writeCacheEnabled: true };

const PAGES = [0x08, 0x0a, 0x1c] as const;

function cachingPage(pc: PageControl, mode: ModeState): Buffer {
  const p = Buffer.alloc(20);
  p[0] = 0x08;
  p[1] = 18;
  if (pc === "changeable") {
    p[2] = 0x04; // WCE
    return p;
  }
  const wce = pc === "current" ? mode.writeCacheEnabled : DEFAULT_MODE.writeCacheEnabled;
  p[2] = wce ? 0x04 : 0x00;
  return p;
}

function controlPage(pc: PageControl): Buffer {
  const p = Buffer.alloc(12);
  p[0] = 0x0a;
  p[1] = 10;
  if (pc === "changeable") return p;
  p[2] = 0x20 | 0x02; // TST = 001b (a task set per I_T nexus), GLTSD
  p[3] = 0x10; // QUEUE ALGORITHM MODIFIER 1: unrestricted reordering
  // TAS = 0: tasks another nexus's task management aborts end without a status.
  p.writeUInt16BE(0xffff, 8); // BUSY TIMEOUT PERIOD: unlimited
  return p;
}

function informationalExceptionsPage(): Buffer {
  const p = Buffer.alloc(12);
  p[0] = 0x1c;
  p[1] = 10;
  return p;
}

function page(code: number, pc: PageControl, mode: ModeState): Buffer {
  switch (code) {
    case 0x08:
      return cachingPage(pc, mode);
    case 0x0a:
      return controlPage(pc);
    default:
      return informationalExceptionsPage();
  }
}

function blockDescriptor(lu: LuContext, long: boolean): Buffer {
  if (long) {
    const b = Buffer.alloc(16);
    b.writeUInt32BE(Math.floor(lu.blockCount / 0x100000000), 0);
    b.writeUInt32BE(lu.blockCount >>> 0, 4);
    b.writeUInt32BE(lu.blockSize, 12);
    return b;
  }
  const b = Buffer.alloc(8);
  b.writeUInt32BE(Math.min(0xffffffff, lu.blockCount), 0);
  b.writeUInt32BE(lu.blockSize & 0xffffff, 4);
  return b;
}

export const modeSense: Handler = (lu, cmd) => {
  const cdb = cmd.cdb;
  const ten = cdb[0] === 0x5a;
  const dbd = (cdb[1]! & 0x08) !== 0;
  const llbaa = ten && (cdb[1]! & 0x10) !== 0;
  const pc = PAGE_CONTROLS[cdb[2]! >> 6]!;
  const pageCode = cdb[2]! & 0x3f;
  const subpage = cdb[3]!;
  const allocationLength = ten ? cdb.readUInt16BE(7) : cdb[4]!;

  let pages: Buffer[];
  if (pageCode === 0x3f) {
    if (subpage !== 0x00 && subpage !== 0xff) throw invalidFieldInCdb(3);
    pages = PAGES.map((c) => page(c, pc, lu.mode));
  } else if ((PAGES as readonly number[]).includes(pageCode)) {
    if (subpage !== 0x00 && subpage !== 0xff) throw invalidFieldInCdb(3);
    pages = [page(pageCode, pc, lu.mode)];
  } else {
    throw invalidFieldInCdb(2, 5);
  }
  const descriptors = dbd ? [] : [blockDescriptor(lu, llbaa)];
  const headerLength = ten ? 8 : 4;
  const descLength = descriptors.reduce((n, d) => n + d.length, 0);
  const header = Buffer.alloc(headerLength);
  const total = headerLength + descLength + pages.reduce((n, p) => n + p.length, 0);
  // DEVICE-SPECIFIC PARAMETER: WP = 0, DPOFUA = 1.
  if (ten) {
    header.writeUInt16BE(total - 2, 0);
    header[3] = 0x10;
    header[4] = llbaa && !dbd ? 0x01 : 0x00;
    header.writeUInt16BE(descLength, 6);
  } else {
    header[0] = total - 1;
    header[2] = 0x10;
    header[3] = descLength;
  }
  return dataIn(Buffer.concat([header, ...descriptors, ...pages], total), allocationLength);
};

export const modeSelect: Handler = async (lu, cmd) => {
  const cdb = cmd.cdb;
  const ten = cdb[0] === 0x55;
  if (!(cdb[1]! & 0x10)) throw invalidFieldInCdb(1, 4); // PF: only the SPC page format is understood
  // SP: nothing is saved beyond the current values, so saving is accepted as a no-op.
  const listLength = ten ? cdb.readUInt16BE(7) : cdb[4]!;
  if (listLength === 0) return { status: 0, dataOutLength: 0 };
  const headerLength = ten ? 8 : 4;
  if (listLength < headerLength || cmd.dataOut.length < listLength) throw parameterListLengthError();
  const p = cmd.dataOut.subarray(0, listLength);
  const descLength = ten ? p.readUInt16BE(6) : p[3]!;
  let at = headerLength;
  if (descLength > 0) {
    const long = ten && (p[4]! & 1) !== 0;
    const size = long ? 16 : 8;
    if (descLength % size !== 0 || headerLength + descLength > listLength) {
      throw invalidFieldInParameterList(ten ? 6 : 3);
    }
    const blockLength = long ? p.readUInt32BE(at + 12) : p.readUInt32BE(at + 4) & 0xffffff;
    if (blockLength !== lu.blockSize) throw invalidFieldInParameterList(at + (long ? 12 : 5));
    at += descLength;
  }
  let wce = lu.mode.writeCacheEnabled;
  while (at < listLength) {
    if (at + 2 > listLength) throw parameterListLengthError();
    const code = p[at]! & 0x3f;
    if (p[at]! & 0x40) throw invalidFieldInParameterList(at, 6); // SPF: no subpages here
    const len = p[at + 1]! + 2;
    if (at + len > listLength) throw parameterListLengthError();
    const given = p.subarray(at, at + len);
    if (!(PAGES as readonly number[]).includes(code)) throw invalidFieldInParameterList(at);
    const current = page(code, "current", lu.mode);
    const changeable = page(code, "changeable", lu.mode);
    if (len !== current.length) throw invalidFieldInParameterList(at + 1);
    for (let i = 2; i < len; i++) {
      if ((given[i]! & ~changeable[i]!) !== (current[i]! & ~changeable[i]!)) {
        throw invalidFieldInParameterList(at + i);
      }
    }
    if (code === 0x08) wce = (given[2]! & 0x04) !== 0;
    at += len;
  }
  if (wce !== lu.mode.writeCacheEnabled) {
    if (!wce) await lu.device.flush();
    lu.mode.writeCacheEnabled = wce;
    const [asc, ascq] = UA.modeParametersChanged;
    await lu.broadcastUnitAttention(asc, ascq, cmd.nexus);
  }
  return listLength ? { status: 0, dataOutLength: listLength } : GOOD;
};
