/**
 * Decides whether a small read or write runs synchronously on the event loop or on
 * the libuv thread pool. Handing a 4 KiB page-cache copy to the pool costs far more
 * than the copy itself (a thread wake-up and a context switch on a small machine), so
 * small I/O runs inline while it stays fast. When a good share of inline calls becomes
 * slow (they go to the disk or are throttled), small I/O goes back to the pool for a
 * while, so a cold or disk-bound LUN does not stall the event loop. Single slow calls
 * (a preempted thread, a block allocation) do not count.
 */
export interface IoModeOptions {
  /** Largest transfer that may run inline. */
  readonly maxInlineBytes: number;
  /** An inline call slower than this (milliseconds) is a slow call. */
  readonly slowMs: number;
  /** Calls per judgement window. */
  readonly window: number;
  /** Slow calls in one window that send I/O to the pool. */
  readonly slowPerWindow: number;
  /** How long (milliseconds) I/O stays on the pool before inline calls are tried again. */
  readonly backoffMs: number;
}

export const defaultIoModeOptions: IoModeOptions = {
  maxInlineBytes: 64 * 1024,
  slowMs: 0.2,
  window: 64,
  slowPerWindow: 16,
  backoffMs: 1000,
};

export class IoModePolicy {
  private poolUntil = 0;
  private calls = 0;
  private slow = 0;

  constructor(
    private readonly options: IoModeOptions = defaultIoModeOptions,
    private readonly enabled = true,
  ) {}

  /** Whether a transfer of `bytes` should run inline at time `now` (ms). */
  inline(bytes: number, now: number): boolean {
    return this.enabled && bytes <= this.options.maxInlineBytes && now >= this.poolUntil;
  }

  /** Records how long an inline call took at time `now` (ms). */
  record(elapsedMs: number, now: number): void {
    if (elapsedMs > this.options.slowMs) this.slow++;
    if (++this.calls < this.options.window) return;
    if (this.slow >= this.options.slowPerWindow) this.poolUntil = now + this.options.backoffMs;
    this.calls = 0;
    this.slow = 0;
  }

  /** Whether I/O currently goes to the pool because inline calls were slow. */
  backingOff(now: number): boolean {
    return now < this.poolUntil;
  }
}
