/**
 * Session state shared by a session's connections: identity, negotiated parameters, the
 * CmdSN window and the tasks in flight.
 */
import type { Nexus } from "../scsi/types.js";
import type { OperationalParams } from "./negotiation.js";
import type { SessionWriteMemory } from "./write-memory.js";

/** Serial number comparison (RFC 1982, 32 bits): a - b as a signed 32-bit value. */
export function snDiff(a: number, b: number): number {
  return (a - b) | 0;
}

export type CmdSNVerdict = "accept" | "drop";

/**
 * The CmdSN window. ExpCmdSN advances as commands arrive; MaxCmdSN advances only as commands
 * finish, so the window bounds the commands in flight and never moves backward.
 *
 * Slots are counted, not inferred from the sequence numbers: a command holds one from the moment
 * ExpCmdSN passes it (or, for an immediate SCSI command, from its arrival) until it is answered,
 * and MaxCmdSN = ExpCmdSN - 1 + size - held whenever that is ahead of the current value. Two
 * consequences: commands that arrive ahead of a gap and finish do not open new slots until the
 * gap is filled (so the set of commands ahead stays within the window), and immediate SCSI
 * commands, which carry no CmdSN of their own, hold back MaxCmdSN while they run.
 */
export class CmdWindow {
  expCmdSN: number;
  maxCmdSN: number;
  /** Slots held by commands ExpCmdSN has passed and by immediate SCSI commands, not yet answered. */
  private held = 0;
  /** CmdSNs received ahead of ExpCmdSN (a gap before them), and whether each has been answered. */
  private readonly ahead = new Map<number, boolean>();

  constructor(
    initialCmdSN: number,
    readonly size: number,
  ) {
    this.expCmdSN = initialCmdSN >>> 0;
    this.maxCmdSN = (initialCmdSN + size - 1) >>> 0;
  }

  /** Commands received ahead of ExpCmdSN and not yet passed by it. */
  get aheadCount(): number {
    return this.ahead.size;
  }

  /** Slots in use: held ones and those of commands waiting ahead of a gap. */
  get inUse(): number {
    return this.held + this.ahead.size;
  }

  /**
   * Decides on a command's CmdSN. Non-immediate commands outside [ExpCmdSN, MaxCmdSN] and
   * duplicates are dropped silently (RFC 7143 §4.2.2.1); accepted ones hold a slot until
   * `release`. Immediate commands are accepted here without a slot: NOP-Out, Text, Logout and
   * task management are answered at once. Immediate SCSI commands go through `admitImmediate`.
   */
  admit(cmdSN: number, immediate: boolean): CmdSNVerdict {
    if (immediate) return "accept";
    if (cmdSN === this.expCmdSN) {
      this.held++;
      this.expCmdSN = (this.expCmdSN + 1) >>> 0;
      for (
        let done = this.ahead.get(this.expCmdSN);
        done !== undefined;
        done = this.ahead.get(this.expCmdSN)
      ) {
        this.ahead.delete(this.expCmdSN);
        if (!done) this.held++;
        this.expCmdSN = (this.expCmdSN + 1) >>> 0;
      }
      this.advance();
      return "accept";
    }
    if (snDiff(cmdSN, this.expCmdSN) > 0 && snDiff(cmdSN, this.maxCmdSN) <= 0 && !this.ahead.has(cmdSN)) {
      this.ahead.set(cmdSN, false);
      return "accept";
    }
    return "drop";
  }

  /**
   * An immediate SCSI command takes a slot like any other, or is refused (the caller answers
   * TASK SET FULL) when every slot is in use. MaxCmdSN already granted cannot be taken back, so
   * until the initiator has used those up a session may briefly run up to twice the window.
   */
  admitImmediate(): boolean {
    if (this.inUse >= this.size) return false;
    this.held++;
    return true;
  }

  /** A non-immediate command accepted by `admit` was answered (or aborted): its slot opens again. */
  release(cmdSN: number): void {
    if (this.ahead.get(cmdSN) === false) {
      // still ahead of a gap: its slot opens once ExpCmdSN passes it
      this.ahead.set(cmdSN, true);
      return;
    }
    if (this.held > 0) this.held--;
    this.advance();
  }

  /** An immediate SCSI command accepted by `admitImmediate` was answered (or aborted). */
  releaseImmediate(): void {
    if (this.held > 0) this.held--;
    this.advance();
  }

  private advance(): void {
    const max = (this.expCmdSN - 1 + this.size - this.held) >>> 0;
    if (snDiff(max, this.maxCmdSN) > 0) this.maxCmdSN = max;
  }
}

export interface SessionIdentity {
  tsih: number;
  initiatorName: string;
  initiatorAlias?: string;
  isid: string;
  sessionType: "Normal" | "Discovery";
}

export class Session {
  readonly window: CmdWindow;
  /** Tasks by Initiator Task Tag. */
  readonly tasks = new Map<number, SessionTask>();
  /** The connection serving the session (MaxConnections is 1). */
  attached: AttachedConnection | undefined;

  constructor(
    readonly id: SessionIdentity,
    readonly nexus: Nexus,
    public params: OperationalParams,
    initialCmdSN: number,
    windowSize: number,
    /** The session's share of the target's write buffers. */
    readonly writeMemory: SessionWriteMemory,
  ) {
    this.window = new CmdWindow(initialCmdSN, windowSize);
  }
}

export interface AttachedConnection {
  readonly cid: number;
  readonly remote: string;
  terminate(reason: string, keepSession?: boolean): Promise<void>;
}

/** What the session needs to know of a task to abort it. */
export interface SessionTask {
  readonly itt: number;
  readonly lun: number;
  readonly cmdSN: number;
  readonly immediate: boolean;
  /** Stops the task: no response will be sent. Resolves when any backend work has settled. */
  abort(): Promise<void>;
}

export function nexusFor(
  initiatorName: string,
  isid: string,
  relativeTargetPort: number,
  targetPortGroup: number,
): Nexus {
  return {
    id: `${initiatorName},i,0x${isid}|${relativeTargetPort}`,
    initiatorName,
    isid,
    relativeTargetPort,
    targetPortGroup,
  };
}

/** Finds sessions by TSIH and by initiator port (name + ISID); hands out TSIHs. */
export class SessionRegistry {
  private readonly byTsih = new Map<number, Session>();
  private nextTsih = 1;

  constructor(readonly maxSessions = 1024) {}

  get size(): number {
    return this.byTsih.size;
  }

  all(): IterableIterator<Session> {
    return this.byTsih.values();
  }

  get(tsih: number): Session | undefined {
    return this.byTsih.get(tsih);
  }

  findByInitiatorPort(initiatorName: string, isid: string, sessionType: string): Session | undefined {
    for (const s of this.byTsih.values()) {
      if (s.id.initiatorName === initiatorName && s.id.isid === isid && s.id.sessionType === sessionType)
        return s;
    }
    return undefined;
  }

  /** A TSIH not in use (never 0), or undefined when the table is full. */
  allocateTsih(): number | undefined {
    if (this.byTsih.size >= this.maxSessions) return undefined;
    for (let i = 0; i < 0xffff; i++) {
      const t = this.nextTsih;
      this.nextTsih = this.nextTsih >= 0xffff ? 1 : this.nextTsih + 1;
      if (!this.byTsih.has(t)) return t;
    }
    return undefined;
  }

  add(s: Session): void {
    this.byTsih.set(s.id.tsih, s);
  }

  remove(s: Session): void {
    if (this.byTsih.get(s.id.tsih) === s) this.byTsih.delete(s.id.tsih);
  }
}
