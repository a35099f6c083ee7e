/**
 * The SCSI target behind the iSCSI transport: LUN 0 backed by a BlockDevice, with
 * dispatch through the opcode table, per-nexus unit attentions, reservation checks
 * against the shared unit state, and the task-management hooks.
 */
import { createHash } from "node:crypto";
import type { Logger } from "../log.js";
import { DeviceUnavailableError, type BlockDevice } from "../store/block-device.js";
import { standardInquiry } from "./commands/inquiry.js";
import { reportLunsData } from "./commands/maintenance.js";
import { dataIn, type BlockLimits, type CommandSpec, type LuContext } from "./lu-context.js";
import { COMMANDS, buildOpcodeIndex, serviceActionOf, type OpcodeEntry } from "./opcodes.js";
import type { PortGroupInfo } from "./port-groups.js";
import { conflictsWithReservation } from "./reservation-conflict.js";
import {
  ReservationConflict,
  ScsiError,
  SenseKey,
  buildSense,
  invalidFieldInCdb,
  invalidOpcode,
  logicalUnitNotSupported,
} from "./sense.js";
import { ScsiStatus, type Nexus, type ScsiCommand, type ScsiResponse, type ScsiTarget } from "./types.js";
import {
  UA,
  unitAttentionAppliesTo,
  type NexusIdentity,
  type UnitAttention,
  type UnitStateStore,
} from "./unit-state.js";

export interface ScsiTargetOptions {
  device: BlockDevice;
  /** Unit serial number; both nodes of a pair use the same one, so they present one device. */
  serial: string;
  blockSize?: 512 | 4096;
  vendor?: string;
  product?: string;
  revision?: string;
  unitState: UnitStateStore;
  portGroups: () => PortGroupInfo[];
  logger: Logger;
}

/** What the target offers beyond the transport contract. */
export interface HasanScsiTarget extends ScsiTarget {
  /** Raises ASYMMETRIC ACCESS STATE CHANGED on every nexus (after the pair changes port group states). */
  asymmetricAccessStateChanged(): Promise<void>;
  /** Raises REPORTED LUNS DATA HAS CHANGED on every nexus. */
  reportedLunsChanged(): Promise<void>;
  /**
   * The device grew: READ CAPACITY already reports its new size (the capacity follows the
   * device); raises CAPACITY DATA HAS CHANGED (2Ah/09h) on every I_T nexus of this target. On a
   * pair each node raises it on its own nexuses when its own copy grows, so this is not routed
   * through the shared unit state.
   */
  capacityChanged(): void;
}

/** IEEE company identifier used in NAA designators. */
const COMPANY_ID = 0x0a7e5a;
/** Most unit attentions a nexus keeps; older ones are dropped first. */
const MAX_PENDING_UNIT_ATTENTIONS = 16;
/** Most nexuses (connected or gone) with pending unit attentions; the longest-waiting are forgotten. */
const MAX_NEXUSES_WITH_PENDING = 4096;

/** NAA 6h (IEEE registered extended) designator derived from the serial alone. */
export function naaFromSerial(serial: string): Buffer {
  const h = createHash("sha256").update(serial).digest();
  const b = Buffer.alloc(16);
  b[0] = 0x60 | ((COMPANY_ID >> 20) & 0x0f);
  b[1] = (COMPANY_ID >> 12) & 0xff;
  b[2] = (COMPANY_ID >> 4) & 0xff;
  b[3] = ((COMPANY_ID & 0x0f) << 4) | (h[0]! & 0x0f);
  h.copy(b, 4, 1, 13);
  return b;
}

function limitsFor(blockSize: number): BlockLimits {
  const MiB = 1024 * 1024;
  return {
    maxTransferBlocks: (16 * MiB) / blockSize,
    optimalTransferBlocks: MiB / blockSize,
    maxUnmapBlocks: Math.min(1024 * 1024, (1024 * MiB) / blockSize),
    maxUnmapDescriptors: 256,
    // Initiators that ignore MAXIMUM TRANSFER LENGTH read back what they wrote with WRITE SAME.
    maxWriteSameBlocks: (16 * MiB) / blockSize,
    maxCompareAndWriteBlocks: Math.min(255, (64 * 1024) / blockSize),
    unmapGranularityBlocks: Math.max(1, 4096 / blockSize),
  };
}

const identityOf = (n: Nexus): NexusIdentity => ({
  id: n.id,
  initiatorName: n.initiatorName,
  isid: n.isid.toLowerCase(),
  relativeTargetPort: n.relativeTargetPort,
});

