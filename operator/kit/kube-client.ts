import https from "node:https";
import http from "node:http";
import { KubeConfig } from "@kubernetes/client-node";
import type { z } from "zod";
import type { Logger } from "../../target/log.js";
import { NoClusterError, clusterSource } from "./cluster-source.js";
import { resourceOfPath, resourcePath } from "./resources.js";

/** An error answer of the API server (the Status object's code, reason and message). */
export class KubeApiError extends Error {
  override name = "KubeApiError";
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

export function isNotFound(e: unknown): boolean {
  return e instanceof KubeApiError && e.code === 404;
}
export function isConflict(e: unknown): boolean {
  return e instanceof KubeApiError && e.code === 409;
}

export interface KubeObjectLike {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

export interface ListResult<T> {
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** Content types of the three patch flavours. */
export const PATCH = {
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
  json: "application/json-patch+json",
} as const;

interface RequestOptions {
  body?: unknown;
  contentType?: string;
  query?: Record<string, string | number | boolean | undefined>;
  timeoutMs?: number;
}

/**
 * A thin JSON client for the Kubernetes API over node:https, authenticated from a KubeConfig.
 * Objects stay plain JSON end to end (the generated model classes drop fields they do not know).
 */
export class KubeClient {
  private readonly agent: https.Agent;
  /** Called once per completed request (for metrics: how many writes the operator makes, and to what). */
  onResponse: ((method: string, code: number, resource: string) => void) | undefined;

  constructor(readonly kubeConfig: KubeConfig) {
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 32 });
  }

  /** Throws NoClusterError when neither a kubeconfig nor a service account names a cluster. */
  static fromOptions(o: { kubeconfig?: string }, env: NodeJS.ProcessEnv = process.env): KubeClient {
    clusterSource(o.kubeconfig, env);
    const kc = new KubeConfig();
    if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
    else kc.loadFromDefault();
    return new KubeClient(kc);
  }

  /** fromOptions for a program's start: with no cluster to talk to it logs why and exits 2. */
  static fromOptionsOrExit(o: { kubeconfig?: string }, log: Logger): KubeClient {
    try {
      return KubeClient.fromOptions(o);
    } catch (e) {
      if (!(e instanceof NoClusterError)) throw e;
      log.fatal(e.message);
      process.exit(2);
    }
  }

  close(): void {
    this.agent.destroy();
  }

