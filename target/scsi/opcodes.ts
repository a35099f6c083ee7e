/**
 * The one table of commands the logical unit executes: opcode (and service action),
 * handler, CDB usage mask for REPORT SUPPORTED OPERATION CODES, and how the command
 * fares against reservations. Dispatch and the report both come from this table.
 */
import {
  compareAndWrite,
  read,
  readCapacity10,
  readCapacity16,
  synchronizeCache,
  verify,
  write,
  writeAndVerify,
} from "./commands/block-io.js";
import { inquiry } from "./commands/inquiry.js";
import {
  reportLuns,
  reportSupportedOperationCodes,
  reportSupportedTaskManagementFunctions,
  reportTargetPortGroups,
} from "./commands/maintenance.js";
import { modeSelect, modeSense } from "./commands/mode.js";
import { persistentReserveIn, persistentReserveOut } from "./commands/persistent-reservation.js";
import { getLbaStatus, unmap, writeSame } from "./commands/provisioning.js";
import { release, reserve } from "./commands/reserve-release.js";
import {
  preventAllowMediumRemoval,
  requestSense,
  startStopUnit,
  testUnitReady,
} from "./commands/unit-control.js";
import type { CommandSpec, ConflictClass } from "./lu-context.js";

const FF4 = [0xff, 0xff, 0xff, 0xff];
const FF8 = [...FF4, ...FF4];
const CONTROL = 0x07;

/** START STOP UNIT only conflicts when it would stop the unit or change its power condition. */
const startStopConflict: ConflictClass = (cdb) => ((cdb[4]! & 0xf1) === 0x01 ? "allowed" : "write");
/** PREVENT ALLOW MEDIUM REMOVAL conflicts only when it prevents. */
const preventConflict: ConflictClass = (cdb) => ((cdb[4]! & 0x03) === 0 ? "allowed" : "write");

const rw10 = (opcode: number, byte1: number): number[] => [opcode, byte1, ...FF4, 0x1f, 0xff, 0xff, CONTROL];
const rw12 = (opcode: number, byte1: number): number[] => [opcode, byte1, ...FF4, ...FF4, 0x1f, CONTROL];
const rw16 = (opcode: number, byte1: number): number[] => [opcode, byte1, ...FF8, ...FF4, 0x1f, CONTROL];

const PR_IN_ACTIONS = [0x00, 0x01, 0x02, 0x03];
const PR_OUT_ACTIONS = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07];

