import assert from "node:assert/strict";
import { test } from "node:test";
import {
  observePair,
  readPairChildren,
  type PairChildSource,
  type PodView,
  type ServiceView,
} from "../../../operator/status/observe.js";

const meta = { name: "t1", namespace: "ns", uid: "u1" };

function pod(name: string, phase: string, podIP?: string): PodView {
  return {
    metadata: { name, namespace: "ns" },
    status: { phase, ...(podIP ? { podIP } : {}), conditions: [{ type: "Ready", status: "True" }] },
  };
}
function service(name: string, clusterIP: string): ServiceView {
  return { metadata: { name, namespace: "ns" }, spec: { clusterIP } };
}

test("a pair is read by child name from a cache or from the API server alike; a headless Service gives no portal", async () => {
  const pods = new Map([["ns/t1-a", pod("t1-a", "Running", "10.0.0.5")]]);
  const services = new Map([
    ["ns/t1-a", service("t1-a", "10.96.0.10")],
    ["ns/t1-b", service("t1-b", "None")],
  ]);
  const cache: PairChildSource = {
    pod: (ns, name) => pods.get(`${ns}/${name}`),
    service: (ns, name) => services.get(`${ns}/${name}`),
  };
  const server: PairChildSource = {
    pod: (ns, name) => Promise.resolve(pods.get(`${ns}/${name}`)),
    service: (ns, name) => Promise.resolve(services.get(`${ns}/${name}`)),
  };
  for (const source of [cache, server]) {
    const children = await readPairChildren(source, meta);
    assert.deepEqual(children.serviceIPs, { a: "10.96.0.10" });
    assert.deepEqual(Object.keys(children.pods), ["a"]);
  }
});

test("only a running pod with an IP is asked for its status, at the address mode's URL", async () => {
  const children = {
    pods: { a: pod("t1-a", "Running", "10.0.0.5"), b: pod("t1-b", "Pending") },
    serviceIPs: { a: "10.96.0.10", b: "10.96.0.11" },
  };
  const asked: string[] = [];
  const nodes = await observePair(children, "service", (url) => {
    asked.push(url);
    return Promise.resolve({ ok: false, error: "connection refused" });
  });
  assert.deepEqual(asked, ["http://10.96.0.10:8080"]);
  assert.equal(nodes[0].name, "a");
  assert.equal(nodes[0].agentError, "connection refused");
  assert.equal(nodes[0].portal, "10.96.0.10:3260");
  assert.equal(nodes[1].agentError, undefined);
  assert.equal(nodes[1].pod?.phase, "Pending");

  asked.length = 0;
  await observePair(children, "pod", (url) => {
    asked.push(url);
    return Promise.resolve({ ok: false, error: "x" });
  });
  assert.deepEqual(asked, ["http://10.0.0.5:8080"]);
});
