import express, { type Request, type Response, type NextFunction } from "express";
import type { Server } from "node:http";
import { z } from "zod";
import type { Logger } from "../log.js";
import type { TargetStatus, VerifyStatus } from "./status-schema.js";
import type { Registry } from "./metrics.js";
import { bearerAuth } from "./bearer-auth.js";
import { DeviceUnavailableError } from "../store/block-device.js";
import { GrowthRefusedError, type GrowthResult } from "../replication/lun-growth.js";
import { PeerLostError, PeerRequestError } from "../replication/peer-connection.js";
import { VerifyRefusedError, type VerifyRequest } from "../replication/verify.js";

/** The agent HTTP API of one target: health, readiness, status, metrics and pair administration. */
export interface AgentOptions {
  status: () => TargetStatus;
  /** ready to serve I/O (listening, device open, and for a pair not Pending/SplitBrain) */
  ready: () => { ready: boolean; reason: string };
  /**
   * Whether losing this node now loses no data: for a pair node, both nodes Working (in sync).
   * Target pods use it as their readiness, so a PodDisruptionBudget holds by itself, with or
   * without the operator.
   */
  disruptionSafe: () => { safe: boolean; reason: string };
  metrics: Registry;
  logger: Logger;
  /** present on a pair node: discards this node's or the partner's divergent data after a split brain */
  resolveSplitBrain?: (discard: "a" | "b") => Promise<string>;
  /** present on a pair node: grows the pair's LUN on both nodes (lun-growth.ts) */
  grow?: (sizeBytes: number) => Promise<GrowthResult>;
  /** present on a pair node: starts an online verify and reports it (verify.ts) */
  verify?: { start(req: VerifyRequest): Promise<VerifyStatus>; status(): VerifyStatus };
  /**
   * `--agent-token-file`: when set, every endpoint but the probes (/healthz, /readyz,
   * /disruption-safe) and /metrics asks for `Authorization: Bearer <token>` (bearer-auth.ts).
   */
  token?: string;
  /** pacing of wrong tokens (bearer-auth.ts defaults: 500 ms, 429 beyond 5 s; tests shorten it) */
  tokenPacing?: { failureDelayMs: number; maxWaitMs: number };
}

const SplitBrainResolutionSchema = z.object({ discard: z.enum(["a", "b"]) }).strict();
export const CapacityRequestSchema = z
  .object({ sizeBytes: z.number().int().positive().max(Number.MAX_SAFE_INTEGER) })
  .strict();
export type CapacityRequest = z.infer<typeof CapacityRequestSchema>;
export const CapacityReplySchema = z.object({
  ok: z.literal(true),
  sizeBytes: z.number().int().positive(),
  grew: z.boolean(),
  message: z.string(),
});
export type CapacityReply = z.infer<typeof CapacityReplySchema>;

export const VerifyRequestSchema = z
  .object({
    /** whose copy is kept where the copies differ: the node that sequences writes (default), a or b */
    source: z.enum(["sequencer", "a", "b"]).optional(),
    rateBytesPerSecond: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  })
  .strict();

/** The HTTP status of a refused verify: one runs (409), the pair is not Working (503). */
function verifyFailureStatus(e: unknown): number {
  if (e instanceof VerifyRefusedError) return 409;
  if (e instanceof PeerRequestError) return e.unavailable ? 503 : 409;
  if (e instanceof DeviceUnavailableError || e instanceof PeerLostError) return 503;
  return 500;
}

/** The HTTP status of a failed growth: refused (409), not possible right now (503), failed (500). */
function growthFailureStatus(e: unknown): number {
  if (e instanceof GrowthRefusedError) return 409;
  if (e instanceof PeerRequestError) return e.unavailable ? 503 : 409;
  if (e instanceof DeviceUnavailableError || e instanceof PeerLostError) return 503;
  return 500;
}

