import { Backoff } from "./backoff.js";

export interface WorkResult {
  /** process the key again after this many ms (level-triggered polling) */
  requeueAfterMs?: number;
}

export interface WorkQueueOptions {
  concurrency?: number;
  backoff?: Backoff;
  onError?: (key: string, err: unknown, retryInMs: number) => void;
  /** a worker took key after it waited this long in the queue (for metrics) */
  onTake?: (key: string, waitedMs: number) => void;
}

/**
 * A keyed work queue: a key waits in the queue at most once, is processed by one worker at a time,
 * and a change that arrives while it is processed triggers exactly one more pass. Failures retry with
 * per-key exponential backoff; handlers may ask to be called again after a delay.
 */
export class WorkQueue {
  private readonly queue: string[] = [];
  /** keys waiting in the queue, with the time they were queued */
  private readonly queued = new Map<string, number>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly backoff: Backoff;
  private wake: (() => void) | undefined;
  private stopped = true;
  private workers: Promise<void>[] = [];

  constructor(
    private readonly handler: (key: string) => Promise<WorkResult | void>,
    private readonly o: WorkQueueOptions = {},
  ) {
    this.backoff = o.backoff ?? new Backoff(1000, 30_000);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const n = this.o.concurrency ?? 2;
    this.workers = Array.from({ length: n }, () => this.worker());
  }

  add(key: string): void {
    if (this.stopped) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.set(key, performance.now());
    this.queue.push(key);
    this.wake?.();
  }

  /** Adds key after delayMs; an earlier pending addAfter for the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    const at = Date.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    this.timers.set(key, { at, timer });
  }

  get length(): number {
    return this.queue.length;
  }

  isProcessing(key: string): boolean {
    return this.processing.has(key);
  }

  private async take(): Promise<string | undefined> {
    for (;;) {
      if (this.stopped) return undefined;
      const i = this.queue.findIndex((k) => !this.processing.has(k));
      if (i >= 0) {
        const [key] = this.queue.splice(i, 1);
        return key;
      }
      await new Promise<void>((resolve) => {
        const previous = this.wake;
        this.wake = () => {
          this.wake = undefined;
          previous?.();
          resolve();
        };
      });
    }
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.take();
      if (key === undefined) return;
      const queuedAt = this.queued.get(key);
      this.queued.delete(key);
      if (queuedAt !== undefined) this.o.onTake?.(key, performance.now() - queuedAt);
      this.processing.add(key);
      try {
        const result = await this.handler(key);
        this.backoff.forget(key);
        if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
      } catch (err) {
        const delay = this.backoff.next(key);
        this.o.onError?.(key, err, delay);
        this.addAfter(key, delay);
      } finally {
        this.processing.delete(key);
        if (this.dirty.delete(key)) this.add(key);
        else if (this.queue.length > 0) this.wake?.();
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    this.wake?.();
    await Promise.all(this.workers);
  }
}
