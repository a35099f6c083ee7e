/**
 * Slows down guessing of CHAP secrets: the answer to a failed authentication waits at least
 * `delayMs`, and failures from one source are answered one per `delayMs`, so opening many
 * connections at once buys a guesser nothing.
 */
export class AuthFailureThrottle {
  /** When each source's next failure may be answered at the earliest. */
  private readonly nextTurn = new Map<string, number>();

  constructor(
    readonly delayMs: number,
    /** Answers further away than this are not given: the connection closes without one. */
    readonly maxWaitMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** How long to wait before answering a failure from `source`, or undefined when too long. */
  delay(source: string): number | undefined {
    const now = this.now();
    this.forgetPast(now);
    const at = Math.max(now, this.nextTurn.get(source) ?? 0) + this.delayMs;
    const wait = at - now;
    if (wait > this.maxWaitMs) return undefined;
    this.nextTurn.set(source, at);
    return wait;
  }

  /** Sources whose turns all lie in the past are forgotten (bounds the map by active sources). */
  private forgetPast(now: number): void {
    if (this.nextTurn.size < 64) return;
    for (const [source, at] of this.nextTurn) if (at <= now) this.nextTurn.delete(source);
  }

  get sources(): number {
    return this.nextTurn.size;
  }
}
