import { z } from "zod";
import type { Logger } from "../../target/log.js";
import { Backoff } from "./backoff.js";
import { KubeApiError, type KubeClient } from "./kube-client.js";

export type ChangeKind = "upsert" | "delete";
type Keyed = { metadata: { name: string; namespace?: string | undefined } };

export function objectKey(o: Keyed): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
}

const WatchEvent = z.looseObject({ type: z.string(), object: z.unknown() });
const ListMeta = z.looseObject({
  metadata: z.looseObject({ resourceVersion: z.string() }),
  items: z.array(z.unknown()),
});

export interface ReflectorOptions {
  /** the server ends each watch after this long, so a silently dead connection cannot last (default 300 s) */
  watchTimeoutSeconds?: number;
  /** retry delays after failures: base, doubling up to max; reset by a good list or watch (default 1 s → 30 s) */
  backoffMs?: { base: number; max: number };
  /** only objects with these labels (a label selector) */
  labelSelector?: string;
}

/**
 * Keeps a local copy of one resource collection (every object validated with its zod schema) with
 * list + watch: watches resume from the last resourceVersion seen (bookmarks included), a 410 Gone
 * (as HTTP status or as a watch ERROR event) lists again and reports what went away meanwhile as
 * deleted, and failures retry with backoff. A list reports every object as an upsert. An object
 * its schema refuses is logged and left out of the store (as if deleted), so one bad object cannot
 * stop the watch.
 */
export class Reflector<T extends Keyed> {
  readonly store = new Map<string, T>();
  private readonly abort = new AbortController();
  private readonly backoff: Backoff;
  private synced = false;
  private waiters: (() => void)[] = [];
  /** how many lists were made (the first, and one per 410 Gone) */
  lists = 0;
  /** how many times a failed list or watch was retried after a backoff */
  retries = 0;
  /** the last resourceVersion seen (list, event or bookmark): where the next watch starts */
  private resumeFrom: string | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly path: string,
    private readonly schema: z.ZodType<T>,
    private readonly onChange: (kind: ChangeKind, obj: T) => void,
    private readonly log: Logger,
    private readonly o: ReflectorOptions = {},
  ) {
    this.backoff = new Backoff(o.backoffMs?.base ?? 1000, o.backoffMs?.max ?? 30_000);
  }

  start(): void {
    void this.loop();
  }

  stop(): void {
    this.abort.abort();
  }

  hasSynced(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((r) => this.waiters.push(r));
  }

  /** whether the first list has filled the store */
  get isSynced(): boolean {
    return this.synced;
  }

  private async loop(): Promise<void> {
    while (!this.abort.signal.aborted) {
      try {
        if (this.resumeFrom === undefined) this.resumeFrom = await this.relist();
        await this.watchFrom(this.resumeFrom);
        this.backoff.forget("watch");
      } catch (err) {
        if (this.abort.signal.aborted) return;
        if (err instanceof KubeApiError && err.code === 410) {
          this.resumeFrom = undefined;
          continue; // too old: list again at once
        }
        const delay = this.backoff.next("watch");
        this.log.warn({ err, path: this.path, delayMs: delay }, "watch failed; retrying");
        await this.sleep(delay);
        this.retries++;
      }
    }
  }

  /** Waits delay ms, or less when stopped. */
  private sleep(delay: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, delay);
      this.abort.signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
    });
  }

  /** The object as its schema reads it, or undefined (logged) when the schema refuses it. */
  private read(raw: unknown): T | undefined {
    const r = this.schema.safeParse(raw);
    if (r.success) return r.data;
    const m = (raw as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
    this.log.warn(
      { path: this.path, name: m?.name, namespace: m?.namespace, err: z.prettifyError(r.error) },
      "object left out of the cache: it does not have the expected shape",
    );
    return undefined;
  }

  private forget(raw: unknown): void {
    const m = (raw as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
    if (typeof m?.name !== "string") return;
    const key = typeof m.namespace === "string" && m.namespace ? `${m.namespace}/${m.name}` : m.name;
    const old = this.store.get(key);
    if (old && this.store.delete(key)) this.onChange("delete", old);
  }

  private async relist(): Promise<string> {
    const list = await this.client.parsed(ListMeta, "GET", this.path, {
      query: { labelSelector: this.o.labelSelector },
    });
    this.lists++;
    const seen = new Set<string>();
    for (const raw of list.items) {
      const item = this.read(raw);
      if (!item) continue;
      const key = objectKey(item);
      seen.add(key);
      this.store.set(key, item);
      this.onChange("upsert", item);
    }
    for (const [key, old] of this.store) {
      if (!seen.has(key)) {
        this.store.delete(key);
        this.onChange("delete", old);
      }
    }
    this.backoff.forget("watch");
    if (!this.synced) {
      this.synced = true;
      for (const w of this.waiters.splice(0)) w();
    }
    return list.metadata.resourceVersion;
  }

  /** Watches from rv; every event and bookmark moves resumeFrom, also when the watch then fails. */
  private async watchFrom(rv: string): Promise<void> {
    let gone = false;
    const query = {
      allowWatchBookmarks: true,
      timeoutSeconds: this.o.watchTimeoutSeconds ?? 300,
      resourceVersion: rv,
      labelSelector: this.o.labelSelector,
    };
    await this.client.watch(
      this.path,
      query,
      (line) => {
        const event = WatchEvent.parse(JSON.parse(line));
        if (event.type === "ERROR") {
          gone = true;
          return;
        }
        const meta = (event.object as { metadata?: { resourceVersion?: string } }).metadata;
        if (meta?.resourceVersion) this.resumeFrom = meta.resourceVersion;
        if (event.type === "BOOKMARK") return;
        const obj = this.read(event.object);
        if (!obj) return this.forget(event.object);
        const key = objectKey(obj);
        if (event.type === "DELETED") {
          this.store.delete(key);
          this.onChange("delete", obj);
        } else {
          this.store.set(key, obj);
          this.onChange("upsert", obj);
        }
      },
      this.abort.signal,
    );
    if (gone) throw new KubeApiError(410, "Expired", `WATCH ${this.path}: expired`, undefined);
  }
}
