// The NetworkPolicy evaluator used by the policy tests decides by the API's semantics; these cases
// pin them, so a wrong evaluator cannot make a wrong policy look right.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ingressAllowed,
  selects,
  type NetworkPolicy,
  type PodEndpoint,
} from "../../support/network-policy-eval.js";

const dest: PodEndpoint = {
  kind: "pod",
  namespace: "san",
  namespaceLabels: { "kubernetes.io/metadata.name": "san" },
  labels: { app: "db" },
  ip: "10.1.0.5",
  ports: { iscsi: 3260 },
};
const pod = (namespace: string, labels: Record<string, string>, ip = "10.1.9.9"): PodEndpoint => ({
  kind: "pod",
  namespace,
  namespaceLabels: { "kubernetes.io/metadata.name": namespace, team: namespace === "apps" ? "a" : "x" },
  labels,
  ip,
});
const policy = (spec: NetworkPolicy["spec"], namespace = "san"): NetworkPolicy => ({
  metadata: { name: "p", namespace },
  spec,
});

test("a pod no policy selects admits everything; a selected pod with no rules admits nothing", () => {
  const other = policy({ podSelector: { matchLabels: { app: "web" } }, ingress: [] });
  assert.equal(ingressAllowed([other], dest, pod("x", {}), 80), true);
  const deny = policy({ podSelector: {}, policyTypes: ["Ingress"] });
  assert.equal(ingressAllowed([deny], dest, pod("x", {}), 80), false);
  assert.equal(ingressAllowed([deny], dest, { kind: "host", ip: "192.0.2.1" }, 80), false);
});

test("a policy in another namespace or of type Egress only does not select the pod", () => {
  const elsewhere = policy({ podSelector: {}, ingress: [] }, "other");
  const egress = policy({ podSelector: {}, policyTypes: ["Egress"], egress: [] });
  assert.equal(ingressAllowed([elsewhere, egress], dest, pod("x", {}), 80), true);
});

test("podSelector alone means pods of the policy's namespace; namespaceSelector alone any pod there; both AND", () => {
  const onlyPod = policy({
    podSelector: {},
    ingress: [{ from: [{ podSelector: { matchLabels: { r: "c" } } }] }],
  });
  assert.equal(ingressAllowed([onlyPod], dest, pod("san", { r: "c" }), 1), true);
  assert.equal(ingressAllowed([onlyPod], dest, pod("apps", { r: "c" }), 1), false, "other namespace");
  const onlyNs = policy({
    podSelector: {},
    ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "a" } } }] }],
  });
  assert.equal(ingressAllowed([onlyNs], dest, pod("apps", {}), 1), true);
  assert.equal(ingressAllowed([onlyNs], dest, pod("san", {}), 1), false);
  const both = policy({
    podSelector: {},
    ingress: [
      {
        from: [
          { namespaceSelector: { matchLabels: { team: "a" } }, podSelector: { matchLabels: { r: "c" } } },
        ],
      },
    ],
  });
  assert.equal(ingressAllowed([both], dest, pod("apps", { r: "c" }), 1), true);
  assert.equal(ingressAllowed([both], dest, pod("apps", { r: "d" }), 1), false);
  assert.equal(ingressAllowed([both], dest, pod("san", { r: "c" }), 1), false);
  assert.equal(
    ingressAllowed([both], dest, { kind: "host", ip: "10.1.9.9" }, 1),
    false,
    "hosts match no selector",
  );
});

test("ports: numbered, named, ranges and protocols; a rule without ports or from matches all", () => {
  const p = policy({
    podSelector: {},
    ingress: [{ ports: [{ port: "iscsi" }, { port: 9000, endPort: 9010 }, { protocol: "UDP", port: 53 }] }],
  });
  const src = pod("x", {});
  assert.equal(ingressAllowed([p], dest, src, 3260), true);
  assert.equal(ingressAllowed([p], dest, src, 9005), true);
  assert.equal(ingressAllowed([p], dest, src, 9011), false);
  assert.equal(ingressAllowed([p], dest, src, 53), false, "TCP 53 is not UDP 53");
  assert.equal(ingressAllowed([p], dest, src, 53, "UDP"), true);
  const open = policy({ podSelector: {}, ingress: [{}] });
  assert.equal(ingressAllowed([open], dest, { kind: "host", ip: "192.0.2.1" }, 1234), true);
});

test("ipBlock matches addresses inside cidr and outside except, IPv4 and IPv6", () => {
  const p = policy({
    podSelector: {},
    ingress: [
      {
        from: [
          { ipBlock: { cidr: "192.0.2.0/24", except: ["192.0.2.128/25"] } },
          { ipBlock: { cidr: "2001:db8::/32" } },
        ],
      },
    ],
  });
  assert.equal(ingressAllowed([p], dest, { kind: "host", ip: "192.0.2.7" }, 1), true);
  assert.equal(ingressAllowed([p], dest, { kind: "host", ip: "192.0.2.200" }, 1), false);
  assert.equal(ingressAllowed([p], dest, { kind: "host", ip: "198.51.100.1" }, 1), false);
  assert.equal(ingressAllowed([p], dest, { kind: "host", ip: "2001:db8::1" }, 1), true);
});

test("label selectors: matchLabels and every matchExpressions operator; an empty selector selects all", () => {
  const labels = { a: "1", b: "2" };
  assert.equal(selects({}, labels), true);
  assert.equal(selects({ matchLabels: { a: "1" } }, labels), true);
  assert.equal(selects({ matchLabels: { a: "2" } }, labels), false);
  assert.equal(
    selects({ matchExpressions: [{ key: "a", operator: "In", values: ["1", "3"] }] }, labels),
    true,
  );
  assert.equal(
    selects({ matchExpressions: [{ key: "a", operator: "NotIn", values: ["1"] }] }, labels),
    false,
  );
  assert.equal(selects({ matchExpressions: [{ key: "c", operator: "NotIn", values: ["1"] }] }, labels), true);
  assert.equal(selects({ matchExpressions: [{ key: "b", operator: "Exists" }] }, labels), true);
  assert.equal(selects({ matchExpressions: [{ key: "b", operator: "DoesNotExist" }] }, labels), false);
});
