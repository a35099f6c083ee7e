/** SPC-2 RESERVE and RELEASE (6 and 10), kept in the shared unit state like persistent reservations. */
import { GOOD, type Handler } from "../lu-context.js";
import { ReservationConflict, invalidFieldInCdb } from "../sense.js";

export const reserve: Handler = async (lu, cmd) => {
  // Third-party and extent reservations are not supported.
  if (cmd.cdb[1]! & 0x13) throw invalidFieldInCdb(1, cmd.cdb[1]! & 0x10 ? 4 : 0);
  const { outcome } = await lu.unitState.apply({ kind: "spc2-reserve", nexusId: cmd.nexus.id });
  if (outcome.status !== 0) throw new ReservationConflict();
  return GOOD;
};

export const release: Handler = async (lu, cmd) => {
  if (cmd.cdb[1]! & 0x13) throw invalidFieldInCdb(1, cmd.cdb[1]! & 0x10 ? 4 : 0);
  const { outcome } = await lu.unitState.apply({ kind: "spc2-release", nexusId: cmd.nexus.id });
  if (outcome.status !== 0) throw new ReservationConflict();
  return GOOD;
};
