/**
 * iSCSI PDU layout (RFC 7143 §11): the 48-byte Basic Header Segment, additional header
 * segments and padding. Readers take the header as a view and read fields in place; writers
 * fill a 48-byte header the caller owns.
 */

export const BHS_LENGTH = 48;
export const DIGEST_LENGTH = 4;
export const RESERVED_TAG = 0xffffffff;

/** Initiator opcodes. */
export const Op = {
  nopOut: 0x00,
  scsiCommand: 0x01,
  taskManagementRequest: 0x02,
  loginRequest: 0x03,
  textRequest: 0x04,
  dataOut: 0x05,
  logoutRequest: 0x06,
  snackRequest: 0x10,
} as const;

/** Target opcodes. */
export const TargetOp = {
  nopIn: 0x20,
  scsiResponse: 0x21,
  taskManagementResponse: 0x22,
  loginResponse: 0x23,
  textResponse: 0x24,
  dataIn: 0x25,
  logoutResponse: 0x26,
  r2t: 0x31,
  asyncMessage: 0x32,
  reject: 0x3f,
} as const;

export const RejectReason = {
  dataDigestError: 0x02,
  snackReject: 0x03,
  protocolError: 0x04,
  commandNotSupported: 0x05,
  immediateCommandReject: 0x06,
  taskInProgress: 0x07,
  invalidDataAck: 0x08,
  invalidPduField: 0x09,
  longOperationReject: 0x0a,
  waitingForLogout: 0x0c,
} as const;

/** Flags in byte 1. */
export const Flag = {
  final: 0x80,
  /** SCSI Command read / Login transit / Text continue share bit positions per opcode */
  read: 0x40,
  write: 0x20,
  transit: 0x80,
  continue: 0x40,
  dataInAck: 0x40,
  bidiOverflow: 0x10,
  bidiUnderflow: 0x08,
  overflow: 0x04,
  underflow: 0x02,
  status: 0x01,
} as const;

export function padLength(n: number): number {
  return (4 - (n & 3)) & 3;
}

// ---- field readers over a header view -----------------------------------------------------------

export function opcode(h: Buffer): number {
  return h[0]! & 0x3f;
}
export function isImmediate(h: Buffer): boolean {
  return (h[0]! & 0x40) !== 0;
}
export function flags(h: Buffer): number {
  return h[1]!;
}
export function totalAhsLength(h: Buffer): number {
  return h[4]! * 4;
}
export function dataSegmentLength(h: Buffer): number {
  return (h[5]! << 16) | (h[6]! << 8) | h[7]!;
}
export function itt(h: Buffer): number {
  return h.readUInt32BE(16);
}
/** Bytes 20–23: TTT (Data-Out, NOP-Out, Text), Expected Data Transfer Length (SCSI Command), RTT (TMF). */
export function word20(h: Buffer): number {
  return h.readUInt32BE(20);
}
/** CmdSN for requests that carry one (bytes 24–27). */
export function cmdSN(h: Buffer): number {
  return h.readUInt32BE(24);
}
export function expStatSN(h: Buffer): number {
  return h.readUInt32BE(28);
}
export function dataSN(h: Buffer): number {
  return h.readUInt32BE(36);
}
export function bufferOffset(h: Buffer): number {
  return h.readUInt32BE(40);
}

/**
 * LUN field (bytes 8–15) in SAM flat or peripheral addressing. Returns the LUN number, or -1
 * for address methods this target does not use (so the command fails as "LUN not supported").
 */
export function lunOf(h: Buffer): number {
  const b0 = h[8]!;
  const method = b0 >> 6;
  if (method === 0) {
    // peripheral device addressing: bus 0 only
    if ((b0 & 0x3f) !== 0) return -1;
    return h[9]!;
  }
  if (method === 1) return ((b0 & 0x3f) << 8) | h[9]!;
  return -1;
}

/** Encodes a LUN number into bytes 8–15 (peripheral addressing below 256, flat above). */
export function writeLun(h: Buffer, lun: number): void {
  h.fill(0, 8, 16);
  if (lun < 256) {
    h[9] = lun;
  } else {
    h[8] = 0x40 | ((lun >> 8) & 0x3f);
    h[9] = lun & 0xff;
  }
}

/** Copies the raw 8-byte LUN field from one header to another (responses echo it verbatim). */
export function copyLunField(from: Buffer, to: Buffer): void {
  from.copy(to, 8, 8, 16);
}

// ---- AHS -----------------------------------------------------------------------------------------

export const AhsType = { extendedCdb: 1, bidiReadLength: 2 } as const;

export interface AhsEntry {
  type: number;
  /** Type-specific bytes after the reserved byte, without padding. */
  data: Buffer;
}

/**
 * Splits the AHS area into entries. Returns an error string on any length that does not fit,
 * so a malformed header never reads past its buffer.
 */
export function parseAhs(ahs: Buffer): AhsEntry[] | string {
  const out: AhsEntry[] = [];
  let p = 0;
  while (p < ahs.length) {
    if (p + 4 > ahs.length) return "AHS entry header truncated";
    const len = ahs.readUInt16BE(p);
    const type = ahs[p + 2]! & 0x3f;
    if (len === 0) return "AHS entry of zero length";
    // AHSLength counts the reserved byte plus the specific bytes
    const end = p + 3 + len;
    if (end > ahs.length) return "AHS entry longer than the AHS area";
    out.push({ type, data: ahs.subarray(p + 4, end) });
    p = end + padLength(end - p);
  }
  return out;
}

// ---- header writers ------------------------------------------------------------------------------

/** Fills the common part of a target PDU header; the rest is zeroed. */
export function initHeader(h: Buffer, op: number, flagsByte: number, dataLength: number): void {
  h.fill(0, 0, BHS_LENGTH);
  h[0] = op;
  h[1] = flagsByte;
  h[5] = (dataLength >> 16) & 0xff;
  h[6] = (dataLength >> 8) & 0xff;
  h[7] = dataLength & 0xff;
}

export function setDataSegmentLength(h: Buffer, dataLength: number): void {
  h[5] = (dataLength >> 16) & 0xff;
  h[6] = (dataLength >> 8) & 0xff;
  h[7] = dataLength & 0xff;
}

/** StatSN, ExpCmdSN, MaxCmdSN at bytes 24, 28, 32 — shared by every target-to-initiator PDU that has them. */
export function writeSequence(h: Buffer, statSN: number, expCmdSN: number, maxCmdSN: number): void {
  h.writeUInt32BE(statSN >>> 0, 24);
  h.writeUInt32BE(expCmdSN >>> 0, 28);
  h.writeUInt32BE(maxCmdSN >>> 0, 32);
}

export const OpNames: Record<number, string> = {
  0x00: "NOP-Out",
  0x01: "SCSI Command",
  0x02: "Task Management Request",
  0x03: "Login Request",
  0x04: "Text Request",
  0x05: "SCSI Data-Out",
  0x06: "Logout Request",
  0x10: "SNACK Request",
};

export function opName(op: number): string {
  return OpNames[op] ?? `opcode 0x${op.toString(16)}`;
}
