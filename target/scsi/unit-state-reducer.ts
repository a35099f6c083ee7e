/**
 * The pure decision function for shared logical-unit state: given the current
 * state and one operation, the next state, the command's outcome and the unit
 * attentions to raise. Both the standalone store and the pair's replicated
 * store run exactly this function, in one order.
 */
import {
  isAllRegistrantsType,
  isRegistrantsType,
  itNexusId,
  registrationCovers,
  type NexusIdentity,
  type PrOutOp,
  type Registration,
  type Reservation,
  type UnitAttention,
  type UnitOp,
  type UnitOpOutcome,
  type UnitState,
} from "./unit-state-schema.js";

export interface ReducerResult {
  state: UnitState;
  outcome: UnitOpOutcome;
  unitAttentions: UnitAttention[];
  abortNexusIds?: string[];
}

const GOOD = 0x00;
const CHECK_CONDITION = 0x02;
const RESERVATION_CONFLICT = 0x18;
const ILLEGAL_REQUEST = 0x5;

export const UA = {
  powerOnReset: [0x29, 0x00],
  busDeviceReset: [0x29, 0x03],
  itNexusLoss: [0x29, 0x07],
  modeParametersChanged: [0x2a, 0x01],
  reservationsPreempted: [0x2a, 0x03],
  reservationsReleased: [0x2a, 0x04],
  registrationsPreempted: [0x2a, 0x05],
  asymmetricAccessStateChanged: [0x2a, 0x06],
  capacityDataChanged: [0x2a, 0x09],
  reportedLunsDataChanged: [0x3f, 0x0e],
} as const satisfies Record<string, readonly [number, number]>;

const good = (): UnitOpOutcome => ({ status: GOOD });
const conflict = (): UnitOpOutcome => ({ status: RESERVATION_CONFLICT });
const illegal = (asc: number, ascq: number, fieldPointer?: number): UnitOpOutcome =>
  fieldPointer === undefined
    ? { status: CHECK_CONDITION, senseKey: ILLEGAL_REQUEST, asc, ascq }
    : { status: CHECK_CONDITION, senseKey: ILLEGAL_REQUEST, asc, ascq, fieldPointer };
/** INVALID FIELD IN PARAMETER LIST pointing at a byte of the PR OUT parameter list. */
const invalidParam = (byte: number): UnitOpOutcome => illegal(0x26, 0x00, byte);

const ZERO_KEY = "0000000000000000";

function uaForRegistration(reg: Registration, [asc, ascq]: readonly [number, number]): UnitAttention {
  return {
    nexusId: reg.nexusId,
    asc,
    ascq,
    match: {
      initiatorName: reg.initiatorName,
      isid: reg.isid,
      relativeTargetPort: reg.relativeTargetPort,
      anyPort: reg.allTargetPorts,
    },
  };
}

/** The registration covering nexus `n`, if any. */
export function findRegistration(state: UnitState, n: Omit<NexusIdentity, "id">): Registration | undefined {
  return state.registrations.find((r) => registrationCovers(r, n));
}

/** Whether nexus `n` holds the persistent reservation (every registrant does for the all-registrants types). */
export function isReservationHolder(state: UnitState, n: Omit<NexusIdentity, "id">): boolean {
  const res = state.reservation;
  if (!res) return false;
  const reg = findRegistration(state, n);
  if (!reg) return false;
  return isAllRegistrantsType(res.type) || res.holderNexusId === reg.nexusId;
}

const bumpGeneration = (g: number): number => (g + 1) >>> 0;

