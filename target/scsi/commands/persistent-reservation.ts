/**
 * PERSISTENT RESERVE IN and OUT (SPC-4 6.15, 6.16). PR OUT is parsed here into a
 * serialisable operation and decided by the shared unit-state reducer through
 * the unit's UnitStateStore; PR IN reads that store's state.
 */
import { dataIn, type Handler } from "../lu-context.js";
import {
  ScsiError,
  invalidFieldInCdb,
  invalidFieldInParameterList,
  parameterListLengthError,
  ReservationConflict,
} from "../sense.js";
import type { Nexus } from "../types.js";
import {
  isAllRegistrantsType,
  reservationTypeCodes,
  reservationTypeFromCode,
  type PrOutOp,
  type PrOutServiceAction,
  type TransportId,
  type UnitState,
} from "../unit-state.js";

const SERVICE_ACTIONS: readonly PrOutServiceAction[] = [
  "register",
  "reserve",
  "release",
  "clear",
  "preempt",
  "preempt-and-abort",
  "register-and-ignore-existing-key",
  "register-and-move",
];

const ISCSI_PROTOCOL_ID = 0x5;

export const persistentReserveIn: Handler = (lu, cmd) => {
  const cdb = cmd.cdb;
  const sa = cdb[1]! & 0x1f;
  const allocationLength = cdb.readUInt16BE(7);
  const state = lu.unitState.get();
  switch (sa) {
    case 0x00:
      return dataIn(readKeys(state), allocationLength);
    case 0x01:
      return dataIn(readReservation(state), allocationLength);
    case 0x02:
      return dataIn(reportCapabilities(state), allocationLength);
    case 0x03:
      return dataIn(readFullStatus(state), allocationLength);
    default:
      throw invalidFieldInCdb(1, 4);
  }
};

function readKeys(state: UnitState): Buffer {
  const b = Buffer.alloc(8 + 8 * state.registrations.length);
  b.writeUInt32BE(state.prGeneration, 0);
  b.writeUInt32BE(8 * state.registrations.length, 4);
  state.registrations.forEach((r, i) => b.write(r.key, 8 + 8 * i, "hex"));
  return b;
}

function holderKey(state: UnitState): string {
  const res = state.reservation;
  if (!res || isAllRegistrantsType(res.type)) return "0000000000000000";
  return state.registrations.find((r) => r.nexusId === res.holderNexusId)?.key ?? "0000000000000000";
}

function readReservation(state: UnitState): Buffer {
  const res = state.reservation;
  const b = Buffer.alloc(res ? 24 : 8);
  b.writeUInt32BE(state.prGeneration, 0);
  if (res) {
    b.writeUInt32BE(16, 4);
    b.write(holderKey(state), 8, "hex");
    b[21] = reservationTypeCodes[res.type]; // SCOPE 0h (logical unit) in the high nibble
  }
  return b;
}

function reportCapabilities(state: UnitState): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16BE(8, 0);
  b[2] = 0x10 | 0x08 | 0x04 | 0x01; // CRH, SIP_C, ATP_C, PTPL_C
  b[3] = 0x80 | (state.aptpl ? 0x01 : 0x00); // TMV, PTPL_A
  b[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02; // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
  b[5] = 0x01; // EX_AC_AR
  return b;
}

/** An iSCSI TransportID in format 01b ("name,i,0xISID"), padded to a multiple of 4 bytes. */
export function encodeTransportId(initiatorName: string, isid: string): Buffer {
  const name = isid ? `${initiatorName},i,0x${isid}` : initiatorName;
  const nameLength = (Math.floor((Buffer.byteLength(name) + 1 + 3) / 4) * 4) as number;
  const b = Buffer.alloc(4 + nameLength);
  b[0] = (isid ? 0x40 : 0x00) | ISCSI_PROTOCOL_ID;
  b.writeUInt16BE(nameLength, 2);
  b.write(name, 4, "utf8");
  return b;
}

function readFullStatus(state: UnitState): Buffer {
  const res = state.reservation;
  const parts: Buffer[] = [];
  for (const r of state.registrations) {
    const tid = encodeTransportId(r.initiatorName, r.isid);
    const d = Buffer.alloc(24 + tid.length);
    d.write(r.key, 0, "hex");
    const holder = res !== null && (isAllRegistrantsType(res.type) || res.holderNexusId === r.nexusId);
    d[12] = (r.allTargetPorts ? 0x02 : 0) | (holder ? 0x01 : 0);
    if (holder && res) d[13] = reservationTypeCodes[res.type];
    d.writeUInt16BE(r.allTargetPorts ? 0 : r.relativeTargetPort, 18);
    d.writeUInt32BE(tid.length, 20);
    tid.copy(d, 24);
    parts.push(d);
  }
  const body = Buffer.concat(parts);
  const h = Buffer.alloc(8);
  h.writeUInt32BE(state.prGeneration, 0);
  h.writeUInt32BE(body.length, 4);
  return Buffer.concat([h, body]);
}

