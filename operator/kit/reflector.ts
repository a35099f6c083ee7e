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
}

/**
 * Keeps a local copy of one resource collection (every object validated with its zod schema) with
 * list + watch: watches resume from the last resourceVersion seen (bookmarks included), a 410 Gone
 * (as HTTP status or as a watch ERROR event) lists again and reports what went away meanwhile as
 * deleted, and failures retry with backoff. A list reports every object as an upsert.
 */
export class Reflector<T extends Keyed> {
  readonly store = new Map<string, T>();
  private readonly abort = new AbortController();
  private readonly backoff: Backoff;
  private synced = false;
  private waiters: (() => void)[] = [];
  /** how many lists were made (the first, and one per 410 Gone) */
  lists = 0;

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

  private async loop(): Promise<void> {
    let rv: string | undefined;
    while (!this.abort.signal.aborted) {
      try {
        if (rv === undefined) rv = await this.relist();
        rv = await this.watchFrom(rv);
        this.backoff.forget("watch");
      } catch (err) {
        if (this.abort.signal.aborted) return;
        if (err instanceof KubeApiError && err.code === 410) {
          rv = undefined;
          continue; // too old: list again at once
        }
        const delay = this.backoff.next("watch");
        this.log.warn({ err, path: this.path, delayMs: delay }, "watch failed; retrying");
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private async relist(): Promise<string> {
    const list = await this.client.parsed(ListMeta, "GET", this.path);
    this.lists++;
    const items = list.items.map((i) => this.schema.parse(i));
    const seen = new Set<string>();
    for (const item of items) {
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

  /** Returns the resourceVersion to resume from. */
  private async watchFrom(rv: string): Promise<string> {
    let last = rv;
    let gone = false;
    const query = {
      allowWatchBookmarks: true,
      timeoutSeconds: this.o.watchTimeoutSeconds ?? 300,
      resourceVersion: rv,
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
        if (meta?.resourceVersion) last = meta.resourceVersion;
        if (event.type === "BOOKMARK") return;
        const obj = this.schema.parse(event.object);
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
    return last;
  }
}