export function applyUnitOp(state: UnitState, op: UnitOp): ReducerResult {
  switch (op.kind) {
    case "pr-out":
      return applyPrOut(state, op);
    case "spc2-reserve": {
      if (state.registrations.length > 0 || state.reservation) {
        return { state, outcome: conflict(), unitAttentions: [] };
      }
      if (state.spc2Holder !== null && state.spc2Holder !== op.nexusId) {
        return { state, outcome: conflict(), unitAttentions: [] };
      }
      return { state: { ...state, spc2Holder: op.nexusId }, outcome: good(), unitAttentions: [] };
    }
    case "spc2-release": {
      if (state.reservation) return { state, outcome: conflict(), unitAttentions: [] };
      // Releasing a reservation held by someone else (or none) succeeds without effect.
      if (state.spc2Holder !== op.nexusId) return { state, outcome: good(), unitAttentions: [] };
      return { state: { ...state, spc2Holder: null }, outcome: good(), unitAttentions: [] };
    }
    case "nexus-lost": {
      const next = state.spc2Holder === op.nexusId ? { ...state, spc2Holder: null } : state;
      const [asc, ascq] = UA.itNexusLoss;
      return { state: next, outcome: good(), unitAttentions: [{ nexusId: op.nexusId, asc, ascq }] };
    }
    case "lun-reset": {
      // A logical unit reset releases SPC-2 reservations; persistent reservations survive it.
      // Every I_T nexus hears of it, the one that asked included (SAM-5 7.7).
      const next = state.spc2Holder !== null ? { ...state, spc2Holder: null } : state;
      const [asc, ascq] = UA.busDeviceReset;
      return {
        state: next,
        outcome: good(),
        unitAttentions: [{ nexusId: "", asc, ascq, allNexuses: true, exceptNexusId: null }],
      };
    }
    case "set-write-cache": {
      if (state.writeCacheEnabled === op.enabled) return { state, outcome: good(), unitAttentions: [] };
      // SPC-4 (mode parameters): every I_T nexus but the one that changed them hears MODE PARAMETERS CHANGED.
      const [asc, ascq] = UA.modeParametersChanged;
      return {
        state: { ...state, writeCacheEnabled: op.enabled },
        outcome: good(),
        unitAttentions: [{ nexusId: "", asc, ascq, allNexuses: true, exceptNexusId: op.nexusId }],
      };
    }
    case "broadcast-unit-attention":
      return {
        state,
        outcome: good(),
        unitAttentions: [
          { nexusId: "", asc: op.asc, ascq: op.ascq, allNexuses: true, exceptNexusId: op.exceptNexusId },
        ],
      };
  }
}

function applyPrOut(state: UnitState, op: PrOutOp): ReducerResult {
  // SPC-3 5.6.3: while an SPC-2 reservation exists every PERSISTENT RESERVE command conflicts.
  if (state.spc2Holder !== null) return { state, outcome: conflict(), unitAttentions: [] };
  switch (op.serviceAction) {
    case "register":
    case "register-and-ignore-existing-key":
      return register(state, op);
    case "reserve":
      return reserve(state, op);
    case "release":
      return release(state, op);
    case "clear":
      return clear(state, op);
    case "preempt":
    case "preempt-and-abort":
      return preempt(state, op);
    case "register-and-move":
      return registerAndMove(state, op);
  }
}

function registrationFor(n: NexusIdentity, key: string, allTargetPorts: boolean): Registration {
  return {
    nexusId: n.id,
    initiatorName: n.initiatorName,
    isid: n.isid.toLowerCase(),
    relativeTargetPort: n.relativeTargetPort,
    key,
    allTargetPorts,
  };
}

/** Removes registrations and, when the holder's registration goes, the (non all-registrants) reservation. */
function withoutRegistrations(state: UnitState, removed: Set<Registration>): UnitState {
  const registrations = state.registrations.filter((r) => !removed.has(r));
  let reservation: Reservation | null = state.reservation;
  if (reservation) {
    if (isAllRegistrantsType(reservation.type)) {
      if (registrations.length === 0) reservation = null;
    } else if (![...removed].every((r) => r.nexusId !== reservation!.holderNexusId)) {
      reservation = null;
    }
  }
  return { ...state, registrations, reservation };
}

