// The pair's NetworkPolicies, read by an evaluator of NetworkPolicy semantics: who reaches which
// port of a target pod, by default and with spec.network.iscsiFrom.
import { test } from "node:test";
import assert from "node:assert/strict";
import { desiredChildren, type KubeObject } from "../../../operator/reconcile/desired-children.js";
import { networkPolicies, type NetworkPolicyOptions } from "../../../operator/reconcile/network-policies.js";
import { nodeLabels } from "../../../operator/pair/names.js";
import { HASanTargetSpecSchema } from "../../../operator/api/spec.js";
import type { HASanTargetSpec } from "../../../operator/api/spec.js";
import {
  ingressAllowed,
  type NetworkPolicy,
  type PodEndpoint,
  type Source,
} from "../../support/network-policy-eval.js";
import { target } from "./fixtures.js";

const operatorLabels = { "app.kubernetes.io/name": "hasan-operator", "app.kubernetes.io/instance": "hasan" };
const withOperator: NetworkPolicyOptions = {
  operator: { namespace: "hasan-system", podLabels: operatorLabels },
};

const nsLabels = (ns: string, extra: Record<string, string> = {}) => ({
  "kubernetes.io/metadata.name": ns,
  ...extra,
});

function policiesFor(spec: Partial<HASanTargetSpec> = {}, o: NetworkPolicyOptions = withOperator) {
  const t = target(spec);
  return { t, policies: networkPolicies(t, o) as unknown as NetworkPolicy[] };
}

function targetPod(n: "a" | "b"): PodEndpoint {
  const t = target();
  // The labels the operator gives its target pods (desired-children.ts).
  const pod = desiredChildren(
    t,
    { serviceIPs: { a: "10.96.0.1", b: "10.96.0.2" }, bothWorking: false, chap: { username: "data" } },
    { image: "img" },
  ).find((d) => d.kind === "Pod" && d.metadata.name === `data-${n}`);
  assert.ok(pod);
  return {
    kind: "pod",
    namespace: "prod",
    namespaceLabels: nsLabels("prod"),
    labels: pod.metadata.labels ?? {},
    ip: n === "a" ? "10.244.1.10" : "10.244.2.10",
  };
}

const stranger: Source = {
  kind: "pod",
  namespace: "elsewhere",
  namespaceLabels: nsLabels("elsewhere"),
  labels: { app: "curious" },
  ip: "10.244.3.7",
};
const neighbour: Source = { ...stranger, namespace: "prod", namespaceLabels: nsLabels("prod") } as Source;
const operatorPod: Source = {
  kind: "pod",
  namespace: "hasan-system",
  namespaceLabels: nsLabels("hasan-system"),
  labels: { ...operatorLabels, "pod-template-hash": "abc" },
  ip: "10.244.3.2",
};
const kubeletOnNode: Source = { kind: "host", ip: "192.168.10.21" };

test("a random pod in another namespace is denied the peer and agent ports and allowed iSCSI by default", () => {
  const { policies } = policiesFor();
  for (const n of ["a", "b"] as const) {
    const dest = targetPod(n);
    assert.equal(ingressAllowed(policies, dest, stranger, 3261), false, `peer port of ${n}`);
    assert.equal(ingressAllowed(policies, dest, stranger, 8080), false, `agent port of ${n}`);
    assert.equal(ingressAllowed(policies, dest, stranger, 3260), true, `iSCSI port of ${n}`);
    assert.equal(ingressAllowed(policies, dest, stranger, 22), false, "any other port");
  }
});

test("a pod of the target's own namespace is denied the peer and agent ports too", () => {
  const { policies } = policiesFor();
  assert.equal(ingressAllowed(policies, targetPod("a"), neighbour, 3261), false);
  assert.equal(ingressAllowed(policies, targetPod("a"), neighbour, 8080), false);
});

