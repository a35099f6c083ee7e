/**
 * Lets many I/O operations run at once but gives state transitions (the handshake after a
 * reconnect) a moment with none in flight: `exclusive()` waits for entered operations to
 * finish and holds new ones back until it is done.
 */
export class IoGate {
  private active = 0;
  private closedUntil: Promise<void> | null = null;
  private drained: (() => void) | null = null;

  async enter(): Promise<() => void> {
    while (this.closedUntil) await this.closedUntil;
    return this.admit();
  }

  /** Enters at once when the gate is open; undefined when a transition holds it closed. */
  tryEnter(): (() => void) | undefined {
    return this.closedUntil ? undefined : this.admit();
  }

  private admit(): () => void {
    this.active++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.active--;
      if (this.active === 0) this.drained?.();
    };
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.closedUntil) await this.closedUntil;
    let open!: () => void;
    this.closedUntil = new Promise<void>((r) => (open = r));
    try {
      if (this.active > 0) await new Promise<void>((r) => (this.drained = r));
      this.drained = null;
      return await fn();
    } finally {
      this.closedUntil = null;
      open();
    }
  }

  get inFlight(): number {
    return this.active;
  }
}