function register(state: UnitState, op: PrOutOp): ReducerResult {
  const ignoreKey = op.serviceAction === "register-and-ignore-existing-key";
  const existing = findRegistration(state, op.nexus);
  if (!existing) {
    if (!ignoreKey && op.key !== ZERO_KEY) return { state, outcome: conflict(), unitAttentions: [] };
    if (op.serviceActionKey === ZERO_KEY) return { state, outcome: good(), unitAttentions: [] };
    if (op.specIpt && ignoreKey) return { state, outcome: invalidParam(20), unitAttentions: [] };
    const added: Registration[] = [registrationFor(op.nexus, op.serviceActionKey, op.allTargetPorts)];
    if (op.specIpt) {
      for (const t of op.transportIds) {
        // The named initiator ports register through the port the command arrived on (or all, with ALL_TG_PT).
        const isid = t.isid ?? "";
        const port = op.nexus.relativeTargetPort;
        const ident = { initiatorName: t.initiatorName, isid, relativeTargetPort: port };
        const already =
          state.registrations.some((r) => registrationCovers(r, ident)) ||
          added.some((r) => registrationCovers(r, ident));
        if (already) {
          // SPC-4 5.12.7: a TransportID naming a registered I_T nexus fails the whole command.
          return { state, outcome: invalidParam(24), unitAttentions: [] };
        }
        added.push({
          nexusId: itNexusId(t.initiatorName, isid, port),
          initiatorName: t.initiatorName,
          isid,
          relativeTargetPort: port,
          key: op.serviceActionKey,
          allTargetPorts: op.allTargetPorts,
        });
      }
    }
    return {
      state: {
        ...state,
        registrations: [...state.registrations, ...added],
        prGeneration: bumpGeneration(state.prGeneration),
        aptpl: op.aptpl,
      },
      outcome: good(),
      unitAttentions: [],
    };
  }
  if (!ignoreKey && op.key !== existing.key) return { state, outcome: conflict(), unitAttentions: [] };
  if (op.specIpt) return { state, outcome: invalidParam(20), unitAttentions: [] };
  if (op.serviceActionKey !== ZERO_KEY) {
    const registrations = state.registrations.map((r) =>
      r === existing ? { ...r, key: op.serviceActionKey } : r,
    );
    return {
      state: { ...state, registrations, prGeneration: bumpGeneration(state.prGeneration), aptpl: op.aptpl },
      outcome: good(),
      unitAttentions: [],
    };
  }
  // Unregister. A holder's reservation of a registrants-only type is released with RESERVATIONS RELEASED.
  const res = state.reservation;
  const wasHolder =
    res !== null && (isAllRegistrantsType(res.type) || res.holderNexusId === existing.nexusId);
  let next = withoutRegistrations(state, new Set([existing]));
  next = { ...next, prGeneration: bumpGeneration(state.prGeneration), aptpl: op.aptpl };
  const unitAttentions: UnitAttention[] = [];
  if (wasHolder && res && next.reservation === null && isRegistrantsType(res.type)) {
    for (const r of next.registrations) unitAttentions.push(uaForRegistration(r, UA.reservationsReleased));
  }
  return { state: next, outcome: good(), unitAttentions };
}

/** The caller's registration when the reservation key matches, else a RESERVATION CONFLICT result. */
function authenticate(state: UnitState, op: PrOutOp): Registration | ReducerResult {
  const reg = findRegistration(state, op.nexus);
  if (!reg || reg.key !== op.key) return { state, outcome: conflict(), unitAttentions: [] };
  return reg;
}
const isResult = (x: Registration | ReducerResult): x is ReducerResult => "outcome" in x;

function reserve(state: UnitState, op: PrOutOp): ReducerResult {
  const reg = authenticate(state, op);
  if (isResult(reg)) return reg;
  if (!op.type) return { state, outcome: illegal(0x24, 0x00), unitAttentions: [] };
  const res = state.reservation;
  if (res) {
    const holder = isAllRegistrantsType(res.type) || res.holderNexusId === reg.nexusId;
    if (!holder || res.type !== op.type) return { state, outcome: conflict(), unitAttentions: [] };
    return { state, outcome: good(), unitAttentions: [] };
  }
  const reservation: Reservation = {
    holderNexusId: isAllRegistrantsType(op.type) ? null : reg.nexusId,
    type: op.type,
    scope: "logical-unit",
  };
  return { state: { ...state, reservation }, outcome: good(), unitAttentions: [] };
}

function release(state: UnitState, op: PrOutOp): ReducerResult {
  const reg = authenticate(state, op);
  if (isResult(reg)) return reg;
  const res = state.reservation;
  if (!res) return { state, outcome: good(), unitAttentions: [] };
  const holder = isAllRegistrantsType(res.type) || res.holderNexusId === reg.nexusId;
  if (!holder) return { state, outcome: good(), unitAttentions: [] };
  // INVALID RELEASE OF PERSISTENT RESERVATION
  if (op.type !== res.type) return { state, outcome: illegal(0x26, 0x04), unitAttentions: [] };
  const unitAttentions: UnitAttention[] = [];
  if (isRegistrantsType(res.type)) {
    for (const r of state.registrations) {
      if (r !== reg) unitAttentions.push(uaForRegistration(r, UA.reservationsReleased));
    }
  }
  return { state: { ...state, reservation: null }, outcome: good(), unitAttentions };
}

function clear(state: UnitState, op: PrOutOp): ReducerResult {
  const reg = authenticate(state, op);
  if (isResult(reg)) return reg;
  const unitAttentions = state.registrations
    .filter((r) => r !== reg)
    .map((r) => uaForRegistration(r, UA.reservationsPreempted));
  return {
    state: {
      ...state,
      registrations: [],
      reservation: null,
      prGeneration: bumpGeneration(state.prGeneration),
    },
    outcome: good(),
    unitAttentions,
  };
}

