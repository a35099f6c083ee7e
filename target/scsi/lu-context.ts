/** What a command handler sees of its logical unit, and the shapes of the opcode table. */
import type { Logger } from "../log.js";
import type { BlockDevice } from "../store/block-device.js";
import type { PortGroupInfo } from "./port-groups.js";
import type { Nexus, ScsiCommand, ScsiResponse } from "./types.js";
import type { UnitStateStore } from "./unit-state.js";

export interface BlockLimits {
  readonly maxTransferBlocks: number;
  readonly optimalTransferBlocks: number;
  readonly maxUnmapBlocks: number;
  readonly maxUnmapDescriptors: number;
  readonly maxWriteSameBlocks: number;
  readonly maxCompareAndWriteBlocks: number;
  /** Blocks per unmap granule (hole-punching granularity). */
  readonly unmapGranularityBlocks: number;
}

export interface LuContext {
  readonly device: BlockDevice;
  readonly blockSize: number;
  /** Capacity in logical blocks. */
  readonly blockCount: number;
  readonly limits: BlockLimits;
  readonly serial: string;
  readonly vendor: string;
  readonly product: string;
  readonly revision: string;
  /** 16-byte NAA 6h logical-unit designator. */
  readonly naa: Buffer;
  readonly unitState: UnitStateStore;
  readonly portGroups: () => PortGroupInfo[];
  /** Nexuses with an active PREVENT ALLOW MEDIUM REMOVAL (prevent=1). */
  readonly preventingNexuses: Set<string>;
  readonly commands: readonly CommandSpec[];
  readonly logger: Logger;
  /** Takes the oldest pending unit attention of a nexus (REQUEST SENSE reports it as data). */
  takeUnitAttention(nexus: Nexus): readonly [number, number] | undefined;
  /** Raises a unit attention on every nexus but `except` (ALUA states or the LUN inventory changed). */
  broadcastUnitAttention(asc: number, ascq: number, except: Nexus | null): Promise<void>;
}

export type Handler = (lu: LuContext, cmd: ScsiCommand) => Promise<ScsiResponse> | ScsiResponse;

/**
 * How a command fares against a persistent reservation held by another I_T nexus
 * (SPC-4 table 63, SBC-3 table 13):
 * - allowed: never conflicts;
 * - read: allowed under the Write Exclusive types, conflicts under Exclusive Access for non-registrants;
 * - write: conflicts for non-registrants under every type (registrants may under RO/AR types);
 * - a function: decides from the CDB (START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL).
 */
export type ConflictClass = "allowed" | "read" | "write" | ((cdb: Buffer) => "allowed" | "read" | "write");

export interface CommandSpec {
  readonly opcode: number;
  /** Service action for opcodes that have them (in byte 1, bits 4-0, unless noted by the handler). */
  readonly serviceAction?: number;
  readonly name: string;
  /** CDB USAGE DATA for REPORT SUPPORTED OPERATION CODES: byte 0 is the opcode, set bits are used. */
  readonly usage: readonly number[];
  readonly handler: Handler;
  readonly conflict: ConflictClass;
  /** Allowed while another nexus holds an SPC-2 reservation. */
  readonly spc2Allowed?: boolean;
  /** INQUIRY, REPORT LUNS and REQUEST SENSE are not stopped by a pending unit attention. */
  readonly ignoresUnitAttention?: boolean;
  /** Nominal and recommended timeouts in seconds (RCTD). */
  readonly timeoutSeconds?: number;
}

/**
 * Caching page WCE, as the unit state holds it (one setting for the unit, on both nodes of a
 * pair): when false every write is forced to the medium (FUA).
 */
export function writeCacheEnabled(lu: LuContext): boolean {
  return lu.unitState.get().writeCacheEnabled;
}

export const GOOD: ScsiResponse = Object.freeze({ status: 0 });

/** GOOD with parameter data, cut to the CDB's allocation length. */
export function dataIn(data: Buffer, allocationLength: number): ScsiResponse {
  return { status: 0, dataIn: data.length > allocationLength ? data.subarray(0, allocationLength) : data };
}
