/**
 * The contract between the iSCSI transport (target/iscsi) and the SCSI
 * command layer (target/scsi). The transport gathers all Data-Out of a command
 * before executing it and turns the response into Data-In/SCSI Response PDUs,
 * computing residuals from the lengths below.
 */

/** One I_T nexus: an initiator port (name + ISID) seen through one target port. */
export interface Nexus {
  /** Stable key for this I_T nexus across the pair, e.g. "iqn.x,i,0x23d000000001|2". */
  readonly id: string;
  readonly initiatorName: string;
  /** ISID as 12 hex digits. */
  readonly isid: string;
  /** Relative target port identifier of the port this nexus uses (1 on node a, 2 on node b). */
  readonly relativeTargetPort: number;
  /** Target port group of that port. */
  readonly targetPortGroup: number;
}

export type TaskAttribute = "simple" | "ordered" | "head-of-queue" | "aca";

export interface ScsiCommand {
  readonly nexus: Nexus;
  readonly lun: number;
  readonly cdb: Buffer;
  /**
   * All Data-Out of the command (immediate + unsolicited + solicited), exactly as received.
   * Valid until `execute` settles: the transport then reuses the buffer for later writes, so keep
   * no reference to it beyond that (copy what must live longer).
   */
  readonly dataOut: Buffer;
  /** Expected Data Transfer Length from the SCSI Command PDU. */
  readonly expectedTransferLength: number;
  readonly read: boolean;
  readonly write: boolean;
  readonly taskAttribute: TaskAttribute;
}

export interface ScsiResponse {
  /** SCSI status byte (0 GOOD, 2 CHECK CONDITION, 8 BUSY, 0x18 RESERVATION CONFLICT, 0x28 TASK SET FULL). */
  readonly status: number;
  /** Fixed-format sense data when status is CHECK CONDITION. */
  readonly sense?: Buffer;
  /** Data-In the command produced, before truncation to the expected transfer length. */
  readonly dataIn?: Buffer;
  /**
   * For write-type commands: the number of Data-Out bytes the CDB asked for. The transport
   * reports over/underflow against the expected transfer length from it.
   */
  readonly dataOutLength?: number;
}

export const ScsiStatus = {
  good: 0x00,
  checkCondition: 0x02,
  conditionMet: 0x04,
  busy: 0x08,
  reservationConflict: 0x18,
  taskSetFull: 0x28,
  acaActive: 0x30,
  taskAborted: 0x40,
} as const;

/** What the transport asks of the SCSI layer. */
export interface ScsiTarget {
  /** LUNs the target exposes to this nexus. */
  luns(nexus: Nexus): number[];
  execute(command: ScsiCommand): Promise<ScsiResponse>;
  /** Task management. */
  lunReset(nexus: Nexus, lun: number): Promise<void>;
  /** ABORT TASK SET / CLEAR TASK SET: the transport aborts its own tasks; the SCSI layer raises unit attentions. */
  clearTaskSet(nexus: Nexus, lun: number): Promise<void>;
  /** A nexus appeared (login) or was lost (logout, connection drop, session reinstatement). */
  nexusCreated(nexus: Nexus): void;
  nexusLost(nexus: Nexus): void;
}
