import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import https from "node:https";
import type { Server } from "node:https";
import { createLogger } from "../../../target/log.js";
import { OperatorMetrics } from "../../../operator/http/metrics.js";
import {
  createWebhookApp,
  listenTls,
  EVICTION_PATH,
  type EvictionSources,
} from "../../../operator/webhook/server.js";
import { node } from "./fixtures.js";

const MiB = 1024 * 1024;
let dir = "";
let server: Server;
let port = 0;

const sources: EvictionSources = {
  async pod(namespace, name) {
    if (name === "missing") return undefined;
    if (name === "broken") throw new Error("apiserver unreachable");
    const n = name.endsWith("-b") ? "b" : "a";
    const labels: Record<string, string> = name.startsWith("web")
      ? { app: "web" }
      : { "app.kubernetes.io/name": "hasan-target", "hasan.dev/target": "data", "hasan.dev/node": n };
    return { name, namespace, labels, phase: "Running" };
  },
  async pair() {
    const resync = { doneBytes: 43 * MiB, totalBytes: 100 * MiB, bytesPerSecond: MiB, etaSeconds: 125 };
    return {
      nodes: [node("a", { state: "Synchronizing", resync }), node("b", { state: "Pending", resync })],
      everSynchronized: true,
    };
  },
};

before(() => {
  dir = mkdtempSync(join(tmpdir(), "hasan-webhook-"));
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      join(dir, "tls.key"),
      "-out",
      join(dir, "tls.crt"),
    ],
    { stdio: "ignore" },
  );
});

after(() => {
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

function review(
  name: string,
  resource = "pods",
  subResource = "eviction",
): Promise<{ status: number; body: Record<string, unknown> }> {
  const payload = JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: `uid-${name}`,
      name,
      namespace: "prod",
      operation: "CREATE",
      subResource,
      resource: { group: "", version: "v1", resource },
    },
  });
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port,
        path: EVICTION_PATH,
        method: "POST",
        rejectUnauthorized: false,
        headers: { "content-type": "application/json" },
      },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
        );
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

test("the webhook serves HTTPS and denies an unsafe eviction with 429 and progress", async () => {
  const app = createWebhookApp(sources, createLogger("test", {}), new OperatorMetrics());
  server = await listenTls(app, "127.0.0.1", 0, join(dir, "tls.crt"), join(dir, "tls.key"));
  const addr = server.address();
  port = typeof addr === "object" && addr ? addr.port : 0;
  const r = await review("data-a");
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    response: {
      uid: "uid-data-a",
      allowed: false,
      status: { code: 429, reason: "TooManyRequests", message: "resync in flight: 43% done, about 2m left" },
    },
  });
});

test("other pods, missing pods and other resources are allowed", async () => {
  for (const r of [
    await review("web-1"),
    await review("missing"),
    await review("data-a", "pods", "status"),
  ]) {
    assert.deepEqual((r.body.response as { allowed: boolean }).allowed, true);
  }
});

test("when the pair's state cannot be read, the eviction waits (429) instead of proceeding blind", async () => {
  const r = await review("broken");
  const response = r.body.response as { allowed: boolean; status: { code: number; message: string } };
  assert.equal(response.allowed, false);
  assert.equal(response.status.code, 429);
  assert.match(response.status.message, /apiserver unreachable/);
});

test("a body that is not an AdmissionReview is refused with 400", async () => {
  const status = await new Promise<number>((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port,
        path: EVICTION_PATH,
        method: "POST",
        rejectUnauthorized: false,
        headers: { "content-type": "application/json" },
      },
      (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      },
    );
    req.on("error", reject);
    req.end("{}");
  });
  assert.equal(status, 400);
});
