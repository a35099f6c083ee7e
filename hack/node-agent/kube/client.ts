import https from "node:https";
import { KubeConfig } from "@kubernetes/client-node";
import type { z } from "zod";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    method: string,
    path: string,
  ) {
    super(`${method} ${path}: HTTP ${status}: ${body.slice(0, 500)}`);
  }
}

export type PatchType = "merge" | "strategic" | "json";
const patchContentType: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
  json: "application/json-patch+json",
};

/** A small REST client for the API server: JSON in, zod-validated JSON out, plus streaming watches. */
export class KubeClient {
  private constructor(
    private readonly server: URL,
    private readonly options: https.RequestOptions,
  ) {}

  static async fromKubeconfig(path: string): Promise<KubeClient> {
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error(`kubeconfig ${path} has no current cluster`);
    const options: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(options);
    options.agent = new https.Agent({ keepAlive: true, maxSockets: 32 });
    return new KubeClient(new URL(cluster.server), options);
  }

  async request<T>(
    schema: z.ZodType<T>,
    method: string,
    path: string,
    body?: unknown,
    patch?: PatchType,
  ): Promise<T> {
    const text = await this.raw(method, path, body, patch);
    return schema.parse(JSON.parse(text));
  }

  /** Like request, but a 404 yields undefined. */
  async get<T>(schema: z.ZodType<T>, path: string): Promise<T | undefined> {
    try {
      return await this.request(schema, "GET", path);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  raw(method: string, path: string, body?: unknown, patch?: PatchType): Promise<string> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { Accept: "application/json" };
    if (payload !== undefined) {
      headers["Content-Type"] = patch ? patchContentType[patch] : "application/json";
      headers["Content-Length"] = String(Buffer.byteLength(payload));
    }
    return new Promise((resolve, reject) => {
      const req = https.request(
        new URL(path, this.server),
        { ...this.options, method, headers, timeout: 30_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(text);
            else reject(new ApiError(status, text, method, path));
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on("error", reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  /**
   * Streams a watch: calls onLine for each JSON line until the server ends the stream.
   * Resolves when the stream ends; rejects on HTTP errors. abort() stops it.
   */
  watch(path: string, onLine: (line: string) => void, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        new URL(path, this.server),
        { ...this.options, agent: undefined, method: "GET", signal },
        (res) => {
          if (res.statusCode !== 200) {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () =>
              reject(new ApiError(res.statusCode ?? 0, Buffer.concat(chunks).toString(), "WATCH", path)),
            );
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
              if (line) onLine(line);
            }
          });
          res.on("end", () => resolve());
          res.on("error", (err) => (signal.aborted ? resolve() : reject(err)));
        },
      );
      req.on("error", (err) => (signal.aborted ? resolve() : reject(err)));
      req.end();
    });
  }
}
