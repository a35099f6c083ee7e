/**
 * Bytes of write data the target holds in memory at once: each write reserves its whole transfer
 * before the first byte is accepted and gives it back when the command has finished with it.
 * Reservations are bounded per session and for the whole target, so no initiator, nor all of them
 * together, can make the target buffer more than the limits whatever they announce.
 */

/** Which limit refused a reservation: the session's (TASK SET FULL) or the target's (BUSY). */
export type WriteMemoryRefusal = "session" | "target";

export interface WriteMemoryLimits {
  /** Bytes all sessions together may hold. */
  target: number;
  /** Bytes one session may hold. */
  session: number;
}

/** Smallest write memory per session: the MAXIMUM TRANSFER LENGTH the units report (16 MiB). */
export const MIN_SESSION_WRITE_MEMORY = 16 * 1024 * 1024;

export const DEFAULT_WRITE_MEMORY: WriteMemoryLimits = {
  target: 256 * 1024 * 1024,
  session: 64 * 1024 * 1024,
};

export class WriteMemory {
  private used = 0;

  constructor(readonly limits: WriteMemoryLimits = DEFAULT_WRITE_MEMORY) {
    if (limits.session > limits.target)
      throw new Error("the session write memory limit exceeds the target's");
  }

  /** Bytes reserved by all sessions. */
  get inUse(): number {
    return this.used;
  }

  /** A new session's account. */
  session(): SessionWriteMemory {
    return new SessionWriteMemory(this);
  }

  /** @internal used by SessionWriteMemory */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limits.target) return false;
    this.used += bytes;
    return true;
  }

  /** @internal used by SessionWriteMemory */
  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}

export class SessionWriteMemory {
  private used = 0;

  constructor(private readonly target: WriteMemory) {}

  get inUse(): number {
    return this.used;
  }

  /** The largest single write a session can ever reserve. */
  get limit(): number {
    return this.target.limits.session;
  }

  /** Reserves `bytes`, or reserves nothing and names the limit that refused. */
  reserve(bytes: number): WriteMemoryRefusal | undefined {
    if (this.used + bytes > this.target.limits.session) return "session";
    if (!this.target.take(bytes)) return "target";
    this.used += bytes;
    return undefined;
  }

  release(bytes: number): void {
    const n = Math.min(bytes, this.used);
    this.used -= n;
    this.target.give(n);
  }
}
