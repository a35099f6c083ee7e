import { test } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { startAgent } from "../../target/agent/server.js";
import { TargetMetrics } from "../../target/agent/target-metrics.js";
import { GrowthRefusedError, type GrowthResult } from "../../target/replication/lun-growth.js";
import { DeviceUnavailableError } from "../../target/store/block-device.js";
import { sampleStatus } from "./agent-sample.js";

const GiB = 2 ** 30;
const TOKEN = "t".repeat(64);

async function withAgent(
  grow: ((sizeBytes: number) => Promise<GrowthResult>) | undefined,
  fn: (base: string) => Promise<void>,
) {
  const metrics = new TargetMetrics();
  const server = await startAgent(
    {
      status: () => sampleStatus(metrics),
      ready: () => ({ ready: true, reason: "serving" }),
      disruptionSafe: () => ({ safe: true, reason: "Working" }),
      metrics: metrics.registry,
      logger: pino({ level: "silent" }),
      token: TOKEN,
      tokenPacing: { failureDelayMs: 1, maxWaitMs: 100 },
      ...(grow ? { grow } : {}),
    },
    "127.0.0.1",
    0,
  );
  const { port } = server.address() as AddressInfo;
  try {
    await fn(`http://127.0.0.1:${port}`);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

const post = (base: string, body: unknown, token: string | null = TOKEN) =>
  fetch(`${base}/capacity`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(body),
  });

test("POST /capacity grows through the pair and answers with the size it holds; the token is required", async () => {
  const asked: number[] = [];
  await withAgent(
    async (sizeBytes) => {
      asked.push(sizeBytes);
      if (sizeBytes < GiB)
        throw new GrowthRefusedError("the LUN holds 1073741824 bytes; shrinking it would lose data");
      if (sizeBytes === 3 * GiB)
        throw new DeviceUnavailableError("pair node a: handshaking", "transitioning");
      return { sizeBytes, grew: true, message: `LUN grown to ${sizeBytes} bytes on both nodes` };
    },
    async (base) => {
      assert.equal((await post(base, { sizeBytes: 2 * GiB }, null)).status, 401);
      assert.deepEqual(asked, [], "nothing is asked without the token");
      const ok = await post(base, { sizeBytes: 2 * GiB });
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), {
        ok: true,
        sizeBytes: 2 * GiB,
        grew: true,
        message: "LUN grown to 2147483648 bytes on both nodes",
      });
      const shrink = await post(base, { sizeBytes: 1 << 20 });
      assert.equal(shrink.status, 409);
      assert.match(((await shrink.json()) as { error: string }).error, /shrinking it would lose data/);
      assert.equal((await post(base, { sizeBytes: 3 * GiB })).status, 503, "not now: retry later");
      for (const bad of [
        {},
        { sizeBytes: "1Gi" },
        { sizeBytes: -1 },
        { sizeBytes: 1.5 },
        { sizeBytes: 1, x: 1 },
      ]) {
        assert.equal((await post(base, bad)).status, 400, JSON.stringify(bad));
      }
      assert.deepEqual(asked, [2 * GiB, 1 << 20, 3 * GiB]);
    },
  );
});

test("POST /capacity on a target that is not a pair node: 404", async () => {
  await withAgent(undefined, async (base) => {
    assert.equal((await post(base, { sizeBytes: GiB })).status, 404);
  });
});
