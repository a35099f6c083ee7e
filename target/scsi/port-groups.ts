/** Target port groups as REPORT TARGET PORT GROUPS and VPD 0x83 describe them (SPC-4 6.37). */

export type AluaState =
  "active/optimized" | "active/non-optimized" | "standby" | "unavailable" | "offline" | "transitioning";

export const aluaStateCodes: Record<AluaState, number> = {
  "active/optimized": 0x0,
  "active/non-optimized": 0x1,
  standby: 0x2,
  unavailable: 0x3,
  offline: 0xe,
  transitioning: 0xf,
};

export interface PortGroupInfo {
  /** TARGET PORT GROUP identifier. */
  readonly id: number;
  readonly state: AluaState;
  /** PREF bit: the preferred group for I/O. */
  readonly preferred?: boolean;
  /** Relative target port identifiers in this group. */
  readonly relativePorts: readonly number[];
}
