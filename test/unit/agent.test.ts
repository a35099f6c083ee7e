import { test } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { startAgent } from "../../target/agent/server.js";
import { TargetMetrics } from "../../target/agent/target-metrics.js";
import { TargetStatusSchema } from "../../target/agent/status-schema.js";
import { sampleStatus } from "./agent-sample.js";

async function withAgent(
  resolve: ((d: "a" | "b") => Promise<string>) | undefined,
  fn: (base: string, m: TargetMetrics) => Promise<void>,
) {
  const metrics = new TargetMetrics();
  const status = () => sampleStatus(metrics);
  metrics.watch(status);
  const server = await startAgent(
    {
      status,
      ready: () => ({ ready: true, reason: "serving" }),
      disruptionSafe: () => ({ safe: true, reason: "standalone target" }),
      metrics: metrics.registry,
      logger: pino({ level: "silent" }),
      ...(resolve ? { resolveSplitBrain: resolve } : {}),
    },
    "127.0.0.1",
    0,
  );
  const { port } = server.address() as AddressInfo;
  try {
    await fn(`http://127.0.0.1:${port}`, metrics);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

test("status validates against the published schema and counts commands", async () => {
  await withAgent(undefined, async (base, metrics) => {
    metrics.commandDone({ kind: "write", bytes: 4096, latencyMs: 0.3, ok: true });
    metrics.commandDone({ kind: "read", bytes: 8192, latencyMs: 0.2, ok: true });
    const s = TargetStatusSchema.parse(await (await fetch(`${base}/status`)).json());
    assert.equal(s.counters.writtenBytes, 4096);
    assert.equal(s.counters.readBytes, 8192);
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(text, /hasan_target_bytes_total\{direction="write"\} 4096/);
    assert.match(text, /hasan_target_command_duration_seconds_bucket\{kind="read",le="0.00025"\} 1/);
    // One state metric: the operator's hasan_target_node_state; the target exports none of its own.
    assert.doesNotMatch(text, /_state\{/);
    assert.match(
      text,
      /# TYPE hasan_target_resynced_bytes_total counter\nhasan_target_resynced_bytes_total 0\n/,
    );
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
  });
});

test("split brain resolution: 404 on a standalone target, 400 on a malformed body, 200 when accepted", async () => {
  await withAgent(undefined, async (base) => {
    const r = await fetch(`${base}/split-brain/resolve`, { method: "POST" });
    assert.equal(r.status, 404);
  });
  const calls: string[] = [];
  await withAgent(
    async (d) => {
      calls.push(d);
      return `discarding node ${d}`;
    },
    async (base) => {
      const post = (body: string) =>
        fetch(`${base}/split-brain/resolve`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
      assert.equal((await post("{not json")).status, 400);
      assert.equal((await post('{"discard":"c"}')).status, 400);
      const ok = await post('{"discard":"b"}');
      assert.equal(ok.status, 200);
      assert.deepEqual(calls, ["b"]);
    },
  );
});

test("an accept error (EMFILE) on the agent's listener after it started is logged, not fatal, and the agent keeps answering", async () => {
  const metrics = new TargetMetrics();
  const status = () => sampleStatus(metrics);
  let logged = "";
  const logger = pino({ level: "warn" }, { write: (s: string) => void (logged += s) });
  const server = await startAgent(
    {
      status,
      ready: () => ({ ready: true, reason: "serving" }),
      disruptionSafe: () => ({ safe: true, reason: "standalone target" }),
      metrics: metrics.registry,
      logger,
    },
    "127.0.0.1",
    0,
  );
  try {
    const emfile = Object.assign(new Error("accept EMFILE"), { code: "EMFILE", syscall: "accept" });
    // without a listener this 'error' event would throw, and end the process
    server.emit("error", emfile);
    assert.match(logged, /"msg":"agent listener error"/);
    assert.match(logged, /"code":"EMFILE"/);
    const { port } = server.address() as AddressInfo;
    assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