export function createAgentApp(o: AgentOptions): express.Express {
  const app = express();
  app.disable("x-powered-by");
  // Before the body parser: a request without the token is refused before its body is read.
  if (o.token !== undefined) {
    app.use(
      bearerAuth({
        token: o.token,
        logger: o.logger,
        ...o.tokenPacing,
      }),
    );
  }
  app.use(express.json({ limit: "16kb" }));

  app.get("/healthz", (_req, res) => {
    res.type("text/plain").send("ok\n");
  });
  // A probe: 200 or 503, with the reason as text.
  const probe = (res: Response, ok: boolean, reason: string) =>
    res
      .status(ok ? 200 : 503)
      .type("text/plain")
      .send(`${reason}\n`);
  app.get("/readyz", (_req, res) => {
    const r = o.ready();
    probe(res, r.ready, r.reason);
  });
  app.get("/disruption-safe", (_req, res) => {
    const r = o.disruptionSafe();
    probe(res, r.safe, r.reason);
  });
  app.get("/status", (_req, res) => {
    res.json(o.status());
  });
  app.get("/metrics", (_req, res) => {
    res.type("text/plain; version=0.0.4").send(o.metrics.render());
  });
  app.post("/split-brain/resolve", async (req: Request, res: Response) => {
    if (!o.resolveSplitBrain) {
      res.status(404).json({ error: "this target is not a pair node" });
      return;
    }
    const body = SplitBrainResolutionSchema.safeParse(req.body);
    if (!body.success) {
      res.status(400).json({ error: 'body must be {"discard": "a" | "b"}', issues: body.error.issues });
      return;
    }
    try {
      const message = await o.resolveSplitBrain(body.data.discard);
      o.logger.warn({ discard: body.data.discard }, "split brain resolution requested");
      res.json({ ok: true, message });
    } catch (e) {
      res.status(409).json({ error: (e as Error).message });
    }
  });
  // Grows the LUN; answers once the pair holds the new size (or why it does not). Idempotent.
  app.post("/capacity", async (req: Request, res: Response) => {
    if (!o.grow) {
      res.status(404).json({ error: "this target is not a pair node" });
      return;
    }
    const body = CapacityRequestSchema.safeParse(req.body);
    if (!body.success) {
      res.status(400).json({ error: 'body must be {"sizeBytes": <bytes>}', issues: body.error.issues });
      return;
    }
    try {
      const r = await o.grow(body.data.sizeBytes);
      if (r.grew) o.logger.info({ sizeBytes: r.sizeBytes }, "LUN growth requested and done");
      const reply: CapacityReply = { ok: true, ...r };
      res.json(reply);
    } catch (e) {
      const status = growthFailureStatus(e);
      o.logger.warn(
        { sizeBytes: body.data.sizeBytes, err: (e as Error).message, status },
        "LUN growth refused",
      );
      res.status(status).json({ error: (e as Error).message });
    }
  });
  app.get("/verify", (_req, res) => {
    if (!o.verify) {
      res.status(404).json({ error: "this target is not a pair node" });
      return;
    }
    res.json(o.verify.status());
  });
  // Starts a verify; answers at once (progress: GET /verify).
  app.post("/verify", async (req: Request, res: Response) => {
    if (!o.verify) {
      res.status(404).json({ error: "this target is not a pair node" });
      return;
    }
    const body = VerifyRequestSchema.safeParse(req.body ?? {});
    if (!body.success) {
      res.status(400).json({
        error: 'body must be {"source"?: "sequencer" | "a" | "b", "rateBytesPerSecond"?: <bytes>}',
        issues: body.error.issues,
      });
      return;
    }
    try {
      const status = await o.verify.start(body.data);
      o.logger.info({ ...body.data }, "verify requested");
      res.status(202).json(status);
    } catch (e) {
      const status = verifyFailureStatus(e);
      o.logger.warn({ err: (e as Error).message, status }, "verify refused");
      res.status(status).json({ error: (e as Error).message });
    }
  });
  app.use((req, res) => {
    res.status(404).json({ error: `no route ${req.method} ${req.path}` });
  });
  // Malformed JSON and other errors: a clear 4xx/5xx, never a crash.
  app.use((err: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status >= 500) o.logger.error({ err }, "agent request failed");
    res.status(status).json({ error: err.message });
  });
  return app;
}

export async function startAgent(o: AgentOptions, host: string, port: number): Promise<Server> {
  const app = createAgentApp(o);
  return await new Promise<Server>((resolve, reject) => {
    const server = app.listen(port, host, () => {
      server.off("error", reject);
      // after the start, an accept error (EMFILE) is logged, not fatal: the listener stays
      server.on("error", (err: Error) => o.logger.warn({ err }, "agent listener error"));
      resolve(server);
    });
    server.once("error", reject);
  });
}
