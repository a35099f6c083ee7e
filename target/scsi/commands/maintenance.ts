/**
 * REPORT LUNS and the MAINTENANCE IN reports: REPORT TARGET PORT GROUPS,
 * REPORT SUPPORTED OPERATION CODES and REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS.
 */
import { dataIn, type CommandSpec, type Handler } from "../lu-context.js";
import { aluaStateCodes } from "../port-groups.js";
import { invalidFieldInCdb } from "../sense.js";

/** REPORT LUNS for a unit list (peripheral device addressing, LUN < 256). */
export function reportLunsData(luns: readonly number[]): Buffer {
  const b = Buffer.alloc(8 + 8 * luns.length);
  b.writeUInt32BE(8 * luns.length, 0);
  luns.forEach((lun, i) => {
    b[8 + 8 * i] = (lun >> 8) & 0x3f;
    b[9 + 8 * i] = lun & 0xff;
  });
  return b;
}

export const reportLuns: Handler = (_lu, cmd) => {
  const cdb = cmd.cdb;
  const select = cdb[2]!;
  if (select > 2) throw invalidFieldInCdb(2);
  const allocationLength = cdb.readUInt32BE(6);
  if (allocationLength < 16) throw invalidFieldInCdb(6);
  // SELECT REPORT 01h lists only well-known LUNs, of which there are none.
  return dataIn(reportLunsData(select === 1 ? [] : [0]), allocationLength);
};

export const reportTargetPortGroups: Handler = (lu, cmd) => {
  const cdb = cmd.cdb;
  const extended = cdb[1]! >> 5 === 1;
  const allocationLength = cdb.readUInt32BE(6);
  const groups = lu.portGroups();
  const parts: Buffer[] = [];
  for (const g of groups) {
    const d = Buffer.alloc(8 + 4 * g.relativePorts.length);
    d[0] = (g.preferred ? 0x80 : 0) | aluaStateCodes[g.state];
    d[1] = 0x80 | 0x40 | 0x08 | 0x04 | 0x02 | 0x01; // T_SUP, O_SUP, U_SUP, S_SUP, AN_SUP, AO_SUP
    d.writeUInt16BE(g.id, 2);
    d[7] = g.relativePorts.length;
    g.relativePorts.forEach((p, i) => d.writeUInt16BE(p, 10 + 4 * i));
    parts.push(d);
  }
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(extended ? 8 : 4);
  header.writeUInt32BE(body.length + header.length - 4, 0);
  if (extended) header[4] = 0x10; // FORMAT TYPE 1, IMPLICIT TRANSITION TIME 0
  return dataIn(Buffer.concat([header, body]), allocationLength);
};

export const reportSupportedTaskManagementFunctions: Handler = (_lu, cmd) => {
  const cdb = cmd.cdb;
  const repd = (cdb[2]! & 0x80) !== 0;
  const allocationLength = cdb.readUInt32BE(6);
  const b = Buffer.alloc(repd ? 16 : 4);
  b[0] = 0x80 | 0x40 | 0x10 | 0x08 | 0x02; // ABORT TASK, ABORT TASK SET, CLEAR TASK SET, LUN RESET, TARGET RESET
  if (repd) b[3] = 0x0c;
  return dataIn(b, allocationLength);
};

const TIMEOUTS_DESCRIPTOR_LENGTH = 12;

function timeoutsDescriptor(spec: CommandSpec): Buffer {
  const t = Buffer.alloc(TIMEOUTS_DESCRIPTOR_LENGTH);
  t.writeUInt16BE(0x0a, 0);
  const seconds = spec.timeoutSeconds ?? 30;
  t.writeUInt32BE(seconds, 4);
  t.writeUInt32BE(seconds * 2, 8);
  return t;
}

export const reportSupportedOperationCodes: Handler = (lu, cmd) => {
  const cdb = cmd.cdb;
  const rctd = (cdb[2]! & 0x80) !== 0;
  const options = cdb[2]! & 0x07;
  const opcode = cdb[3]!;
  const serviceAction = cdb.readUInt16BE(4);
  const allocationLength = cdb.readUInt32BE(6);
  const commands = lu.commands;
  if (options === 0) {
    const parts = commands.map((c) => {
      const d = Buffer.alloc(8);
      d[0] = c.opcode;
      d.writeUInt16BE(c.serviceAction ?? 0, 2);
      d[5] = (rctd ? 0x02 : 0) | (c.serviceAction !== undefined ? 0x01 : 0);
      d.writeUInt16BE(c.usage.length, 6);
      return rctd ? Buffer.concat([d, timeoutsDescriptor(c)]) : d;
    });
    const body = Buffer.concat(parts);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(body.length, 0);
    return dataIn(Buffer.concat([header, body]), allocationLength);
  }
  const withSa = commands.filter((c) => c.opcode === opcode && c.serviceAction !== undefined);
  let spec: CommandSpec | undefined;
  switch (options) {
    case 1:
      if (withSa.length) throw invalidFieldInCdb(2, 2);
      spec = commands.find((c) => c.opcode === opcode);
      break;
    case 2:
      if (!withSa.length && commands.some((c) => c.opcode === opcode)) throw invalidFieldInCdb(2, 2);
      spec = withSa.find((c) => c.serviceAction === serviceAction);
      break;
    case 3:
      spec = withSa.length
        ? withSa.find((c) => c.serviceAction === serviceAction)
        : commands.find((c) => c.opcode === opcode);
      break;
    default:
      throw invalidFieldInCdb(2, 2);
  }
  if (!spec) {
    const b = Buffer.alloc(4);
    b[1] = 0x01; // SUPPORT 001b: not supported
    return dataIn(b, allocationLength);
  }
  const usage = Buffer.from(spec.usage);
  const head = Buffer.alloc(4);
  head[1] = (rctd ? 0x80 : 0) | 0x03; // CTDP, SUPPORT 011b: supported as the standard says
  head.writeUInt16BE(usage.length, 2);
  const parts: Buffer[] = [head, usage];
  if (rctd) parts.push(timeoutsDescriptor(spec));
  return dataIn(Buffer.concat(parts), allocationLength);
};
