// The agent's bearer token (--agent-token-file): every endpoint but the probes and /metrics asks
// for it; a missing token is 401 with WWW-Authenticate, a wrong one 403 (paced), and neither
// reaches the handler, so no split brain is resolved by a caller without the pair's token.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { startAgent } from "../../target/agent/server.js";
import { bearerToken, tokenMatches } from "../../target/agent/bearer-auth.js";
import { TargetMetrics } from "../../target/agent/target-metrics.js";
import type { TargetStatus } from "../../target/agent/status-schema.js";
import { sampleStatus } from "./agent-sample.js";

const TOKEN = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/** A session whose initiator name and address must not reach /metrics. */
const status = (metrics: TargetMetrics) =>
  sampleStatus(metrics, [
    {
      initiator: "iqn.1993-08.org.debian:01:secret-host",
      isid: "023d00000001",
      tsih: 1,
      remote: "10.1.2.3:51234",
      connections: 1,
    },
  ]);

async function withAgent(
  fn: (base: string, calls: string[], logged: () => string) => Promise<void>,
  token: string | null = TOKEN,
) {
  const metrics = new TargetMetrics();
  metrics.watch(() => status(metrics));
  const calls: string[] = [];
  let logged = "";
  const server = await startAgent(
    {
      status: () => status(metrics),
      ready: () => ({ ready: true, reason: "serving" }),
      disruptionSafe: () => ({ safe: true, reason: "Working" }),
      metrics: metrics.registry,
      logger: pino({ level: "warn" }, { write: (s: string) => void (logged += s) }),
      resolveSplitBrain: (d) => {
        calls.push(d);
        return Promise.resolve(`discarding node ${d}`);
      },
      ...(token !== null ? { token, tokenPacing: { failureDelayMs: 20, maxWaitMs: 400 } } : {}),
    },
    "127.0.0.1",
    0,
  );
  const { port } = server.address() as AddressInfo;
  try {
    await fn(`http://127.0.0.1:${port}`, calls, () => logged);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

const resolve = (base: string, headers: Record<string, string> = {}) =>
  fetch(`${base}/split-brain/resolve`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ discard: "a" }),
  });

test("without a token: 401 with WWW-Authenticate Bearer as JSON; the split brain is not resolved and /status is not shown", async () => {
  await withAgent(async (base, calls, logged) => {
    const r = await resolve(base);
    assert.equal(r.status, 401);
    assert.match(r.headers.get("www-authenticate") ?? "", /^Bearer/);
    assert.match(((await r.json()) as { error: string }).error, /Authorization: Bearer/);
    const s = await fetch(`${base}/status`);
    assert.equal(s.status, 401);
    assert.doesNotMatch(await s.text(), /secret-host|10\.1\.2\.3/);
    assert.equal((await fetch(`${base}/nowhere`)).status, 401, "unknown paths give nothing away either");
    assert.deepEqual(calls, []);
    assert.match(logged(), /"level":40.*"reason":"no bearer token".*"msg":"agent request refused"/);
  });
});

test("with a wrong token: 403 (paced), nothing discarded; the token is never logged", async () => {
  await withAgent(async (base, calls, logged) => {
    const wrong = "f".repeat(64);
    const started = Date.now();
    const r = await resolve(base, { authorization: `Bearer ${wrong}` });
    assert.equal(r.status, 403);
    assert.ok(Date.now() - started >= 15, "the answer waits like a failed CHAP login");
    assert.deepEqual(await r.json(), { error: "wrong agent token" });
    assert.equal((await fetch(`${base}/status`, { headers: { authorization: "Bearer x" } })).status, 403);
    assert.equal(
      (await resolve(base, { authorization: `Basic ${TOKEN}` })).status,
      401,
      "not a bearer token",
    );
    assert.deepEqual(calls, []);
    assert.doesNotMatch(logged(), new RegExp(`${wrong}|${TOKEN}`));
    assert.match(logged(), /"reason":"wrong token"/);
  });
});

test("with the pair's token: /status and the resolution work", async () => {
  await withAgent(async (base, calls) => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const s = await fetch(`${base}/status`, { headers: auth });
    assert.equal(s.status, 200);
    assert.equal(((await s.json()) as TargetStatus).iqn, "iqn.2026-11.dev.hasan:t1");
    const r = await resolve(base, auth);
    assert.equal(r.status, 200);
    assert.deepEqual(calls, ["a"]);
  });
});

test("probes and /metrics stay open (the kubelet and Prometheus have no token), and /metrics names no initiator", async () => {
  await withAgent(async (base) => {
    for (const p of ["/healthz", "/readyz", "/disruption-safe", "/metrics"])
      assert.equal((await fetch(`${base}${p}`)).status, 200, p);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /hasan_target_sessions 1/);
    assert.doesNotMatch(metrics, /secret-host|10\.1\.2\.3|iqn\.1993/);
  });
});

test("without --agent-token-file the agent answers as before (standalone and development use)", async () => {
  await withAgent(async (base, calls) => {
    assert.equal((await fetch(`${base}/status`)).status, 200);
    assert.equal((await resolve(base)).status, 200);
    assert.deepEqual(calls, ["a"]);
  }, null);
});

test("a source that keeps sending wrong tokens is answered one at a time, then with 429", async () => {
  await withAgent(async (base) => {
    const bad = { authorization: `Bearer ${"0".repeat(64)}` };
    const codes = await Promise.all(
      Array.from({ length: 60 }, () => fetch(`${base}/status`, { headers: bad }).then((r) => r.status)),
    );
    assert.ok(
      codes.every((c) => c === 403 || c === 429),
      codes.join(","),
    );
    assert.ok(codes.includes(429), "beyond the longest wait, refused at once");
  });
});

test("token comparison: constant-time over digests, any length; the bearer header parsed strictly", () => {
  assert.equal(tokenMatches(TOKEN, TOKEN), true);
  assert.equal(tokenMatches(TOKEN, TOKEN.slice(1)), false);
  assert.equal(tokenMatches(TOKEN, ""), false);
  assert.equal(bearerToken(`Bearer ${TOKEN}`), TOKEN);
  assert.equal(bearerToken(`bearer  ${TOKEN} `), TOKEN);
  assert.equal(bearerToken(`Bearer a b`), undefined);
  assert.equal(bearerToken(undefined), undefined);
});
