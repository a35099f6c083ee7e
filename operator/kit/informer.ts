import { makeInformer, type Informer, type ObjectCache } from "@kubernetes/client-node";
import type { Logger } from "../../target/log.js";
import { Backoff } from "./backoff.js";
import type { KubeClient, KubeObjectLike } from "./kube-client.js";
import { resourcePath } from "./resources.js";

export type InformerEvent = "add" | "update" | "delete";

export interface InformerOptions {
  apiVersion: string;
  kind: string;
  /** one namespace, or all when unset */
  namespace?: string;
  labelSelector?: string;
}

export interface CacheLifecycle {
  start(): Promise<void>;
  stop(): Promise<void>;
  hasSynced(): boolean;
  waitForSync(): Promise<void>;
}

/**
 * makeInformer keeps a cache with list+watch and re-lists on 410 Gone, but stops on any other error.
 * This wrapper restarts it with backoff (1 s → 30 s) and resumes from the last resourceVersion it saw.
 */
export class ResilientInformer<T extends KubeObjectLike> implements CacheLifecycle {
  private readonly inner: Informer<T> & ObjectCache<T>;
  private readonly backoff = new Backoff(1000, 30_000);
  private readonly handlers: ((event: InformerEvent, obj: T) => void)[] = [];
  private stopped = false;
  private synced = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private syncWaiters: (() => void)[] = [];
  restarts = 0;

  constructor(
    client: KubeClient,
    private readonly o: InformerOptions,
    private readonly log: Logger,
  ) {
    const path = resourcePath(o.apiVersion, o.kind, o.namespace);
    const list = async () => {
      const result = await client.list<T>(o.apiVersion, o.kind, o.namespace, {
        labelSelector: o.labelSelector,
      });
      // A successful list is the moment the cache holds the truth.
      queueMicrotask(() => this.markSynced());
      return { apiVersion: "v1", kind: "List", metadata: result.metadata, items: result.items };
    };
    this.inner = makeInformer<T>(client.kubeConfig, path, list, o.labelSelector);
    for (const event of ["add", "update", "delete"] as const) {
      this.inner.on(event, (obj) => {
        for (const h of this.handlers) h(event, obj);
      });
    }
    this.inner.on("connect", () => this.backoff.forget("watch"));
    this.inner.on("error", (err: unknown) => this.restartLater(err));
  }

  on(handler: (event: InformerEvent, obj: T) => void): void {
    this.handlers.push(handler);
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.run();
  }

  private async run(): Promise<void> {
    try {
      await this.inner.start();
    } catch (err) {
      this.restartLater(err);
    }
  }

  private restartLater(err: unknown): void {
    if (this.stopped) return;
    const delay = this.backoff.next("watch");
    this.log.warn({ err, kind: this.o.kind, delayMs: delay }, "watch failed; restarting");
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.restarts++;
      void this.run();
    }, delay);
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    for (const w of this.syncWaiters.splice(0)) w();
  }

  hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get(name: string, namespace?: string): T | undefined {
    return this.inner.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.inner.list(namespace);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    await this.inner.stop();
  }
}
