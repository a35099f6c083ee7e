import { test } from "node:test";
import assert from "node:assert/strict";
import { parseOperatorArgs } from "../../../operator/config.js";

test("defaults: all namespaces, no leader election, metrics on 127.0.0.1:8081, 5 s / 1 s status polls, 60 s drift checks", () => {
  const c = parseOperatorArgs([], {});
  assert.equal(c.namespace, undefined);
  assert.equal(c.leaderElect, false);
  assert.deepEqual(c.metricsAddr, { host: "127.0.0.1", port: 8081 });
  assert.equal(c.statusPollSteadyMs, 5000);
  assert.equal(c.statusPollActiveMs, 1000);
  assert.equal(c.driftCheckMs, 60_000);
  assert.equal(c.targetImage, "ghcr.io/hasan-dev/hasan:0.1.0");
});

test("flags win over HASAN_OPERATOR_* environment variables", () => {
  const c = parseOperatorArgs(["--namespace", "a", "--leader-elect"], {
    HASAN_OPERATOR_NAMESPACE: "b",
    HASAN_OPERATOR_TARGET_IMAGE: "img:2",
  });
  assert.equal(c.namespace, "a");
  assert.equal(c.leaderElect, true);
  assert.equal(c.targetImage, "img:2");
});

test("errors name the flag and the rule", () => {
  assert.throws(
    () => parseOperatorArgs(["--metrics-addr", "nonsense"], {}),
    /--metrics-addr: must be HOST:PORT/,
  );
  assert.throws(
    () => parseOperatorArgs(["--webhook-addr", "127.0.0.1:9443"], {}),
    /--webhook-addr: --webhook-addr, --webhook-cert and --webhook-key go together/,
  );
  assert.throws(() => parseOperatorArgs(["--agent-address", "dns"], {}), /--agent-address/);
  assert.throws(
    () => parseOperatorArgs(["--drift-check-ms", "5"], {}),
    /--drift-check-ms: must be at least 100 ms/,
  );
  assert.throws(() => parseOperatorArgs(["--bogus"], {}), /Unknown option '--bogus'/);
});
