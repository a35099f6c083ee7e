/**
 * Shared logical-unit state (persistent and SPC-2 reservations, the caching
 * page's WCE): schema, the pure reducer, the store interface and the standalone
 * store. The SCSI layer changes this state only through `UnitStateStore.apply`,
 * so a pair can run the reducer on one node and replicate state and unit
 * attentions to the other.
 */
export * from "./unit-state-schema.js";
export {
  applyUnitOp,
  findRegistration,
  isReservationHolder,
  UA,
  type ReducerResult,
} from "./unit-state-reducer.js";
export { LocalUnitStateStore } from "./local-unit-state-store.js";
