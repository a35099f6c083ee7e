import express from "express";
import https from "node:https";
import { readFileSync } from "node:fs";
import type { Logger } from "../../target/log.js";
import type { OperatorMetrics } from "../http/metrics.js";
import { AdmissionReviewSchema, admissionResponse, type AdmissionAnswer } from "./admission.js";
import { evictionDecision, type EvictedPod, type PairLiveStatus } from "../pair/eviction-decision.js";

export interface EvictionSources {
  pod(namespace: string, name: string): Promise<EvictedPod | undefined>;
  pair(pod: EvictedPod): Promise<PairLiveStatus | undefined>;
}

export const EVICTION_PATH = "/validate-eviction";

/** Answers one review; lookups that fail deny with 429 so a drain retries instead of proceeding blind. */
export async function reviewEviction(
  sources: EvictionSources,
  namespace: string,
  name: string,
): Promise<AdmissionAnswer> {
  try {
    const pod = await sources.pod(namespace, name);
    if (!pod) return { allowed: true, message: "pod not found" };
    return evictionDecision(pod, await sources.pair(pod));
  } catch (e) {
    return { allowed: false, code: 429, message: `cannot check the pair's state: ${(e as Error).message}` };
  }
}

export function createWebhookApp(
  sources: EvictionSources,
  log: Logger,
  metrics: OperatorMetrics,
): express.Express {
  const app = express();
  app.use(express.json({ limit: "1mb" }));
  app.post(EVICTION_PATH, async (req, res) => {
    const parsed = AdmissionReviewSchema.safeParse(req.body);
    if (!parsed.success) {
      res
        .status(400)
        .json({ error: "expected an admission.k8s.io/v1 AdmissionReview", issues: parsed.error.issues });
      return;
    }
    const r = parsed.data.request;
    let answer: AdmissionAnswer = { allowed: true, message: "not a pod eviction" };
    if (r.resource.resource === "pods" && r.subResource === "eviction" && r.name && r.namespace) {
      answer = await reviewEviction(sources, r.namespace, r.name);
      metrics.evictions.inc({ allowed: String(answer.allowed) });
      log.info(
        { namespace: r.namespace, pod: r.name, allowed: answer.allowed, message: answer.message },
        "eviction review",
      );
    }
    res.json(admissionResponse(parsed.data.apiVersion, r.uid, answer));
  });
  app.get("/healthz", (_req, res) => {
    res.type("text/plain").send("ok");
  });
  return app;
}

export async function listenTls(
  app: express.Express,
  host: string,
  port: number,
  certFile: string,
  keyFile: string,
): Promise<https.Server> {
  const server = https.createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, app);
  return await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
