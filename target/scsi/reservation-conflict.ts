/** Whether a command conflicts with the reservations another I_T nexus holds. */
import type { ConflictClass } from "./lu-context.js";
import {
  findRegistration,
  isAllRegistrantsType,
  isRegistrantsType,
  type NexusIdentity,
  type UnitState,
} from "./unit-state.js";

const WRITE_EXCLUSIVE_TYPES = new Set([
  "write-exclusive",
  "write-exclusive-registrants-only",
  "write-exclusive-all-registrants",
]);

export function conflictsWithReservation(
  state: UnitState,
  nexus: NexusIdentity,
  conflict: ConflictClass,
  cdb: Buffer,
  spc2Allowed: boolean,
): boolean {
  if (state.spc2Holder !== null && state.spc2Holder !== nexus.id && !spc2Allowed) return true;
  const res = state.reservation;
  if (!res) return false;
  const cls = typeof conflict === "function" ? conflict(cdb) : conflict;
  if (cls === "allowed") return false;
  const reg = findRegistration(state, nexus);
  if (reg && (isAllRegistrantsType(res.type) || res.holderNexusId === reg.nexusId)) return false;
  if (reg && isRegistrantsType(res.type)) return false;
  if (cls === "read" && WRITE_EXCLUSIVE_TYPES.has(res.type)) return false;
  return true;
}
