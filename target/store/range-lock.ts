/**
 * An in-process lock over byte ranges: holders of overlapping ranges run one at a
 * time in arrival order, holders of disjoint ranges run concurrently.
 */
export type Release = () => void;

interface Holder {
  readonly start: number;
  readonly end: number;
  /** Resolves when this holder releases. */
  readonly done: Promise<void>;
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

  /** Acquires [offset, offset + length). Resolves with the function that releases it. */
  acquire(offset: number, length: number): Promise<Release> {
    if (length <= 0) return Promise.resolve(noop);
    const start = offset;
    const end = offset + length;
    let blockers: Promise<void>[] | undefined;
    for (const h of this.holders) {
      if (h.start < end && start < h.end) (blockers ??= []).push(h.done);
    }
    let resolveDone!: () => void;
    const holder: Holder = {
      start,
      end,
      done: new Promise<void>((r) => {
        resolveDone = r;
      }),
    };
    this.holders.push(holder);
    let released = false;
    const release: Release = () => {
      if (released) return;
      released = true;
      const i = this.holders.indexOf(holder);
      if (i >= 0) this.holders.splice(i, 1);
      resolveDone();
    };
    if (!blockers) return Promise.resolve(release);
    return Promise.all(blockers).then(() => release);
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
