// The chart's RBAC rendered with `helm template`: with operator.watchNamespace every namespaced
// permission is a Role in that namespace (plus one for the leader-election Lease in the release
// namespace), and the ClusterRole keeps only cluster-scoped PersistentVolumes; without it one
// ClusterRole grants everything. Either way the grants cover every child the operator declares.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { parseOperatorArgs } from "../../../operator/config.js";
import { resourceInfo } from "../../../operator/kit/resources.js";
import { desiredChildren } from "../../../operator/reconcile/desired-children.js";
import { generatedPeerSecret } from "../../../operator/reconcile/peer-secret.js";
import { target } from "../operator/fixtures.js";
import { CHART_NAMESPACE, renderChart } from "../../support/chart-render.js";

const releaseNs = CHART_NAMESPACE;

const Rule = z.object({
  apiGroups: z.array(z.string()),
  resources: z.array(z.string()),
  verbs: z.array(z.string()),
  resourceNames: z.array(z.string()).optional(),
});
const Rbac = z.object({
  kind: z.string(),
  metadata: z.object({ name: z.string(), namespace: z.string().optional() }),
  rules: z.array(Rule).optional(),
  roleRef: z.object({ kind: z.string(), name: z.string() }).optional(),
  subjects: z.array(z.object({ kind: z.string(), name: z.string(), namespace: z.string() })).optional(),
});
type Rbac = z.infer<typeof Rbac>;

