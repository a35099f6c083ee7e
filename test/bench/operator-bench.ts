// `node dist/test/bench/operator-bench.js`: costs of the operator's hot paths, as a table.
// - one reconcile decision (desired children + conditions) for a pair
// - an eviction review over HTTPS on 127.0.0.1 (webhook server, decision, JSON), p50 and p99
// - work queue throughput with coalescing
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../target/log.js";
import { OperatorMetrics } from "../../operator/http/metrics.js";
import { desiredChildren } from "../../operator/reconcile/desired-children.js";
import { conditionsFrom } from "../../operator/status/conditions.js";
import { createWebhookApp, listenTls, EVICTION_PATH } from "../../operator/webhook/server.js";
import { WorkQueue } from "../../operator/kit/work-queue.js";
import type { HASanTarget } from "../../operator/api/target.js";
import type { ObservedNode } from "../../operator/pair/observed.js";
import type { TargetStatus } from "../../target/agent/status-schema.js";

const target: HASanTarget = {
  apiVersion: "hasan.dev/v1alpha1",
  kind: "HASanTarget",
  metadata: { name: "db", namespace: "prod", uid: "0b7c6f2e-1a2b-4c3d-8e9f-001122334455", generation: 1 },
  spec: { capacity: "20Gi", export: { persistentVolume: { reclaimPolicy: "Retain" } } },
};

function agent(node: "a" | "b"): TargetStatus {
  return {
    iqn: "iqn.2024-01.dev.hasan:prod.db",
    serial: "x",
    sizeBytes: 1 << 30,
    blockSize: 512,
    portal: "10.0.0.1:3260",
    uptimeSeconds: 1,
    state: "Working",
    sessions: [],
    counters: {
      readCommands: 0,
      writeCommands: 0,
      otherCommands: 0,
      readBytes: 0,
      writtenBytes: 0,
      errors: 0,
    },
    replication: {
      node,
      state: "Working",
      peer: { address: "10.0.0.2:3261", connected: true, lastHeardMs: 10 },
      generation: "g",
      outOfSyncBytes: 0,
      resync: null,
      serving: true,
      stats: { resyncedBytes: 0, mirroredWrites: 0 },
      message: "in sync",
    },
  };
}
const nodes: [ObservedNode, ObservedNode] = [
  { name: "a", pod: { name: "db-a", ready: true, terminating: false, phase: "Running" }, agent: agent("a") },
  { name: "b", pod: { name: "db-b", ready: true, terminating: false, phase: "Running" }, agent: agent("b") },
];

function benchDecisions(): string[] {
  const n = 20_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    desiredChildren(
      target,
      // with the CHAP user name read from the generated Secret, so the pods are decided too
      { serviceIPs: { a: "10.214.0.1", b: "10.214.0.2" }, chap: { username: "db" }, bothWorking: true },
      { image: "hasan:1" },
    );
    conditionsFrom({ generation: 1, nodes });
  }
  const us = Number(process.hrtime.bigint() - t0) / 1e3 / n;
  return ["reconcile decision (children + conditions)", `${us.toFixed(1)} µs`, `${Math.round(1e6 / us)} /s`];
}

async function benchWebhook(): Promise<string[]> {
  process.env.HASAN_LOG_LEVEL ??= "warn"; // one log line per review would dominate the timing
  const dir = mkdtempSync(join(tmpdir(), "hasan-bench-webhook-"));
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
      "-keyout",
      join(dir, "k"),
      "-out",
      join(dir, "c"),
    ],
    { stdio: "ignore" },
  );
  const app = createWebhookApp(
    {
      pod: async (namespace, name) => ({
        name,
        namespace,
        labels: { "app.kubernetes.io/name": "hasan-target", "hasan.dev/target": "db", "hasan.dev/node": "a" },
        phase: "Running",
      }),
      pair: async () => ({ nodes, everSynchronized: true }),
    },
    createLogger("bench", {}),
    new OperatorMetrics(),
  );
  const server = await listenTls(app, "127.0.0.1", 0, join(dir, "c"), join(dir, "k"));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  const agentPool = new https.Agent({ keepAlive: true, rejectUnauthorized: false });
  const body = JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "u",
      name: "db-a",
      namespace: "prod",
      operation: "CREATE",
      subResource: "eviction",
      resource: { resource: "pods" },
    },
  });
  const once = () =>
    new Promise<void>((resolve, reject) => {
      const req = https.request(
        {
          host: "127.0.0.1",
          port,
          path: EVICTION_PATH,
          method: "POST",
          agent: agentPool,
          headers: { "content-type": "application/json" },
        },
        (res) => {
          res.resume();
          res.on("end", resolve);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  for (let i = 0; i < 50; i++) await once();
  const samples: number[] = [];
  for (let i = 0; i < 500; i++) {
    const t0 = process.hrtime.bigint();
    await once();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  server.close();
  agentPool.destroy();
  rmSync(dir, { recursive: true, force: true });
  samples.sort((x, y) => x - y);
  const p = (q: number) => samples[Math.floor(q * (samples.length - 1))]!.toFixed(2);
  return ["eviction review over HTTPS (keep-alive)", `p50 ${p(0.5)} ms`, `p99 ${p(0.99)} ms`];
}

async function benchQueue(): Promise<string[]> {
  const keys = 1000;
  const adds = 50_000;
  let passes = 0;
  const q = new WorkQueue(
    async () => {
      passes++;
    },
    { concurrency: 4 },
  );
  q.start();
  const t0 = Date.now();
  for (let i = 0; i < adds; i++) q.add(`ns/t${i % keys}`);
  while (q.length > 0) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 10));
  const ms = Date.now() - t0;
  await q.stop();
  return ["work queue: 50k adds over 1k keys", `${passes} passes`, `${ms} ms`];
}

const rows = [benchDecisions(), await benchWebhook(), await benchQueue()];
const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join("  "));
