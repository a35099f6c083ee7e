import type { z } from "zod";
import type { Logger } from "../../target/log.js";
import type { KubeClient } from "./kube-client.js";
import { Reflector, objectKey, type ChangeKind } from "./reflector.js";
import { resourcePath } from "./resources.js";

export type InformerEvent = ChangeKind;

type Keyed = { metadata: { name: string; namespace?: string | undefined } };

export interface InformerOptions<T> {
  apiVersion: string;
  kind: string;
  /** how each object is read (objects it refuses are logged and left out) */
  schema: z.ZodType<T>;
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
 * A cache of one resource for the controller: the reflector (list + watch, resume from the last
 * resourceVersion, relist on 410 Gone, retry with backoff) with handlers and lookups by name.
 */
export class Informer<T extends Keyed> implements CacheLifecycle {
  private readonly reflector: Reflector<T>;
  private readonly handlers: ((event: InformerEvent, obj: T) => void)[] = [];

  constructor(client: KubeClient, o: InformerOptions<T>, log: Logger) {
    this.reflector = new Reflector(
      client,
      resourcePath(o.apiVersion, o.kind, o.namespace),
      o.schema,
      (event, obj) => {
        for (const h of this.handlers) h(event, obj);
      },
      log.child({ kind: o.kind }),
      { labelSelector: o.labelSelector },
    );
  }

  on(handler: (event: InformerEvent, obj: T) => void): void {
    this.handlers.push(handler);
  }

  start(): Promise<void> {
    this.reflector.start();
    return Promise.resolve();
  }

  hasSynced(): boolean {
    return this.reflector.isSynced;
  }

  waitForSync(): Promise<void> {
    return this.reflector.hasSynced();
  }

  /** how many times a failed list or watch was retried */
  get restarts(): number {
    return this.reflector.retries;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.reflector.store.get(objectKey({ metadata: { name, namespace } }));
  }

  list(namespace?: string): readonly T[] {
    const all = [...this.reflector.store.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
  }

  stop(): Promise<void> {
    this.reflector.stop();
    return Promise.resolve();
  }
}