/** The operator's RBAC objects (the CSI controller's, hasan-csi-controller*, are chart-csi.test.ts's). */
function render(set: string[] = []): Rbac[] {
  return renderChart(set)
    .filter((d): d is { kind: string } => !!d && typeof d === "object" && "kind" in d)
    .filter((d) => ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"].includes(d.kind))
    .map((d) => Rbac.parse(d))
    .filter((d) => d.metadata.name.startsWith("hasan-operator"));
}

/** "group/plural" of every resource a rule set grants verb on (without a resourceNames limit). */
function grants(rules: readonly z.infer<typeof Rule>[], verb: string): Set<string> {
  const out = new Set<string>();
  for (const r of rules)
    if (r.verbs.includes(verb) && !r.resourceNames)
      for (const g of r.apiGroups) for (const res of r.resources) out.add(`${g}/${res}`);
  return out;
}

/** Every kind the operator applies, prunes or deletes, as "group/plural", namespaced or not. */
function childResources(): { namespaced: string[]; cluster: string[] } {
  const t = target({ auth: { chapSecretRef: { name: "chap" } }, export: { persistentVolume: {} } });
  const children = [
    ...desiredChildren(
      t,
      { serviceIPs: { a: "10.0.0.1", b: "10.0.0.2" }, chap: { username: "u" }, bothWorking: true },
      { image: "img", networkPolicies: { operator: { namespace: releaseNs, podLabels: { a: "b" } } } },
    ),
    generatedPeerSecret(t, "c2VjcmV0"),
  ];
  const namespaced = new Set<string>();
  const cluster = new Set<string>();
  for (const c of children) {
    const info = resourceInfo(c.apiVersion, c.kind);
    const group = c.apiVersion.includes("/") ? c.apiVersion.split("/")[0]! : "";
    (info.namespaced ? namespaced : cluster).add(`${group}/${info.plural}`);
  }
  return { namespaced: [...namespaced], cluster: [...cluster] };
}

const namespacedVerbs = ["create", "patch", "get", "list", "delete"];
const watched = [
  "hasan.dev/hasantargets",
  "/pods",
  "/services",
  "/persistentvolumeclaims",
  "coordination.k8s.io/leases",
];
const operatorExtras: [string, string][] = [
  ["hasan.dev/hasantargets/status", "patch"],
  ["hasan.dev/hasantargets", "patch"],
  ["/events", "create"],
];

describe("chart RBAC", () => {
  it("without watchNamespace: one ClusterRole grants every child the operator declares, and no Role", () => {
    const objs = render();
    assert.deepEqual(objs.map((o) => o.kind).sort(), ["ClusterRole", "ClusterRoleBinding"]);
    const rules = objs.find((o) => o.kind === "ClusterRole")?.rules ?? [];
    const { namespaced, cluster } = childResources();
    assert.ok(namespaced.includes("networking.k8s.io/networkpolicies"), namespaced.join(" "));
    for (const r of [...namespaced, ...cluster])
      for (const v of namespacedVerbs) assert.ok(grants(rules, v).has(r), `${v} ${r}`);
    for (const r of watched) assert.ok(grants(rules, "watch").has(r), `watch ${r}`);
    for (const [r, v] of operatorExtras) assert.ok(grants(rules, v).has(r), `${v} ${r}`);
  });

  describe("with watchNamespace", () => {
    const objs = render(["operator.watchNamespace=san"]);
    const byKind = (kind: string) => objs.filter((o) => o.kind === kind);

    it("no ClusterRole grants a namespaced resource; it grants PersistentVolumes only", () => {
      const [cr, ...more] = byKind("ClusterRole");
      assert.ok(cr);
      assert.equal(more.length, 0);
      const { namespaced, cluster } = childResources();
      assert.deepEqual(cluster, ["/persistentvolumes"]);
      for (const rule of cr.rules ?? []) {
        for (const g of rule.apiGroups)
          for (const res of rule.resources) {
            const base = res.split("/")[0]!;
            const info = resourceOfGrant(g, base);
            assert.equal(info, "cluster", `ClusterRole grants ${rule.verbs.join(",")} on ${g}/${res}`);
          }
      }
      for (const v of namespacedVerbs) assert.ok(grants(cr.rules ?? [], v).has("/persistentvolumes"), v);
      assert.ok(namespaced.length >= 9);
    });

    it("a Role in the watched namespace grants every namespaced child, the informers' watches and the status", () => {
      const role = byKind("Role").find((r) => r.metadata.namespace === "san");
      assert.ok(role, "Role in san");
      const rules = role.rules ?? [];
      for (const r of childResources().namespaced)
        for (const v of namespacedVerbs) assert.ok(grants(rules, v).has(r), `${v} ${r}`);
      for (const r of watched) assert.ok(grants(rules, "watch").has(r), `watch ${r}`);
      for (const [r, v] of operatorExtras) assert.ok(grants(rules, v).has(r), `${v} ${r}`);
      const binding = byKind("RoleBinding").find((b) => b.metadata.namespace === "san");
      assert.deepEqual(binding?.roleRef, { kind: "Role", name: role.metadata.name });
      assert.deepEqual(binding?.subjects, [
        { kind: "ServiceAccount", name: "hasan-operator", namespace: releaseNs },
      ]);
    });

    it("the leader-election Lease is granted by name in the release namespace, and nothing else there", () => {
      const role = byKind("Role").find((r) => r.metadata.namespace === releaseNs);
      assert.ok(role, "Role in the release namespace");
      for (const r of role.rules ?? []) {
        assert.deepEqual(r.resources, ["leases"]);
        if (!r.verbs.includes("create")) assert.deepEqual(r.resourceNames, ["hasan-operator"]);
      }
      assert.ok(byKind("RoleBinding").some((b) => b.metadata.namespace === releaseNs));
    });

    it("without leader election, or watching the release namespace itself, no leader-election Role", () => {
      for (const set of [
        ["operator.watchNamespace=san", "operator.leaderElection.enabled=false"],
        [`operator.watchNamespace=${releaseNs}`],
      ]) {
        const roles = render(set).filter((o) => o.kind === "Role");
        assert.equal(roles.length, 1, set.join(" "));
      }
    });
  });
});

/** Whether a granted group/resource is cluster-scoped, from the operator's own resource table. */
function resourceOfGrant(group: string, plural: string): "cluster" | "namespaced" {
  const known: Record<string, boolean> = {
    "/persistentvolumes": false,
    "/nodes": false,
    "/namespaces": false,
    "apiextensions.k8s.io/customresourcedefinitions": false,
    "admissionregistration.k8s.io/validatingwebhookconfigurations": false,
  };
  const key = `${group}/${plural}`;
  return key in known ? "cluster" : "namespaced";
}

it("operator.targetResources reaches the operator as a --target-resources flag it parses to the same requests and limits", () => {
  const docs = renderChart([
    "operator.targetResources.requests.memory=512Mi",
    "operator.targetResources.limits.memory=1Gi",
  ]);
  const deployment = (docs as ({ kind?: string; metadata?: { name?: string } } | null)[]).find(
    (d) => d?.kind === "Deployment" && d.metadata?.name === "hasan-operator",
  );
  const args = z
    .object({
      spec: z.object({
        template: z.object({
          spec: z.object({ containers: z.array(z.object({ args: z.array(z.string()) })) }),
        }),
      }),
    })
    .parse(deployment).spec.template.spec.containers[0]!.args;
  const flag = args.find((a) => a.startsWith("--target-resources="));
  assert.ok(flag, `no --target-resources in ${args.join(" ")}`);
  const c = parseOperatorArgs([flag], {});
  assert.deepEqual(c.targetResources, {
    requests: { cpu: "100m", memory: "512Mi" },
    limits: { memory: "1Gi" },
  });
});

describe("namespace users and extra objects", () => {
  it("adds HASanTargets to the built-in view, edit and admin roles (aggregation), switchable", () => {
    const roles = renderChart([])
      .map((o) => Rbac.parse(o))
      .filter((o) => o.kind === "ClusterRole" && o.metadata.name.includes("hasantargets"));
    const byName = Object.fromEntries(roles.map((r) => [r.metadata.name, r]));
    const view = byName["hasan-hasantargets-view"];
    const edit = byName["hasan-hasantargets-edit"];
    assert.ok(view && edit);
    assert.deepEqual(view.rules?.[0]?.verbs, ["get", "list", "watch"]);
    assert.ok(edit.rules?.[0]?.verbs.includes("delete"));
    const labels = renderChart([]).filter(
      (o) => (o as { metadata?: { name?: string } }).metadata?.name === "hasan-hasantargets-edit",
    ) as { metadata: { labels: Record<string, string> } }[];
    assert.equal(labels[0]?.metadata.labels["rbac.authorization.k8s.io/aggregate-to-edit"], "true");
    assert.equal(labels[0]?.metadata.labels["rbac.authorization.k8s.io/aggregate-to-admin"], "true");
    const off = renderChart(["rbac.aggregateToDefaultRoles=false"]).filter((o) =>
      JSON.stringify(o).includes("hasantargets-view"),
    );
    assert.equal(off.length, 0);
  });

  it("renders extraObjects through tpl", () => {
    const objs = renderChart([
      "extraObjects[0].apiVersion=v1",
      "extraObjects[0].kind=ConfigMap",
      "extraObjects[0].metadata.name=extra-{{ .Release.Name }}",
    ]) as { kind: string; metadata: { name: string } }[];
    assert.ok(objs.some((o) => o.kind === "ConfigMap" && o.metadata.name === "extra-hasan"));
  });
});
