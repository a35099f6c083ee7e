import https from "node:https";
import { open, readFile } from "node:fs/promises";
import type { Server } from "node:https";
import type { ServerResponse } from "node:http";
import { z } from "zod";
import { containerLogFile, tailLines } from "./log-files.js";
import type { Logger } from "../../../target/log.js";

// The slice of the kubelet API the API server proxies for `kubectl logs`:
// GET /containerLogs/{namespace}/{pod}/{container}?follow&tailLines&previous&limitBytes.

const LogQuery = z.object({
  follow: z.enum(["true", "false"]).optional(),
  previous: z.enum(["true", "false"]).optional(),
  tailLines: z.coerce.number().int().min(0).optional(),
  limitBytes: z.coerce.number().int().min(1).optional(),
});

export interface KubeletServerOptions {
  runDir: string;
  cert: string;
  key: string;
  /** Whether the pod still runs here (following stops when it does not). */
  podRunning: (namespace: string, pod: string) => boolean;
  log: Logger;
}

export async function startKubeletServer(
  host: string,
  port: number,
  opts: KubeletServerOptions,
): Promise<Server> {
  const server = https.createServer(
    { cert: await readFile(opts.cert), key: await readFile(opts.key) },
    (req, res) => {
      void handle(req.url ?? "/", res, opts).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end(String(err));
      });
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

async function handle(rawUrl: string, res: ServerResponse, opts: KubeletServerOptions) {
  const url = new URL(rawUrl, "https://kubelet");
  const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
  if (!m) {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("the local node agent serves only /containerLogs");
    return;
  }
  const [, ns = "", pod = "", container = ""] = m.map(decodeURIComponent);
  const q = LogQuery.parse(Object.fromEntries(url.searchParams));
  const file = await containerLogFile(opts.runDir, ns, pod, container, q.previous === "true");
  if (!file) {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end(`no logs for container "${container}" of pod ${ns}/${pod}`);
    return;
  }
  let text = await readFile(file, "utf8");
  if (q.tailLines !== undefined) text = tailLines(text, q.tailLines);
  if (q.limitBytes !== undefined) text = text.slice(0, q.limitBytes);
  res.writeHead(200, { "content-type": "text/plain" });
  res.write(text);
  if (q.follow !== "true" || q.previous === "true") {
    res.end();
    return;
  }
  // Follow: poll for appended bytes until the client goes away or the pod stops running here.
  const fh = await open(file, "r");
  let offset = (await fh.stat()).size;
  let closed = false;
  res.on("close", () => (closed = true));
  try {
    while (!closed && opts.podRunning(ns, pod)) {
      await new Promise((r) => setTimeout(r, 500));
      const size = (await fh.stat()).size;
      if (size > offset) {
        const buf = Buffer.alloc(size - offset);
        await fh.read(buf, 0, buf.length, offset);
        offset = size;
        res.write(buf);
      }
    }
  } finally {
    await fh.close();
    res.end();
  }
}
