/**
 * An in-process lock over byte ranges: holders of overlapping ranges run one at a
 * time in arrival order, holders of disjoint ranges run concurrently.
 */
export type Release = () => void;

/** A holder of a range; `done` (created only when someone waits) resolves when it releases. */
class Holder {
  private waiting: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  released = false;
  constructor(
    readonly start: number,
    readonly end: number,
  ) {}
  get done(): Promise<void> {
    if (this.released) return Promise.resolve();
    this.waiting ??= new Promise<void>((r) => (this.wake = r));
    return this.waiting;
  }
  release(): void {
    this.released = true;
    this.wake?.();
  }
}

const noop: Release = () => undefined;

export class RangeLock {
  // Holders in arrival order, both those running and those still waiting.
  private readonly holders: Holder[] = [];

  /** Number of holders (running or waiting); for tests and metrics. */
  get size(): number {
    return this.holders.length;
  }

  /** Whether any holder (running or waiting) overlaps [offset, offset + length). */
  overlaps(offset: number, length: number): boolean {
    const end = offset + length;
    for (const h of this.holders) if (h.start < end && offset < h.end) return true;
    return false;
  }

  /**
   * Acquires [offset, offset + length) at once when nothing overlaps it; undefined otherwise
   * (then `acquire` waits in line). Saves a promise on the uncontended per-write path.
   */
  tryAcquire(offset: number, length: number): Release | undefined {
    if (length <= 0) return noop;
    if (this.overlaps(offset, length)) return undefined;
    return this.hold(new Holder(offset, offset + length));
  }

  /** Acquires [offset, offset + length). Resolves with the function that releases it. */
  acquire(offset: number, length: number): Promise<Release> {
    if (length <= 0) return Promise.resolve(noop);
    const start = offset;
    const end = offset + length;
    let blockers: Promise<void>[] | undefined;
    for (const h of this.holders) {
      if (h.start < end && start < h.end) (blockers ??= []).push(h.done);
    }
    const release = this.hold(new Holder(start, end));
    if (!blockers) return Promise.resolve(release);
    return Promise.all(blockers).then(() => release);
  }

  private hold(holder: Holder): Release {
    this.holders.push(holder);
    return () => {
      if (holder.released) return;
      const i = this.holders.indexOf(holder);
      if (i >= 0) this.holders.splice(i, 1);
      holder.release();
    };
  }

  /** Runs `fn` while holding the range. */
  async with<T>(offset: number, length: number, fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire(offset, length);
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