test("the partner pod is allowed the peer port, each way; a pod is not its own partner", () => {
  const { policies } = policiesFor();
  assert.equal(ingressAllowed(policies, targetPod("a"), targetPod("b"), 3261), true);
  assert.equal(ingressAllowed(policies, targetPod("b"), targetPod("a"), 3261), true);
  assert.equal(ingressAllowed(policies, targetPod("a"), targetPod("a"), 3261), false);
  assert.equal(ingressAllowed(policies, targetPod("a"), targetPod("b"), 8080), false, "not the agent");
});

test("the partner of another pair in the same namespace is denied the peer port", () => {
  const { policies } = policiesFor();
  const otherPair = { ...targetPod("b"), labels: nodeLabels({ ...target().metadata, name: "other" }, "b") };
  assert.equal(ingressAllowed(policies, targetPod("a"), otherPair, 3261), false);
});

test("the operator's pods are allowed the agent port; the same labels in another namespace are not", () => {
  const { policies } = policiesFor();
  assert.equal(ingressAllowed(policies, targetPod("a"), operatorPod, 8080), true);
  assert.equal(ingressAllowed(policies, targetPod("b"), operatorPod, 8080), true);
  const impostor = { ...operatorPod, namespace: "prod", namespaceLabels: nsLabels("prod") } as Source;
  assert.equal(ingressAllowed(policies, targetPod("a"), impostor, 8080), false);
  assert.equal(ingressAllowed(policies, targetPod("a"), operatorPod, 3261), false, "not the peer port");
});

test("without the operator's identity no pod reaches the agent port", () => {
  const { policies } = policiesFor({}, {});
  assert.equal(ingressAllowed(policies, targetPod("a"), operatorPod, 8080), false);
  assert.equal(ingressAllowed(policies, targetPod("a"), stranger, 3260), true);
});

test("kubelet on the node's host network reaches iSCSI by default, and not the peer port", () => {
  const { policies } = policiesFor();
  assert.equal(ingressAllowed(policies, targetPod("a"), kubeletOnNode, 3260), true);
  assert.equal(ingressAllowed(policies, targetPod("a"), kubeletOnNode, 3261), false);
});

test("with iscsiFrom a namespace selector, a pod outside is denied iSCSI and a pod inside allowed", () => {
  const { policies } = policiesFor({
    network: {
      iscsiFrom: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "apps" } } }],
    },
  });
  const app: Source = { ...stranger, namespace: "apps", namespaceLabels: nsLabels("apps") } as Source;
  assert.equal(ingressAllowed(policies, targetPod("a"), stranger, 3260), false);
  assert.equal(ingressAllowed(policies, targetPod("a"), kubeletOnNode, 3260), false, "hosts too");
  assert.equal(ingressAllowed(policies, targetPod("a"), app, 3260), true);
  assert.equal(ingressAllowed(policies, targetPod("b"), app, 3260), true);
  assert.equal(ingressAllowed(policies, targetPod("a"), targetPod("b"), 3261), true, "peer rule unchanged");
});

test("with iscsiFrom an ipBlock of the nodes, kubelet on a node is allowed iSCSI and other hosts are not", () => {
  const { policies } = policiesFor({ network: { iscsiFrom: [{ ipBlock: { cidr: "192.168.10.0/24" } }] } });
  assert.equal(ingressAllowed(policies, targetPod("a"), kubeletOnNode, 3260), true);
  assert.equal(ingressAllowed(policies, targetPod("a"), { kind: "host", ip: "203.0.113.5" }, 3260), false);
});

test("one policy per pod, owned by the target, in its namespace, Ingress only (egress stays open)", () => {
  const { t, policies } = policiesFor();
  assert.deepEqual(
    policies.map((p) => p.metadata.name),
    ["data-a", "data-b"],
  );
  for (const p of networkPolicies(t, withOperator)) {
    assert.equal(p.metadata.namespace, "prod");
    assert.equal(p.metadata.ownerReferences?.[0]?.uid, t.metadata.uid);
    assert.deepEqual((p.spec as { policyTypes: string[] }).policyTypes, ["Ingress"]);
  }
});

