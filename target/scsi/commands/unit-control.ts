/** TEST UNIT READY, REQUEST SENSE, START STOP UNIT and PREVENT ALLOW MEDIUM REMOVAL. */
import { GOOD, dataIn, type Handler } from "../lu-context.js";
import { SenseKey, ScsiError, buildSense, invalidFieldInCdb, mediumRemovalPrevented } from "../sense.js";

/**
 * TEST UNIT READY says whether the port it came through can serve I/O now (SPC-4 5.15.2.4: in the
 * transitioning, standby and unavailable ALUA states the command is not allowed): NOT READY with
 * LOGICAL UNIT NOT ACCESSIBLE and the state's ASCQ (0Ah transitioning, 0Bh standby, 0Ch
 * unavailable). Path checkers (dm-multipath's `tur`) rely on it: a pair node that does not serve
 * must not look like a good path.
 */
export const testUnitReady: Handler = (lu, cmd) => {
  const group = lu.portGroups().find((g) => g.id === cmd.nexus.targetPortGroup);
  switch (group?.state) {
    case "transitioning":
      throw new ScsiError(SenseKey.notReady, 0x04, 0x0a);
    case "standby":
      throw new ScsiError(SenseKey.notReady, 0x04, 0x0b);
    case "unavailable":
    case "offline":
      throw new ScsiError(SenseKey.notReady, 0x04, 0x0c);
    default:
      return GOOD;
  }
};

/** REQUEST SENSE reports (and clears) the oldest pending unit attention, else NO SENSE. */
export const requestSense: Handler = (lu, cmd) => {
  const cdb = cmd.cdb;
  if (cdb[1]! & 0x01) throw invalidFieldInCdb(1, 0); // DESC: descriptor format is not supported
  const ua = lu.takeUnitAttention(cmd.nexus);
  const sense = ua ? buildSense(SenseKey.unitAttention, ua[0], ua[1]) : buildSense(SenseKey.noSense, 0, 0);
  return dataIn(sense, cdb[4]!);
};

/** POWER CONDITION values of SBC-3 table 70 that the unit accepts (it has no power states of its own). */
const POWER_CONDITIONS = new Set([0x0, 0x1, 0x2, 0x3, 0x7, 0xa, 0xb]);

export const startStopUnit: Handler = (lu, cmd) => {
  const cdb = cmd.cdb;
  const powerCondition = cdb[4]! >> 4;
  if (!POWER_CONDITIONS.has(powerCondition)) throw invalidFieldInCdb(4, 7);
  const loej = (cdb[4]! & 0x02) !== 0;
  const start = (cdb[4]! & 0x01) !== 0;
  if (powerCondition === 0 && loej && !start && lu.preventingNexuses.size > 0) throw mediumRemovalPrevented();
  return GOOD;
};

export const preventAllowMediumRemoval: Handler = (lu, cmd) => {
  const prevent = cmd.cdb[4]! & 0x03;
  if (prevent > 1) throw invalidFieldInCdb(4, 1);
  if (prevent) lu.preventingNexuses.add(cmd.nexus.id);
  else lu.preventingNexuses.delete(cmd.nexus.id);
  return GOOD;
};
