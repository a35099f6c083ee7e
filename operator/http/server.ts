import express from "express";
import type { Server } from "node:http";
import type { OperatorMetrics } from "./metrics.js";

export interface HealthSources {
  metrics: OperatorMetrics;
  /** caches synced (and the process able to do its job) */
  ready: () => boolean;
}

/** /healthz (process alive), /readyz (caches synced), /metrics (Prometheus text). */
export function createHttpApp(s: HealthSources): express.Express {
  const app = express();
  app.get("/healthz", (_req, res) => {
    res.type("text/plain").send("ok");
  });
  app.get("/readyz", (_req, res) => {
    if (s.ready()) res.type("text/plain").send("ok");
    else res.status(503).type("text/plain").send("caches not synced");
  });
  app.get("/metrics", (_req, res, next) => {
    s.metrics.render().then((text) => res.type(s.metrics.contentType).send(text), next);
  });
  return app;
}

export async function listen(app: express.Express, host: string, port: number): Promise<Server> {
  return await new Promise<Server>((resolve, reject) => {
    const server = app.listen(port, host, () => resolve(server));
    server.once("error", reject);
  });
}