function preempt(state: UnitState, op: PrOutOp): ReducerResult {
  const reg = authenticate(state, op);
  if (isResult(reg)) return reg;
  const abort = op.serviceAction === "preempt-and-abort";
  const res = state.reservation;
  const finish = (next: UnitState, removed: Registration[], extra: UnitAttention[] = []): ReducerResult => {
    const unitAttentions = [...removed.map((r) => uaForRegistration(r, UA.registrationsPreempted)), ...extra];
    const result: ReducerResult = {
      state: { ...next, prGeneration: bumpGeneration(state.prGeneration) },
      outcome: good(),
      unitAttentions,
    };
    if (abort) result.abortNexusIds = removed.map((r) => r.nexusId);
    return result;
  };

  if (res && isAllRegistrantsType(res.type) && op.serviceActionKey === ZERO_KEY) {
    // Preempting an all-registrants reservation: every other registration goes, the caller takes the unit.
    if (!op.type) return { state, outcome: illegal(0x24, 0x00), unitAttentions: [] };
    const removed = state.registrations.filter((r) => r !== reg);
    const reservation: Reservation = {
      holderNexusId: isAllRegistrantsType(op.type) ? null : reg.nexusId,
      type: op.type,
      scope: "logical-unit",
    };
    return finish({ ...state, registrations: [reg], reservation }, removed);
  }
  if (op.serviceActionKey === ZERO_KEY) return { state, outcome: invalidParam(8), unitAttentions: [] };

  const holderReg =
    res && !isAllRegistrantsType(res.type)
      ? state.registrations.find((r) => r.nexusId === res.holderNexusId)
      : undefined;
  if (res && holderReg && holderReg.key === op.serviceActionKey) {
    // Preempting the holder: its registrations (not the caller's) go and the caller takes the reservation.
    if (!op.type) return { state, outcome: illegal(0x24, 0x00), unitAttentions: [] };
    const removed = state.registrations.filter((r) => r !== reg && r.key === op.serviceActionKey);
    const registrations = state.registrations.filter((r) => !removed.includes(r));
    const reservation: Reservation = {
      holderNexusId: isAllRegistrantsType(op.type) ? null : reg.nexusId,
      type: op.type,
      scope: "logical-unit",
    };
    const extra: UnitAttention[] = [];
    if (res.type !== op.type) {
      for (const r of registrations) {
        if (r !== reg) extra.push(uaForRegistration(r, UA.reservationsReleased));
      }
    }
    return finish({ ...state, registrations, reservation }, removed, extra);
  }
  // Otherwise only registrations with the given key go; the reservation is untouched.
  const removed = state.registrations.filter((r) => r.key === op.serviceActionKey && r !== reg);
  if (removed.length === 0) {
    const selfOnly = reg.key === op.serviceActionKey;
    if (!selfOnly) return { state, outcome: conflict(), unitAttentions: [] };
  }
  return finish(withoutRegistrations(state, new Set(removed)), removed);
}

function registerAndMove(state: UnitState, op: PrOutOp): ReducerResult {
  const reg = authenticate(state, op);
  if (isResult(reg)) return reg;
  const res = state.reservation;
  if (!res || isAllRegistrantsType(res.type) || res.holderNexusId !== reg.nexusId) {
    return { state, outcome: conflict(), unitAttentions: [] };
  }
  if (op.serviceActionKey === ZERO_KEY) return { state, outcome: invalidParam(8), unitAttentions: [] };
  const dest = op.transportIds[0];
  if (!dest || op.transportIds.length !== 1) return { state, outcome: invalidParam(24), unitAttentions: [] };
  const destIdent = {
    initiatorName: dest.initiatorName,
    isid: dest.isid ?? "",
    relativeTargetPort: op.moveRelativeTargetPort,
  };
  if (registrationCovers(reg, destIdent) && reg.relativeTargetPort === destIdent.relativeTargetPort) {
    return { state, outcome: invalidParam(24), unitAttentions: [] };
  }
  let registrations = state.registrations;
  let destReg = registrations.find((r) => registrationCovers(r, destIdent));
  if (destReg) {
    registrations = registrations.map((r) => (r === destReg ? { ...r, key: op.serviceActionKey } : r));
    destReg = registrations.find((r) => registrationCovers(r, destIdent))!;
  } else {
    destReg = {
      nexusId: itNexusId(destIdent.initiatorName, destIdent.isid, destIdent.relativeTargetPort),
      ...destIdent,
      key: op.serviceActionKey,
      allTargetPorts: false,
    };
    registrations = [...registrations, destReg];
  }
  if (op.unregister) registrations = registrations.filter((r) => r !== reg);
  return {
    state: {
      ...state,
      registrations,
      reservation: { ...res, holderNexusId: destReg.nexusId },
      prGeneration: bumpGeneration(state.prGeneration),
      aptpl: op.aptpl,
    },
    outcome: good(),
    unitAttentions: [],
  };
}