  /** The URL and authenticated options of one call (credentials are applied per call: tokens rotate). */
  private async prepare(method: string, path: string, query: RequestOptions["query"] = {}) {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig has no current cluster");
    const url = new URL(cluster.server.replace(/\/$/, "") + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
    const opts: https.RequestOptions = { method, headers: { accept: "application/json" } };
    await this.kubeConfig.applyToHTTPSOptions(opts);
    const lib = url.protocol === "http:" ? http : https;
    return { url, opts, lib };
  }

  async request<T>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const { url, opts, lib } = await this.prepare(method, path, o.query);
    const payload = o.body === undefined ? undefined : JSON.stringify(o.body);
    const headers = (opts.headers ?? {}) as Record<string, string>;
    if (payload !== undefined) {
      headers["content-type"] = o.contentType ?? "application/json";
      headers["content-length"] = String(Buffer.byteLength(payload));
    }
    return await new Promise<T>((resolve, reject) => {
      const req = lib.request(
        url,
        { ...opts, headers, agent: url.protocol === "http:" ? undefined : this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", reject);
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let body: unknown = text;
            try {
              body = text ? JSON.parse(text) : undefined;
            } catch {
              // non-JSON body: keep the text
            }
            const code = res.statusCode ?? 0;
            this.onResponse?.(method, code, resourceOfPath(path));
            if (code >= 200 && code < 300) return resolve(body as T);
            const status = (typeof body === "object" && body ? body : {}) as {
              reason?: string;
              message?: string;
            };
            reject(
              new KubeApiError(
                code,
                status.reason ?? "",
                `${method} ${path}: ${status.message ?? text}`,
                body,
              ),
            );
          });
        },
      );
      req.setTimeout(o.timeoutMs ?? 30_000, () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on("error", reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  get<T>(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<T> {
    return this.request<T>("GET", resourcePath(apiVersion, kind, namespace, name));
  }

  async getOrUndefined<T>(apiVersion: string, kind: string, namespace: string | undefined, name: string) {
    try {
      return await this.get<T>(apiVersion, kind, namespace, name);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /** A call whose answer is validated with schema (a ZodError when it does not match). */
  async parsed<T>(schema: z.ZodType<T>, method: string, path: string, o: RequestOptions = {}): Promise<T> {
    return schema.parse(await this.request<unknown>(method, path, o));
  }

  /** GET path validated with schema; a 404 yields undefined. */
  async getParsed<T>(schema: z.ZodType<T>, path: string): Promise<T | undefined> {
    try {
      return await this.parsed(schema, "GET", path);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /**
   * Streams a watch: onLine gets each JSON line until the server ends the stream (resolves), the
   * call fails (rejects; an HTTP error as KubeApiError) or signal aborts (resolves). Watches use
   * their own connection, never the keep-alive pool, so a long watch holds no pooled socket.
   */
  async watch(
    path: string,
    query: RequestOptions["query"],
    onLine: (line: string) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const { url, opts, lib } = await this.prepare("GET", path, { ...query, watch: true });
    await new Promise<void>((resolve, reject) => {
      const req = lib.request(url, { ...opts, agent: undefined, signal }, (res) => {
        const code = res.statusCode ?? 0;
        if (code !== 200) {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            reject(new KubeApiError(code, "", `WATCH ${path}: HTTP ${code}: ${text.slice(0, 500)}`, text));
          });
          return;
        }
        let buffered = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buffered += chunk;
          let nl: number;
          while ((nl = buffered.indexOf("\n")) >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (!line) continue;
            try {
              onLine(line);
            } catch (err) {
              // A line the caller cannot read ends this watch as a failure (the caller retries).
              req.destroy();
              reject(err instanceof Error ? err : new Error(String(err)));
              return;
            }
          }
        });
        res.on("end", () => resolve());
        res.on("error", (err) => (signal.aborted ? resolve() : reject(err)));
        // A connection that dies mid-stream may close without "end" or "error".
        res.on("close", () => {
          if (signal.aborted || res.complete) resolve();
          else reject(new Error(`WATCH ${path}: the connection closed before the stream ended`));
        });
      });
      req.on("error", (err) => (signal.aborted ? resolve() : reject(err)));
      req.end();
    });
  }

  list<T>(
    apiVersion: string,
    kind: string,
    namespace?: string,
    query: { labelSelector?: string; fieldSelector?: string; resourceVersion?: string } = {},
  ): Promise<ListResult<T>> {
    return this.request<ListResult<T>>("GET", resourcePath(apiVersion, kind, namespace), { query });
  }

  /** Creates; fails with 409 AlreadyExists when the object exists. */
  create<T extends KubeObjectLike>(obj: T, fieldManager?: string): Promise<T> {
    return this.request<T>("POST", resourcePath(obj.apiVersion!, obj.kind!, obj.metadata?.namespace), {
      body: obj,
      query: { fieldManager },
    });
  }

  replace<T extends KubeObjectLike>(obj: T): Promise<T> {
    const m = obj.metadata ?? {};
    return this.request<T>("PUT", resourcePath(obj.apiVersion!, obj.kind!, m.namespace, m.name), {
      body: obj,
    });
  }

  /** Server-side apply under one field manager. */
  apply<T extends KubeObjectLike>(obj: T, fieldManager: string, force = true): Promise<T> {
    const m = obj.metadata ?? {};
    return this.request<T>("PATCH", resourcePath(obj.apiVersion!, obj.kind!, m.namespace, m.name), {
      body: obj,
      contentType: "application/apply-patch+yaml",
      query: { fieldManager, force },
    });
  }

  mergePatch<T>(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    subresource?: "status",
  ): Promise<T> {
    const path = resourcePath(apiVersion, kind, namespace, name) + (subresource ? `/${subresource}` : "");
    return this.request<T>("PATCH", path, { body: patch, contentType: "application/merge-patch+json" });
  }

  /** Deletes; a missing object counts as deleted. */
  async delete(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
    o: { propagationPolicy?: "Background" | "Foreground" | "Orphan"; uid?: string } = {},
  ): Promise<void> {
    const body: Record<string, unknown> = { kind: "DeleteOptions", apiVersion: "v1" };
    if (o.propagationPolicy) body.propagationPolicy = o.propagationPolicy;
    if (o.uid) body.preconditions = { uid: o.uid };
    try {
      await this.request("DELETE", resourcePath(apiVersion, kind, namespace, name), { body });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}
