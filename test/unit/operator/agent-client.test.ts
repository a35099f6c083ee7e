import { test, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import {
  AgentStatusCache,
  readAgentStatus,
  resolveSplitBrain,
} from "../../../operator/status/agent-client.js";
import { agent } from "./fixtures.js";

let statusBody: unknown = agent("a", { state: "Working" });
const posts: unknown[] = [];
const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/status") {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(statusBody));
    return;
  }
  if (req.method === "POST" && req.url === "/split-brain/resolve") {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      posts.push(JSON.parse(body));
      res.setHeader("content-type", "application/json");
      if (posts.length > 1) {
        res.statusCode = 409;
        res.end(JSON.stringify({ error: "not in split brain" }));
      } else res.end(JSON.stringify({ ok: true, message: "discarding b" }));
    });
    return;
  }
  res.statusCode = 404;
  res.end("{}");
});
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
after(() => server.close());

test("agent status is validated against the shared contract", async () => {
  const ok = await readAgentStatus(base);
  assert.equal(ok.ok && ok.status.replication?.state, "Working");
  statusBody = { ...agent("a", { state: "Working" }), state: "Sleeping" };
  const bad = await readAgentStatus(base);
  assert.equal(bad.ok, false);
  assert.match(!bad.ok ? bad.error : "", /invalid \/status body/);
  statusBody = agent("a", { state: "Working" });
});

test("an agent that does not answer is an error value, not an exception", async () => {
  const closed = http.createServer();
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
  const port = (closed.address() as { port: number }).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const r = await readAgentStatus(`http://127.0.0.1:${port}`, 1000);
  assert.equal(r.ok, false);
  assert.match(!r.ok ? r.error : "", /ECONNREFUSED/);
});

test("split-brain resolution posts the node to discard and surfaces the agent's refusal", async () => {
  assert.equal(await resolveSplitBrain(base, "b"), "discarding b");
  assert.deepEqual(posts, [{ discard: "b" }]);
  await assert.rejects(resolveSplitBrain(base, "b"), /not in split brain/);
});

test("the status cache shares reads younger than maxAge and reads again after", async () => {
  let reads = 0;
  let now = 0;
  const cache = new AgentStatusCache(
    async () => {
      reads++;
      return { ok: false, error: "x" };
    },
    () => now,
  );
  await Promise.all([cache.get("u", 1000), cache.get("u", 1000)]);
  now = 900;
  await cache.get("u", 1000);
  assert.equal(reads, 1);
  now = 1500;
  await cache.get("u", 1000);
  assert.equal(reads, 2);
});
