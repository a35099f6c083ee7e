/**
 * A token bucket capping resync bandwidth (`--resync-rate`). Tokens are bytes; the bucket
 * holds at most `burst` and refills at `ratePerSec`. A request larger than what is available
 * waits until the bucket has refilled enough, so the long-run rate never exceeds the cap.
 */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

export class TokenBucket {
  private tokens: number;
  private last: number;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    readonly ratePerSec: number,
    readonly burst: number,
    private readonly clock: Clock = realClock,
  ) {
    if (!(ratePerSec > 0) || !(burst > 0)) throw new Error("token bucket rate and burst must be positive");
    this.tokens = burst;
    this.last = clock.now();
  }

  /** Waits until `n` tokens are available and takes them; callers are served in order. */
  take(n: number): Promise<void> {
    const turn = this.queue.then(() => this.takeNow(n));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async takeNow(n: number): Promise<void> {
    for (;;) {
      this.refill();
      // A request above the burst size may take the bucket into debt once it is full.
      if (this.tokens >= Math.min(n, this.burst)) {
        this.tokens -= n;
        return;
      }
      const missing = Math.min(n, this.burst) - this.tokens;
      await this.clock.sleep(Math.max(1, Math.ceil((missing / this.ratePerSec) * 1000)));
    }
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSec);
    this.last = now;
  }
}
