import type { z } from "zod";
import { ApiError, type KubeClient } from "./client.js";
import { listOf, WatchEvent } from "./schemas.js";
import type { Logger } from "../../../target/log.js";

export type ChangeKind = "upsert" | "delete";
type Keyed = { metadata: { name: string; namespace?: string | undefined } };

export function objectKey(o: Keyed): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
}

/**
 * Keeps a local copy of one resource collection with list + watch, resuming from the last
 * resourceVersion and relisting when the server says it is too old (410).
 */
export class Reflector<T extends Keyed> {
  readonly store = new Map<string, T>();
  private readonly abort = new AbortController();
  private synced = false;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly client: KubeClient,
    private readonly path: string,
    private readonly schema: z.ZodType<T>,
    private readonly onChange: (kind: ChangeKind, obj: T) => void,
    private readonly log: Logger,
  ) {}

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
      } catch (err) {
        if (this.abort.signal.aborted) return;
        if (err instanceof ApiError && err.status === 410) rv = undefined;
        else this.log.warn({ err: String(err), path: this.path }, "watch failed; retrying");
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private async relist(): Promise<string> {
    const list = await this.client.request(listOf(this.schema), "GET", this.path);
    const seen = new Set<string>();
    for (const item of list.items) {
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
    const sep = this.path.includes("?") ? "&" : "?";
    const url = `${this.path}${sep}watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=${rv}`;
    await this.client.watch(
      url,
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
    if (gone) throw new ApiError(410, "watch expired", "WATCH", this.path);
    return last;
  }
}
