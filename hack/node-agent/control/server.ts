import express, { type NextFunction, type Request, type Response } from "express";
import type { Server } from "node:http";
import { z } from "zod";
import type { Kubelet } from "../kubelet.js";
import { LinkRequest, type PodInfo, type PodRef } from "./api.js";
import type { Logger } from "../../../target/log.js";

export interface LinkCuts {
  cut(a: PodRef, b: PodRef): void;
  restore(a: PodRef, b: PodRef): void;
}

const NodeParam = z.object({ name: z.string().regex(/^[a-z0-9.-]+$/) });
const PodParam = z.object({ namespace: z.string().min(1), name: z.string().min(1) });

export function controlApp(kubelet: Kubelet, links: LinkCuts): express.Express {
  const app = express();
  app.use(express.json());
  app.get("/healthz", (_req, res) => {
    res.json({ ok: true });
  });
  app.get("/nodes", (_req, res) => {
    res.json(
      [...kubelet.nodes].map(([name, n]) => ({
        name,
        failed: n.failed,
        pods: [...kubelet.workers.values()].filter((w) => w.node === name).length,
      })),
    );
  });
  app.use("/nodes/:name", (req, res, next) => {
    const { name } = NodeParam.parse(req.params);
    if (kubelet.nodes.has(name)) next();
    else res.status(404).json({ error: `unknown node ${name}` });
  });
  app.post("/nodes/:name/fail", async (req, res) => {
    const { name } = NodeParam.parse(req.params);
    await kubelet.failNode(name);
    res.json({ ok: true });
  });
  app.post("/nodes/:name/restore", async (req, res) => {
    const { name } = NodeParam.parse(req.params);
    await kubelet.restoreNode(name);
    res.json({ ok: true });
  });
  app.post("/links/cut", (req, res) => {
    const { a, b } = LinkRequest.parse(req.body);
    links.cut(a, b);
    res.json({ ok: true });
  });
  app.post("/links/restore", (req, res) => {
    const { a, b } = LinkRequest.parse(req.body);
    links.restore(a, b);
    res.json({ ok: true });
  });
  app.get("/pods/:namespace/:name", (req, res) => {
    const ref = PodParam.parse(req.params);
    const w = kubelet.findPod(ref.namespace, ref.name);
    const entry = w && kubelet.workers.get(w.uid);
    if (!w || !entry) {
      res.status(404).json({ error: `pod ${ref.namespace}/${ref.name} is not running on this agent` });
      return;
    }
    const info: PodInfo = {
      ...ref,
      uid: w.uid,
      node: entry.node,
      ...(w.ip ? { ip: w.ip } : {}),
      ...(w.network ? { netns: w.network.netns } : {}),
      pids: w.pids(),
      logDir: w.logDir,
    };
    res.json(info);
  });
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = err instanceof z.ZodError ? 400 : 500;
    res.status(status).json({ error: err instanceof Error ? err.message : String(err) });
  });
  return app;
}

export function listen(app: express.Express, port: number, log: Logger): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, "127.0.0.1", () => {
      log.info({ port }, "control API listening");
      resolve(server);
    });
    server.on("error", reject);
  });
}
