/**
 * Decides whether a small read or write runs synchronously on the event loop or on
 * the libuv thread pool. Handing a 4 KiB page-cache copy to the pool costs far more
 * than the copy itself (a thread wake-up and a context switch on a small machine), so
 * small I/O runs inline while it stays fast. When several inline calls in a window turn
 * slow (they went to the disk or were throttled), small I/O goes back to the pool at once,
 * and stays there for a back-off that doubles while probes keep finding the disk slow, so
 * a cold or disk-bound LUN stalls the event loop only for a few calls now and then. A lone
 * slow call (a preempted thread, a block allocation) does not count.
 */
export interface IoModeOptions {
  /** Largest transfer that may run inline. */
  readonly maxInlineBytes: number;
  /** An inline call slower than this (milliseconds) is a slow call. */
  readonly slowMs: number;
  /** Calls per judgement window. */
  readonly window: number;
  /** Slow calls within one window that send I/O to the pool. */
  readonly slowPerWindow: number;
  /** First back-off (milliseconds) on the pool; it doubles up to `maxBackoffMs` while probes fail. */
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
}

export const defaultIoModeOptions: IoModeOptions = {
  maxInlineBytes: 64 * 1024,
  slowMs: 0.2,
  window: 64,
  slowPerWindow: 8,
  backoffMs: 1000,
  maxBackoffMs: 30_000,
};

export class IoModePolicy {
  private poolUntil = 0;
  private calls = 0;
  private slow = 0;
  private backoff: number;

  constructor(
    private readonly options: IoModeOptions = defaultIoModeOptions,
    private readonly enabled = true,
  ) {
    this.backoff = options.backoffMs;
  }

  /** Whether a transfer of `bytes` should run inline at time `now` (ms). */
  inline(bytes: number, now: number): boolean {
    return this.enabled && bytes <= this.options.maxInlineBytes && now >= this.poolUntil;
  }

  /** Records how long an inline call took at time `now` (ms). */
  record(elapsedMs: number, now: number): void {
    if (elapsedMs > this.options.slowMs && ++this.slow >= this.options.slowPerWindow) {
      this.poolUntil = now + this.backoff;
      this.backoff = Math.min(this.options.maxBackoffMs, this.backoff * 2);
      this.calls = 0;
      this.slow = 0;
      return;
    }
    if (++this.calls < this.options.window) return;
    // A whole window without enough slow calls: inline I/O is fine, start over with the short back-off.
    this.backoff = this.options.backoffMs;
    this.calls = 0;
    this.slow = 0;
  }

  /** Whether I/O currently goes to the pool because inline calls were slow. */
  backingOff(now: number): boolean {
    return now < this.poolUntil;
  }
}