const RESERVATION_CONFLICT: ScsiResponse = Object.freeze({ status: ScsiStatus.reservationConflict });

class LogicalUnit implements HasanScsiTarget {
  private readonly ctx: LuContext;
  private readonly index: ReadonlyArray<OpcodeEntry | undefined>;
  private readonly nexuses = new Map<string, Nexus>();
  /** Pending unit attentions per nexus id, oldest first. */
  private readonly pending = new Map<string, Array<readonly [number, number]>>();
  private readonly unitState: UnitStateStore;
  private readonly logger: Logger;

  constructor(o: ScsiTargetOptions) {
    const blockSize = o.blockSize ?? 512;
    this.unitState = o.unitState;
    this.logger = o.logger;
    this.index = buildOpcodeIndex(COMMANDS);
    const device = o.device;
    this.ctx = {
      device,
      blockSize,
      // The device may grow while serving (capacityChanged).
      get blockCount() {
        return Math.floor(device.sizeBytes / blockSize);
      },
      limits: limitsFor(blockSize),
      serial: o.serial,
      vendor: o.vendor ?? "HASAN",
      product: o.product ?? "HA iSCSI LUN",
      revision: o.revision ?? "0001",
      naa: naaFromSerial(o.serial),
      unitState: o.unitState,
      portGroups: o.portGroups,
      preventingNexuses: new Set(),
      commands: COMMANDS,
      logger: o.logger,
      takeUnitAttention: (n) => this.takeUnitAttention(n.id),
      broadcastUnitAttention: async (asc, ascq, except) => {
        await this.unitState.apply({
          kind: "broadcast-unit-attention",
          asc,
          ascq,
          exceptNexusId: except?.id ?? null,
        });
      },
    };
    this.unitState.onUnitAttention((ua) => this.queueUnitAttention(ua));
  }

  luns(): number[] {
    return [0];
  }

  nexusCreated(nexus: Nexus): void {
    if (this.nexuses.has(nexus.id)) {
      this.nexuses.set(nexus.id, nexus);
      return;
    }
    this.nexuses.set(nexus.id, nexus);
    // Every I_T nexus first hears of the power on (SAM-5 6.3.1), unless it already has news to hear.
    if (!this.pending.has(nexus.id)) this.pending.set(nexus.id, [UA.powerOnReset]);
  }

  nexusLost(nexus: Nexus): void {
    this.ctx.preventingNexuses.delete(nexus.id);
    // Its pending unit attentions (and the I_T NEXUS LOSS one) wait for it under its id.
    this.nexuses.delete(nexus.id);
    this.unitState.apply({ kind: "nexus-lost", nexusId: nexus.id }).catch((err: unknown) => {
      this.logger.error({ err, nexus: nexus.id }, "recording nexus loss failed");
    });
  }

  async lunReset(nexus: Nexus, lun: number): Promise<void> {
    if (lun !== 0) return;
    this.ctx.preventingNexuses.clear();
    await this.unitState.apply({ kind: "lun-reset", nexusId: nexus.id });
  }

  async clearTaskSet(_nexus: Nexus, _lun: number): Promise<void> {
    // The control page reports TST = 001b (one task set per I_T nexus): clearing it touches no
    // other nexus's tasks, so there is nobody to notify with COMMANDS CLEARED BY ANOTHER INITIATOR.
  }

  async asymmetricAccessStateChanged(): Promise<void> {
    const [asc, ascq] = UA.asymmetricAccessStateChanged;
    await this.ctx.broadcastUnitAttention(asc, ascq, null);
  }

  async reportedLunsChanged(): Promise<void> {
    const [asc, ascq] = UA.reportedLunsDataChanged;
    await this.ctx.broadcastUnitAttention(asc, ascq, null);
  }

  capacityChanged(): void {
    const ua = UA.capacityDataChanged;
    // Connected nexuses, and those gone with news pending (they hear it when they return).
    const ids = new Set([...this.nexuses.keys(), ...this.pending.keys()]);
    for (const id of ids) this.push(id, ua);
    this.logger.info(
      { blocks: this.ctx.blockCount, blockSize: this.ctx.blockSize, nexuses: ids.size },
      "capacity changed: CAPACITY DATA HAS CHANGED raised",
    );
  }

  private queueUnitAttention(ua: UnitAttention): void {
    let matched = false;
    for (const n of this.nexuses.values()) {
      if (unitAttentionAppliesTo(ua, identityOf(n))) {
        this.push(n.id, [ua.asc, ua.ascq]);
        matched = true;
      }
    }
    // A registrant that is not logged in hears about it when it comes back.
    if (!matched && !ua.allNexuses && ua.nexusId) this.push(ua.nexusId, [ua.asc, ua.ascq]);
  }