export const COMMANDS: readonly CommandSpec[] = [
  {
    opcode: 0x00,
    name: "TEST UNIT READY",
    usage: [0x00, 0, 0, 0, 0, CONTROL],
    handler: testUnitReady,
    conflict: "allowed",
  },
  {
    opcode: 0x03,
    name: "REQUEST SENSE",
    usage: [0x03, 0x01, 0, 0, 0xff, CONTROL],
    handler: requestSense,
    conflict: "allowed",
    spc2Allowed: true,
    ignoresUnitAttention: true,
  },
  {
    opcode: 0x08,
    name: "READ(6)",
    usage: [0x08, 0x1f, 0xff, 0xff, 0xff, CONTROL],
    handler: read,
    conflict: "read",
  },
  {
    opcode: 0x0a,
    name: "WRITE(6)",
    usage: [0x0a, 0x1f, 0xff, 0xff, 0xff, CONTROL],
    handler: write,
    conflict: "write",
  },
  {
    opcode: 0x12,
    name: "INQUIRY",
    usage: [0x12, 0x01, 0xff, 0xff, 0xff, CONTROL],
    handler: inquiry,
    conflict: "allowed",
    spc2Allowed: true,
    ignoresUnitAttention: true,
  },
  {
    opcode: 0x15,
    name: "MODE SELECT(6)",
    usage: [0x15, 0x11, 0, 0, 0xff, CONTROL],
    handler: modeSelect,
    conflict: "write",
  },
  {
    opcode: 0x16,
    name: "RESERVE(6)",
    usage: [0x16, 0, 0, 0, 0, CONTROL],
    handler: reserve,
    conflict: "allowed",
    spc2Allowed: true,
  },
  {
    opcode: 0x17,
    name: "RELEASE(6)",
    usage: [0x17, 0, 0, 0, 0, CONTROL],
    handler: release,
    conflict: "allowed",
    spc2Allowed: true,
  },
  {
    opcode: 0x1a,
    name: "MODE SENSE(6)",
    usage: [0x1a, 0x08, 0xff, 0xff, 0xff, CONTROL],
    handler: modeSense,
    conflict: "read",
  },
  {
    opcode: 0x1b,
    name: "START STOP UNIT",
    usage: [0x1b, 0x01, 0, 0x0f, 0xf7, CONTROL],
    handler: startStopUnit,
    conflict: startStopConflict,
  },
  {
    opcode: 0x1e,
    name: "PREVENT ALLOW MEDIUM REMOVAL",
    usage: [0x1e, 0, 0, 0, 0x03, CONTROL],
    handler: preventAllowMediumRemoval,
    conflict: preventConflict,
  },
  {
    opcode: 0x25,
    name: "READ CAPACITY(10)",
    usage: [0x25, 0, ...FF4, 0, 0, 0x01, CONTROL],
    handler: readCapacity10,
    conflict: "allowed",
  },
  { opcode: 0x28, name: "READ(10)", usage: rw10(0x28, 0xf8), handler: read, conflict: "read" },
  { opcode: 0x2a, name: "WRITE(10)", usage: rw10(0x2a, 0xf8), handler: write, conflict: "write" },
  {
    opcode: 0x2e,
    name: "WRITE AND VERIFY(10)",
    usage: rw10(0x2e, 0xf2),
    handler: writeAndVerify,
    conflict: "write",
  },
  { opcode: 0x2f, name: "VERIFY(10)", usage: rw10(0x2f, 0xf6), handler: verify, conflict: "read" },
  {
    opcode: 0x35,
    name: "SYNCHRONIZE CACHE(10)",
    usage: rw10(0x35, 0x02),
    handler: synchronizeCache,
    conflict: "write",
  },
  { opcode: 0x41, name: "WRITE SAME(10)", usage: rw10(0x41, 0xf8), handler: writeSame, conflict: "write" },
  {
    opcode: 0x42,
    name: "UNMAP",
    usage: [0x42, 0x01, 0, 0, 0, 0, 0x1f, 0xff, 0xff, CONTROL],
    handler: unmap,
    conflict: "write",
  },
  {
    opcode: 0x55,
    name: "MODE SELECT(10)",
    usage: [0x55, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, CONTROL],
    handler: modeSelect,
    conflict: "write",
  },
  {
    opcode: 0x56,
    name: "RESERVE(10)",
    usage: [0x56, 0, 0, 0, 0, 0, 0, 0, 0, CONTROL],
    handler: reserve,
    conflict: "allowed",
    spc2Allowed: true,
  },
  {
    opcode: 0x57,
    name: "RELEASE(10)",
    usage: [0x57, 0, 0, 0, 0, 0, 0, 0, 0, CONTROL],
    handler: release,
    conflict: "allowed",
    spc2Allowed: true,
  },
  {
    opcode: 0x5a,
    name: "MODE SENSE(10)",
    usage: [0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, CONTROL],
    handler: modeSense,
    conflict: "read",
  },
  ...PR_IN_ACTIONS.map((sa): CommandSpec => ({
    opcode: 0x5e,
    serviceAction: sa,
    name: "PERSISTENT RESERVE IN",
    usage: [0x5e, sa, 0, 0, 0, 0, 0, 0xff, 0xff, CONTROL],
    handler: persistentReserveIn,
    conflict: "allowed",
  })),
  ...PR_OUT_ACTIONS.map((sa): CommandSpec => ({
    opcode: 0x5f,
    serviceAction: sa,
    name: "PERSISTENT RESERVE OUT",
    usage: [0x5f, sa, 0xff, 0, 0, ...FF4, CONTROL],
    handler: persistentReserveOut,
    conflict: "allowed",
  })),
  { opcode: 0x88, name: "READ(16)", usage: rw16(0x88, 0xf8), handler: read, conflict: "read" },
  {
    opcode: 0x89,
    name: "COMPARE AND WRITE",
    usage: [0x89, 0xf8, ...FF8, 0, 0, 0, 0xff, 0x1f, CONTROL],
    handler: compareAndWrite,
    conflict: "write",
  },
  { opcode: 0x8a, name: "WRITE(16)", usage: rw16(0x8a, 0xf8), handler: write, conflict: "write" },
  {
    opcode: 0x8e,
    name: "WRITE AND VERIFY(16)",
    usage: rw16(0x8e, 0xf2),
    handler: writeAndVerify,
    conflict: "write",
  },
  { opcode: 0x8f, name: "VERIFY(16)", usage: rw16(0x8f, 0xf6), handler: verify, conflict: "read" },
  {
    opcode: 0x91,
    name: "SYNCHRONIZE CACHE(16)",
    usage: rw16(0x91, 0x02),
    handler: synchronizeCache,
    conflict: "write",
  },
  { opcode: 0x93, name: "WRITE SAME(16)", usage: rw16(0x93, 0xf9), handler: writeSame, conflict: "write" },
  {
    opcode: 0x9e,
    serviceAction: 0x10,
    name: "READ CAPACITY(16)",
    usage: [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, ...FF4, 0, CONTROL],
    handler: readCapacity16,
    conflict: "allowed",
  },
  {
    opcode: 0x9e,
    serviceAction: 0x12,
    name: "GET LBA STATUS",
    usage: [0x9e, 0x12, ...FF8, ...FF4, 0, CONTROL],
    handler: getLbaStatus,
    conflict: "read",
  },
  {
    opcode: 0xa0,
    name: "REPORT LUNS",
    usage: [0xa0, 0, 0xff, 0, 0, 0, ...FF4, 0, CONTROL],
    handler: reportLuns,
    conflict: "allowed",
    spc2Allowed: true,
    ignoresUnitAttention: true,
  },
  {
    opcode: 0xa3,
    serviceAction: 0x0a,
    name: "REPORT TARGET PORT GROUPS",
    usage: [0xa3, 0xea, 0, 0, 0, 0, ...FF4, 0, CONTROL],
    handler: reportTargetPortGroups,
    conflict: "allowed",
    // Multipath path checkers keep working while another nexus holds an SPC-2 reservation.
    spc2Allowed: true,
  },
  {
    opcode: 0xa3,
    serviceAction: 0x0c,
    name: "REPORT SUPPORTED OPERATION CODES",
    usage: [0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, ...FF4, 0, CONTROL],
    handler: reportSupportedOperationCodes,
    conflict: "read",
  },
  {
    opcode: 0xa3,
    serviceAction: 0x0d,
    name: "REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS",
    usage: [0xa3, 0x0d, 0x80, 0, 0, 0, ...FF4, 0, CONTROL],
    handler: reportSupportedTaskManagementFunctions,
    conflict: "read",
  },
  { opcode: 0xa8, name: "READ(12)", usage: rw12(0xa8, 0xf8), handler: read, conflict: "read" },
  { opcode: 0xaa, name: "WRITE(12)", usage: rw12(0xaa, 0xf8), handler: write, conflict: "write" },
  {
    opcode: 0xae,
    name: "WRITE AND VERIFY(12)",
    usage: rw12(0xae, 0xf2),
    handler: writeAndVerify,
    conflict: "write",
  },
  { opcode: 0xaf, name: "VERIFY(12)", usage: rw12(0xaf, 0xf6), handler: verify, conflict: "read" },
];

/** Per opcode: the command, or (for opcodes with service actions) the commands by service action. */
export type OpcodeEntry = CommandSpec | ReadonlyMap<number, CommandSpec>;

export function buildOpcodeIndex(commands: readonly CommandSpec[]): ReadonlyArray<OpcodeEntry | undefined> {
  const index: Array<OpcodeEntry | undefined> = new Array(256).fill(undefined);
  for (const c of commands) {
    if (c.serviceAction === undefined) {
      index[c.opcode] = c;
      continue;
    }
    const existing = index[c.opcode];
    const map = existing instanceof Map ? existing : new Map<number, CommandSpec>();
    map.set(c.serviceAction, c);
    index[c.opcode] = map;
  }
  return index;
}

/** The service action of a CDB whose opcode has them (byte 1, bits 4-0 for every opcode used here). */
export const serviceActionOf = (cdb: Buffer): number => cdb[1]! & 0x1f;