/** Parses an iSCSI TransportID at `at`; returns it and its length. */
export function parseTransportId(p: Buffer, at: number): { id: TransportId; length: number } {
  if (at + 4 > p.length) throw parameterListLengthError();
  const format = p[at]! >> 6;
  if ((p[at]! & 0x0f) !== ISCSI_PROTOCOL_ID || format > 1) throw invalidFieldInParameterList(at);
  const additional = p.readUInt16BE(at + 2);
  if (additional < 4 || additional % 4 !== 0 || at + 4 + additional > p.length) {
    throw invalidFieldInParameterList(at + 2);
  }
  const text = p
    .subarray(at + 4, at + 4 + additional)
    .toString("utf8")
    .replace(/\0.*$/s, "");
  if (format === 0) {
    if (!text) throw invalidFieldInParameterList(at + 4);
    return { id: { initiatorName: text, isid: null }, length: 4 + additional };
  }
  const m = /^(.+),i,0x([0-9a-fA-F]{12})$/.exec(text);
  if (!m) throw invalidFieldInParameterList(at + 4);
  return { id: { initiatorName: m[1]!, isid: m[2]!.toLowerCase() }, length: 4 + additional };
}

const nexusIdentity = (n: Nexus): PrOutOp["nexus"] => ({
  id: n.id,
  initiatorName: n.initiatorName,
  isid: n.isid.toLowerCase(),
  relativeTargetPort: n.relativeTargetPort,
});

/** Decodes a PR OUT CDB and parameter list into a unit-state operation. */
export function parsePrOut(cdb: Buffer, data: Buffer, nexus: Nexus): PrOutOp {
  const serviceAction = SERVICE_ACTIONS[cdb[1]! & 0x1f];
  if (!serviceAction) throw invalidFieldInCdb(1, 4);
  const scope = cdb[2]! >> 4;
  const typeCode = cdb[2]! & 0x0f;
  const listLength = cdb.readUInt32BE(5);
  const type = reservationTypeFromCode(typeCode) ?? null;
  if (serviceAction === "reserve" || serviceAction === "release") {
    if (scope !== 0) throw invalidFieldInCdb(2, 7);
    if (!type) throw invalidFieldInCdb(2, 3);
  }
  if (data.length < listLength) throw parameterListLengthError();
  const p = data.subarray(0, listLength);
  const base = {
    kind: "pr-out" as const,
    nexus: nexusIdentity(nexus),
    serviceAction,
    type,
    transportIds: [] as TransportId[],
    unregister: false,
    moveRelativeTargetPort: 0,
    specIpt: false,
    allTargetPorts: false,
  };
  if (serviceAction === "register-and-move") {
    if (listLength < 24) throw parameterListLengthError();
    const tidLength = p.readUInt32BE(20);
    if (24 + tidLength > listLength) throw parameterListLengthError();
    const { id } = parseTransportId(p.subarray(0, 24 + tidLength), 24);
    return {
      ...base,
      key: p.subarray(0, 8).toString("hex"),
      serviceActionKey: p.subarray(8, 16).toString("hex"),
      aptpl: (p[17]! & 0x01) !== 0,
      unregister: (p[17]! & 0x02) !== 0,
      moveRelativeTargetPort: p.readUInt16BE(18),
      transportIds: [id],
    };
  }
  // Basic parameter list (24 bytes) plus, with SPEC_I_PT, a list of TransportIDs.
  if (listLength < 24) throw parameterListLengthError();
  const specIpt = (p[20]! & 0x08) !== 0;
  const allTargetPorts = (p[20]! & 0x04) !== 0;
  const aptpl = (p[20]! & 0x01) !== 0;
  if (!specIpt && listLength !== 24) throw parameterListLengthError();
  const registering = serviceAction === "register" || serviceAction === "register-and-ignore-existing-key";
  // SPEC_I_PT only means something to REGISTER; ALL_TG_PT is ignored outside the two register actions.
  if (specIpt && serviceAction !== "register") throw invalidFieldInParameterList(20, 3);
  if ((serviceAction === "preempt" || serviceAction === "preempt-and-abort") && scope !== 0) {
    throw invalidFieldInCdb(2, 7);
  }
  const transportIds: TransportId[] = [];
  if (specIpt) {
    if (listLength < 28) throw parameterListLengthError();
    const total = p.readUInt32BE(24);
    if (28 + total > listLength) throw parameterListLengthError();
    for (let at = 28; at < 28 + total;) {
      const { id, length } = parseTransportId(p.subarray(0, 28 + total), at);
      transportIds.push(id);
      at += length;
    }
  }
  return {
    ...base,
    key: p.subarray(0, 8).toString("hex"),
    serviceActionKey: p.subarray(8, 16).toString("hex"),
    aptpl,
    specIpt,
    allTargetPorts: registering && allTargetPorts,
    transportIds,
  };
}

export const persistentReserveOut: Handler = async (lu, cmd) => {
  const op = parsePrOut(cmd.cdb, cmd.dataOut, cmd.nexus);
  const listLength = cmd.cdb.readUInt32BE(5);
  const { outcome, abortNexusIds } = await lu.unitState.apply(op);
  if (abortNexusIds?.length) lu.logger.info({ abortNexusIds }, "registrations preempted with abort");
  if (outcome.status === 0x18) throw new ReservationConflict();
  if (outcome.status !== 0) {
    throw new ScsiError(
      outcome.senseKey ?? 0x5,
      outcome.asc ?? 0x26,
      outcome.ascq ?? 0,
      outcome.fieldPointer !== undefined
        ? { field: { inCdb: false, byte: outcome.fieldPointer } }
        : undefined,
    );
  }
  return { status: 0, dataOutLength: listLength };
};
