import { test } from "node:test";
import assert from "node:assert/strict";
import { networkPolicyOptions, parseOperatorArgs } from "../../../operator/config.js";

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

test("allowedTargetImages defaults to the target image alone and takes a comma-separated list", () => {
  assert.deepEqual(parseOperatorArgs([], {}).allowedTargetImages, ["ghcr.io/hasan-dev/hasan:0.1.0"]);
  assert.deepEqual(parseOperatorArgs(["--target-image", "img:2"], {}).allowedTargetImages, ["img:2"]);
  const c = parseOperatorArgs([], {
    HASAN_OPERATOR_ALLOWED_TARGET_IMAGES: "ghcr.io/hasan-dev/*, registry.example/hasan:1",
  });
  assert.deepEqual(c.allowedTargetImages, ["ghcr.io/hasan-dev/*", "registry.example/hasan:1"]);
});

test("an allowedTargetImages entry with * inside or an empty entry is refused", () => {
  assert.throws(
    () => parseOperatorArgs(["--allowed-target-images", "ghcr.io/*/hasan"], {}),
    /--allowed-target-images: each must be an image or a prefix ending in \*/,
  );
  assert.throws(() => parseOperatorArgs(["--allowed-target-images", "a,,b"], {}), /--allowed-target-images/);
});

test("network policies are on by default and admit the operator's pods only when it names them", () => {
  const off = parseOperatorArgs(["--network-policies=false"], {});
  assert.equal(networkPolicyOptions(off), undefined);
  assert.deepEqual(networkPolicyOptions(parseOperatorArgs([], {})), {});
  const on = parseOperatorArgs(
    [
      "--operator-namespace",
      "hasan-system",
      "--operator-pod-labels",
      "app.kubernetes.io/name=hasan-operator,app.kubernetes.io/instance=hasan",
    ],
    {},
  );
  assert.deepEqual(networkPolicyOptions(on), {
    operator: {
      namespace: "hasan-system",
      podLabels: { "app.kubernetes.io/name": "hasan-operator", "app.kubernetes.io/instance": "hasan" },
    },
  });
});

test("operator pod labels that are not KEY=VALUE, or without the namespace, are refused", () => {
  assert.throws(
    () => parseOperatorArgs(["--operator-namespace", "x", "--operator-pod-labels", "app"], {}),
    /--operator-pod-labels: "app" is not KEY=VALUE/,
  );
  assert.throws(
    () => parseOperatorArgs(["--operator-pod-labels", "a=b"], {}),
    /--operator-namespace: --operator-namespace and --operator-pod-labels go together/,
  );
  assert.throws(() => parseOperatorArgs(["--network-policies", "maybe"], {}), /--network-policies/);
});

test("--target-resources takes JSON requests and limits; malformed JSON or an unknown key is refused naming the flag", () => {
  const c = parseOperatorArgs(
    ["--target-resources", '{"requests":{"cpu":"250m","memory":"512Mi"},"limits":{"memory":"1Gi"}}'],
    {},
  );
  assert.deepEqual(c.targetResources, {
    requests: { cpu: "250m", memory: "512Mi" },
    limits: { memory: "1Gi" },
  });
  assert.equal(parseOperatorArgs([], {}).targetResources, undefined);
  assert.throws(
    () => parseOperatorArgs(["--target-resources", "{requests"], {}),
    /--target-resources: must be JSON/,
  );
  assert.throws(() => parseOperatorArgs(["--target-resources", '{"request":{}}'], {}), /--target-resources/);
  assert.throws(
    () => parseOperatorArgs(["--target-resources", '{"requests":{"memory":"lots"}}'], {}),
    /--target-resources/,
  );
});

test("--metrics-scrapers takes NetworkPolicyPeers as JSON and reaches the policy options; bad ones are refused naming the flag", () => {
  const peers = [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } }];
  const c = parseOperatorArgs(["--metrics-scrapers", JSON.stringify(peers)], {});
  assert.deepEqual(networkPolicyOptions(c)?.metricsScrapers, peers);
  assert.equal(networkPolicyOptions(parseOperatorArgs([], {}))?.metricsScrapers, undefined);
  assert.throws(
    () => parseOperatorArgs(["--metrics-scrapers", "[{"], {}),
    /--metrics-scrapers: must be JSON/,
  );
  assert.throws(
    () => parseOperatorArgs(["--metrics-scrapers", '[{"ipBlock":{"cidr":"10.0.0.1/8"}}]'], {}),
    /--metrics-scrapers/,
  );
});
