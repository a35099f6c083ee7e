/**
 * Session state shared by a session's connections: identity, negotiated parameters, the
 * CmdSN window and the tasks in flight.
 */
import type { Nexus } from "../scsi/types.js";
import type { OperationalParams } from "./negotiation.js";

/** Serial number comparison (RFC 1982, 32 bits): a - b as a signed 32-bit value. */
export function snDiff(a: number, b: number): number {
  return (a - b) | 0;
}

export type CmdSNVerdict = "accept" | "drop";

/**
 * The CmdSN window. ExpCmdSN advances as commands arrive; MaxCmdSN advances only as commands
 * finish, so the window bounds the commands in flight and never moves backward.
 */
export class CmdWindow {
  expCmdSN: number;
  maxCmdSN: number;
  /** CmdSNs received ahead of ExpCmdSN (a gap before them). */
  private readonly ahead = new Set<number>();

  constructor(
    initialCmdSN: number,
    readonly size: number,
  ) {
    this.expCmdSN = initialCmdSN >>> 0;
    this.maxCmdSN = (initialCmdSN + size - 1) >>> 0;
  }

  /**
   * Decides on a command's CmdSN. Non-immediate commands outside [ExpCmdSN, MaxCmdSN] and
   * duplicates are dropped silently (RFC 7143 §4.2.2.1). Immediate commands take no slot.
   */
  admit(cmdSN: number, immediate: boolean): CmdSNVerdict {
    if (immediate) return "accept";
    if (cmdSN === this.expCmdSN) {
      this.expCmdSN = (this.expCmdSN + 1) >>> 0;
      while (this.ahead.delete(this.expCmdSN)) this.expCmdSN = (this.expCmdSN + 1) >>> 0;
      return "accept";
    }
    if (snDiff(cmdSN, this.expCmdSN) > 0 && snDiff(cmdSN, this.maxCmdSN) <= 0 && !this.ahead.has(cmdSN)) {
      this.ahead.add(cmdSN);
      return "accept";
    }
    return "drop";
  }

  /** A non-immediate command finished: its slot opens again. */
  release(): void {
    this.maxCmdSN = (this.maxCmdSN + 1) >>> 0;
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
