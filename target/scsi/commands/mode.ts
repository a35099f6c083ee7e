/**
 * MODE SENSE/SELECT 6 and 10 (SPC-4 6.11-6.14) with the caching (08h), control (0Ah)
 * and informational exceptions (1Ch) pages. Only WCE is changeable; it is part of the
 * unit state, so it is one setting for both nodes of a pair and is kept across restarts
 * (the current value is also the saved one).
 */
import { GOOD, dataIn, writeCacheEnabled, type Handler, type LuContext } from "../lu-context.js";
import { invalidFieldInCdb, invalidFieldInParameterList, parameterListLengthError } from "../sense.js";

type PageControl = "current" | "changeable" | "default" | "saved";
const PAGE_CONTROLS: readonly PageControl[] = ["current", "changeable", "default", "saved"];

const DEFAULT_WRITE_CACHE_ENABLED = true;

const PAGES = [0x08, 0x0a, 0x1c] as const;

/** The caching page; `wce` is the unit's current setting, which is also what it keeps (saves). */
function cachingPage(pc: PageControl, wce: boolean): Buffer {
  const p = Buffer.alloc(20);
  p[0] = 0x80 | 0x08; // PS: the page is saved
  p[1] = 18;
  if (pc === "changeable") {
    p[2] = 0x04; // WCE
    return p;
  }
  p[2] = (pc === "default" ? DEFAULT_WRITE_CACHE_ENABLED : wce) ? 0x04 : 0x00;
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

function page(code: number, pc: PageControl, wce: boolean): Buffer {
  switch (code) {
    case 0x08:
      return cachingPage(pc, wce);
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

  const wce = writeCacheEnabled(lu);
  let pages: Buffer[];
  if (pageCode === 0x3f) {
    if (subpage !== 0x00 && subpage !== 0xff) throw invalidFieldInCdb(3);
    pages = PAGES.map((c) => page(c, pc, wce));
  } else if ((PAGES as readonly number[]).includes(pageCode)) {
    if (subpage !== 0x00 && subpage !== 0xff) throw invalidFieldInCdb(3);
    pages = [page(pageCode, pc, wce)];
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
  // SP: the current values are always saved (kept across restarts), so SP asks for nothing more.
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
  const currentWce = writeCacheEnabled(lu);
  let wce: boolean | undefined;
  while (at < listLength) {
    if (at + 2 > listLength) throw parameterListLengthError();
    const code = p[at]! & 0x3f;
    if (p[at]! & 0x40) throw invalidFieldInParameterList(at, 6); // SPF: no subpages here
    const len = p[at + 1]! + 2;
    if (at + len > listLength) throw parameterListLengthError();
    const given = p.subarray(at, at + len);
    if (!(PAGES as readonly number[]).includes(code)) throw invalidFieldInParameterList(at);
    const values = page(code, "current", currentWce);
    const changeable = page(code, "changeable", currentWce);
    if (len !== values.length) throw invalidFieldInParameterList(at + 1);
    for (let i = 2; i < len; i++) {
      if ((given[i]! & ~changeable[i]!) !== (values[i]! & ~changeable[i]!)) {
        throw invalidFieldInParameterList(at + i);
      }
    }
    if (code === 0x08) wce = (given[2]! & 0x04) !== 0;
    at += len;
  }
  if (wce !== undefined) {
    // One order for the pair: the store applies it (the other nexuses of both nodes hear MODE
    // PARAMETERS CHANGED when it changes), persists it and resolves once both nodes hold it.
    await lu.unitState.apply({ kind: "set-write-cache", nexusId: cmd.nexus.id, enabled: wce });
    // From here on every write is written through; what was acknowledged while the cache was
    // on reaches the medium of both copies before the command completes.
    if (!wce) await lu.device.flush();
  }
  return listLength ? { status: 0, dataOutLength: listLength } : GOOD;
};