test("switched off, desiredChildren has no NetworkPolicy; switched on, it has both", () => {
  const t = target();
  const o = { serviceIPs: {}, bothWorking: false };
  const kinds = (d: KubeObject[]) => d.filter((x) => x.kind === "NetworkPolicy").length;
  assert.equal(kinds(desiredChildren(t, o, { image: "img" })), 0);
  assert.equal(kinds(desiredChildren(t, o, { image: "img", networkPolicies: withOperator })), 2);
});

for (const [what, peer, message] of [
  [
    "an ipBlock next to a selector",
    { ipBlock: { cidr: "10.0.0.0/8" }, podSelector: {} },
    /ipBlock goes alone/,
  ],
  ["an empty peer", {}, /ipBlock goes alone/],
  ["a CIDR with host bits", { ipBlock: { cidr: "10.0.0.1/8" } }, /no bits set past its prefix/],
  ["a CIDR that is no address", { ipBlock: { cidr: "ten/8" } }, /must be a CIDR/],
  [
    "an except outside the cidr",
    { ipBlock: { cidr: "10.0.0.0/16", except: ["10.1.0.0/24"] } },
    /strict subset of 10\.0\.0\.0\/16/,
  ],
  [
    "In without values",
    { podSelector: { matchExpressions: [{ key: "a", operator: "In" }] } },
    /In and NotIn need values/,
  ],
  ["a label value with a space", { podSelector: { matchLabels: { app: "my app" } } }, /label value/],
] as const) {
  test(`spec.network.iscsiFrom refuses ${what}`, () => {
    const r = HASanTargetSpecSchema.safeParse({ capacity: "1Gi", network: { iscsiFrom: [peer] } });
    assert.equal(r.success, false);
    assert.match(r.error.issues.map((i) => i.message).join("; "), message);
  });
}

test("spec.network.iscsiFrom accepts selectors together, IPv6 blocks and excepts inside the cidr", () => {
  const r = HASanTargetSpecSchema.safeParse({
    capacity: "1Gi",
    network: {
      iscsiFrom: [
        {
          namespaceSelector: { matchExpressions: [{ key: "team", operator: "Exists" }] },
          podSelector: { matchLabels: { "example.com/role": "db" } },
        },
        { ipBlock: { cidr: "2001:db8::/48", except: ["2001:db8:0:1::/64"] } },
        { ipBlock: { cidr: "192.168.0.0/16", except: ["192.168.7.0/24"] } },
      ],
    },
  });
  assert.equal(r.success, true, JSON.stringify(r.error?.issues));
});

test("with metrics scrapers, Prometheus reaches the agent port (for /metrics) and nobody else more", () => {
  const prometheus: Source = {
    kind: "pod",
    namespace: "monitoring",
    namespaceLabels: nsLabels("monitoring"),
    labels: { "app.kubernetes.io/name": "prometheus" },
    ip: "10.244.3.9",
  };
  const scrapers = [
    {
      namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } },
      podSelector: { matchLabels: { "app.kubernetes.io/name": "prometheus" } },
    },
  ];
  const without = policiesFor().policies;
  const { policies } = policiesFor({}, { ...withOperator, metricsScrapers: scrapers });
  for (const n of ["a", "b"] as const) {
    const dest = targetPod(n);
    assert.equal(ingressAllowed(without, dest, prometheus, 8080), false, "no scrapers: denied");
    assert.equal(ingressAllowed(policies, dest, prometheus, 8080), true, `agent port of ${n}`);
    assert.equal(ingressAllowed(policies, dest, prometheus, 3261), false, "not the peer port");
    assert.equal(ingressAllowed(policies, dest, stranger, 8080), false, "other pods still denied");
    assert.equal(ingressAllowed(policies, dest, operatorPod, 8080), true, "the operator still allowed");
  }
});