  private push(nexusId: string, ua: readonly [number, number]): void {
    const q = this.pending.get(nexusId) ?? [];
    if (q.some(([a, b]) => a === ua[0] && b === ua[1])) return;
    q.push(ua);
    if (q.length > MAX_PENDING_UNIT_ATTENTIONS) q.shift();
    if (!this.pending.has(nexusId) && this.pending.size >= MAX_NEXUSES_WITH_PENDING) {
      const oldest = this.pending.keys().next();
      if (!oldest.done) this.pending.delete(oldest.value);
    }
    this.pending.set(nexusId, q);
  }

  private takeUnitAttention(nexusId: string): readonly [number, number] | undefined {
    const q = this.pending.get(nexusId);
    if (!q) return undefined;
    const ua = q.shift();
    if (q.length === 0) this.pending.delete(nexusId);
    return ua;
  }

  async execute(cmd: ScsiCommand): Promise<ScsiResponse> {
    if (!this.nexuses.has(cmd.nexus.id)) this.nexusCreated(cmd.nexus);
    try {
      if (cmd.lun !== 0) return this.executeForMissingLun(cmd);
      const spec = this.lookup(cmd.cdb);
      if (this.pending.size > 0 && !spec?.ignoresUnitAttention) {
        const ua = this.takeUnitAttention(cmd.nexus.id);
        if (ua) return checkCondition(buildSense(SenseKey.unitAttention, ua[0], ua[1]));
      }
      if (!spec) throw this.lookupError(cmd.cdb);
      const state = this.unitState.get();
      if (
        (state.reservation !== null || state.spc2Holder !== null) &&
        conflictsWithReservation(
          state,
          identityOf(cmd.nexus),
          spec.conflict,
          cmd.cdb,
          spec.spc2Allowed ?? false,
        )
      ) {
        return RESERVATION_CONFLICT;
      }
      return await spec.handler(this.ctx, cmd);
    } catch (err) {
      return this.errorResponse(err, cmd);
    }
  }

  private lookup(cdb: Buffer): CommandSpec | undefined {
    const entry = this.index[cdb[0]!];
    if (entry === undefined || !(entry instanceof Map)) return entry as CommandSpec | undefined;
    return entry.get(serviceActionOf(cdb));
  }

  private lookupError(cdb: Buffer): ScsiError {
    return this.index[cdb[0]!] instanceof Map ? invalidFieldInCdb(1, 4) : invalidOpcode();
  }

  /** Commands addressed to a LUN that does not exist (SPC-4 4.6.4). */
  private executeForMissingLun(cmd: ScsiCommand): ScsiResponse {
    const cdb = cmd.cdb;
    switch (cdb[0]) {
      case 0x12: {
        if (cdb[1]! & 0x01) throw logicalUnitNotSupported();
        // Peripheral qualifier 011b: no logical unit can ever be here.
        return dataIn(standardInquiry(this.ctx, 0x7f), cdb.readUInt16BE(3));
      }
      case 0xa0:
        return dataIn(reportLunsData([0]), cdb.readUInt32BE(6));
      case 0x03:
        return dataIn(buildSense(SenseKey.illegalRequest, 0x25, 0x00), cdb[4]!);
      default:
        throw logicalUnitNotSupported();
    }
  }

  private errorResponse(err: unknown, cmd: ScsiCommand): ScsiResponse {
    if (err instanceof ScsiError) return checkCondition(err.sense());
    if (err instanceof ReservationConflict) return RESERVATION_CONFLICT;
    if (err instanceof DeviceUnavailableError) {
      const ascq = err.kind === "transitioning" ? 0x0a : err.kind === "standby" ? 0x0b : 0x0c;
      return checkCondition(buildSense(SenseKey.notReady, 0x04, ascq));
    }
    this.logger.error({ err, opcode: cmd.cdb[0], nexus: cmd.nexus.id }, "command failed");
    // INTERNAL TARGET FAILURE
    return checkCondition(buildSense(SenseKey.hardwareError, 0x44, 0x00));
  }
}

function checkCondition(sense: Buffer): ScsiResponse {
  return { status: ScsiStatus.checkCondition, sense };
}

export function createScsiTarget(options: ScsiTargetOptions): HasanScsiTarget {
  return new LogicalUnit(options);
}
