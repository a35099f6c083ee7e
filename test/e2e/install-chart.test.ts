// The Helm chart and the plain manifests against the local cluster's API server: lint, a server-side
// dry run of everything the chart renders, RBAC that covers exactly what the operator does, the
// webhook's generated certificate, the options users switch, and schema-checked values.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { ensureCluster, run, type Cluster } from "../support/cluster.js";
import { PLAIN_MANIFESTS, plainManifestsText } from "../../hack/gen-manifests.js";
import { desiredChildren } from "../../operator/reconcile/desired-children.js";
import { generatedPeerSecret } from "../../operator/reconcile/peer-secret.js";
import { resourceInfo } from "../../operator/kit/resources.js";
import type { HASanTarget } from "../../operator/api/target.js";
import { chartDir, repoRoot } from "./install-support.js";

const ns = `chart-e2e-${randomBytes(3).toString("hex")}`;
const release = "hasan";

const Obj = z
  .object({
    apiVersion: z.string(),
    kind: z.string(),
    metadata: z.object({
      name: z.string(),
      annotations: z.record(z.string(), z.string()).optional(),
    }),
  })
  .passthrough();
type Obj = z.infer<typeof Obj>;

const Rule = z.object({
  apiGroups: z.array(z.string()),
  resources: z.array(z.string()),
  verbs: z.array(z.string()),
  resourceNames: z.array(z.string()).optional(),
});
const ClusterRole = z.object({ rules: z.array(Rule) });

const Deployment = z.object({
  spec: z.object({
    replicas: z.int(),
    template: z.object({
      metadata: z.object({ annotations: z.record(z.string(), z.string()).optional() }),
      spec: z.object({
        serviceAccountName: z.string(),
        securityContext: z.object({ runAsNonRoot: z.boolean().optional() }).passthrough(),
        containers: z.array(
          z.object({
            image: z.string(),
            command: z.array(z.string()),
            args: z.array(z.string()),
            securityContext: z.object({
              readOnlyRootFilesystem: z.boolean(),
              allowPrivilegeEscalation: z.boolean(),
              capabilities: z.object({ drop: z.array(z.string()) }),
            }),
          }),
        ),
      }),
    }),
  }),
});

const Webhook = z.object({
  webhooks: z.array(
    z.object({
      failurePolicy: z.string(),
      clientConfig: z.object({
        caBundle: z.string(),
        service: z.object({ name: z.string(), namespace: z.string(), path: z.string(), port: z.int() }),
      }),
      rules: z.array(z.object({ operations: z.array(z.string()), resources: z.array(z.string()) })),
      namespaceSelector: z.object({
        matchExpressions: z.array(
          z.object({ key: z.string(), operator: z.string(), values: z.array(z.string()) }),
        ),
      }),
    }),
  ),
});

describe("Helm chart", () => {
  let c: Cluster;
  let helmBin: string;
  const helm = async (args: string[]) => {
    const r = await c.helm(args);
    if (r.code !== 0) throw new Error(`helm ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  const template = (set: string[] = [], showOnly?: string) =>
    helm([
      "template",
      release,
      chartDir,
      "--namespace",
      ns,
      "--kube-version",
      c.kubernetesVersion,
      ...set.flatMap((s) => ["--set", s]),
      ...(showOnly ? ["--show-only", showOnly] : []),
    ]);

  before(async () => {
    c = await ensureCluster();
    const paths = await run(path.join(repoRoot, "hack/cluster/paths.sh"), []);
    helmBin = z.object({ helm: z.string() }).parse(JSON.parse(paths.stdout)).helm;
    await c.kubectlOk(["create", "namespace", ns]);
  });

  after(async () => {
    await c?.kubectl(["delete", "namespace", ns, "--ignore-not-found", "--wait=false"]);
  });

  it("lints clean with the defaults and with every optional part on", async () => {
    for (const set of [[], ["webhook.certManager.enabled=true", "metrics.serviceMonitor.enabled=true"]]) {
      const out = await helm(["lint", "--strict", chartDir, ...set.flatMap((s) => ["--set", s])]);
      assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      assert.doesNotMatch(out, /\[(WARNING|ERROR)\]/);
    }
  });

  it("charts/manifests/hasan.yaml is the chart rendered now (run make manifests-plain when this fails)", async () => {
    assert.equal(
      readFileSync(path.join(repoRoot, PLAIN_MANIFESTS), "utf8"),
      await plainManifestsText(helmBin),
    );
  });

  it("the plain manifests pass a server-side dry run", async () => {
    // A server-side dry run creates nothing, so the file's own Namespace does not exist for the
    // objects after it: create it for the check (empty; later installs reuse it).
    if ((await c.kubectl(["get", "namespace", "hasan-system"])).code !== 0)
      await c.kubectlOk(["create", "namespace", "hasan-system"]);
    const r = await c.kubectl(["apply", "--dry-run=server", "-f", path.join(repoRoot, PLAIN_MANIFESTS)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /deployment\.apps\/hasan-operator (created|configured|unchanged) \(server dry run\)/,
    );
  });

  describe("rendered with the defaults, dry-run on the server", () => {
    let objects: Obj[];
    // The operator's objects are named after it; the CSI driver's have their own names.
    const find = (kind: string, name = "hasan-operator") => {
      const o = objects.find((x) => x.kind === kind && (x.metadata.name === name || kind === "Secret"));
      assert.ok(o, `renders a ${kind} ${name}`);
      return o;
    };

    before(async () => {
      const rendered = await template();
      const r = await c.kubectl(["apply", "--dry-run=server", "-o", "json", "-f", "-"], { input: rendered });
      assert.equal(r.code, 0, r.stderr);
      objects = z.object({ items: z.array(Obj) }).parse(JSON.parse(r.stdout)).items;
    });

    it("renders the CRD kept on uninstall, the operator, RBAC, the webhook and its certificate, the PDB, metrics and the CSI driver", () => {
      const kinds = objects.map((o) => `${o.kind} ${o.metadata.name}`).sort();
      assert.deepEqual(kinds, [
        "CSIDriver iscsi.hasan.dev",
        "ClusterRole hasan-csi-controller",
        "ClusterRole hasan-hasantargets-edit",
        "ClusterRole hasan-hasantargets-view",
        "ClusterRole hasan-operator",
        "ClusterRoleBinding hasan-csi-controller",
        "ClusterRoleBinding hasan-operator",
        "CustomResourceDefinition hasantargets.hasan.dev",
        "DaemonSet hasan-csi-node",
        "Deployment hasan-csi-controller",
        "Deployment hasan-operator",
        "PodDisruptionBudget hasan-operator",
        "Role hasan-csi-controller",
        "RoleBinding hasan-csi-controller",
        "Secret hasan-webhook-tls",
        "Service hasan-metrics",
        "Service hasan-webhook",
        "ServiceAccount hasan-csi-controller",
        "ServiceAccount hasan-csi-node",
        "ServiceAccount hasan-operator",
        "StorageClass hasan",
        "ValidatingWebhookConfiguration hasan-pod-eviction",
      ]);
      assert.equal(
        find("CustomResourceDefinition", "hasantargets.hasan.dev").metadata.annotations?.[
          "helm.sh/resource-policy"
        ],
        "keep",
      );
    });

    it("runs two operator replicas with leader election, locked down", () => {
      const d = Deployment.parse(find("Deployment"));
      assert.equal(d.spec.replicas, 2);
      const pod = d.spec.template.spec;
      assert.equal(pod.securityContext.runAsNonRoot, true);
      const [ctr] = pod.containers;
      assert.ok(ctr);
      assert.equal(ctr.image, "ghcr.io/hasan-dev/hasan:0.1.0");
      assert.deepEqual(ctr.command, ["node", "/app/dist/operator/main.js"]);
      for (const a of [
        "--leader-elect",
        `--leader-election-namespace=${ns}`,
        "--leader-election-id=hasan-operator",
        "--target-image=ghcr.io/hasan-dev/hasan:0.1.0",
        "--webhook-addr=0.0.0.0:9443",
        "--webhook-cert=/etc/hasan/webhook/tls.crt",
      ])
        assert.ok(ctr.args.includes(a), `${a} in ${ctr.args.join(" ")}`);
      assert.ok(!ctr.args.some((a) => a.startsWith("--namespace")), "watches all namespaces by default");
      assert.equal(ctr.securityContext.readOnlyRootFilesystem, true);
      assert.equal(ctr.securityContext.allowPrivilegeEscalation, false);
      assert.deepEqual(ctr.securityContext.capabilities.drop, ["ALL"]);
    });

    it("registers the eviction webhook with the CA that signed the operator's serving certificate", () => {
      const wh = Webhook.parse(find("ValidatingWebhookConfiguration", "hasan-pod-eviction")).webhooks[0];
      assert.ok(wh);
      assert.deepEqual(wh.rules[0]?.resources, ["pods/eviction"]);
      assert.deepEqual(wh.rules[0]?.operations, ["CREATE"]);
      assert.equal(wh.failurePolicy, "Ignore");
      assert.deepEqual(wh.clientConfig.service, {
        name: "hasan-webhook",
        namespace: ns,
        path: "/validate-eviction",
        port: 443,
      });
      assert.deepEqual(wh.namespaceSelector.matchExpressions[0]?.values, ["kube-system", "kube-node-lease"]);
      const secret = z
        .object({ data: z.object({ "ca.crt": z.string(), "tls.crt": z.string(), "tls.key": z.string() }) })
        .parse(find("Secret"));
      assert.equal(wh.clientConfig.caBundle, secret.data["ca.crt"]);
      const ca = new X509Certificate(Buffer.from(secret.data["ca.crt"], "base64"));
      const cert = new X509Certificate(Buffer.from(secret.data["tls.crt"], "base64"));
      assert.ok(cert.verify(ca.publicKey), "serving certificate signed by the CA in the caBundle");
      assert.equal(cert.checkHost(`hasan-webhook.${ns}.svc`), `hasan-webhook.${ns}.svc`);
      const checksum = Deployment.parse(find("Deployment")).spec.template.metadata.annotations?.[
        "checksum/webhook-ca"
      ];
      assert.match(checksum ?? "", /^[0-9a-f]{16}$/, "pods roll when the CA changes");
    });

    it("grants the operator what it does to a pair's children, and nothing broader", () => {
      const rules = ClusterRole.parse(find("ClusterRole")).rules;
      const allows = (group: string, resource: string, verb: string) =>
        rules.some(
          (r) =>
            r.apiGroups.includes(group) &&
            r.resources.includes(resource) &&
            r.verbs.includes(verb) &&
            !r.resourceNames,
        );
      const target: HASanTarget = {
        apiVersion: "hasan.dev/v1alpha1",
        kind: "HASanTarget",
        metadata: { name: "t", namespace: "x", uid: "00000000-0000-0000-0000-000000000001" },
        spec: {
          capacity: "1Gi",
          auth: { chapSecretRef: { name: "chap" } },
          export: { persistentVolume: {} },
        },
      };
      const children = [
        ...desiredChildren(
          target,
          { serviceIPs: { a: "10.0.0.1", b: "10.0.0.2" }, chap: { username: "u" }, bothWorking: true },
          { image: "img", networkPolicies: { operator: { namespace: ns, podLabels: { a: "b" } } } },
        ),
        generatedPeerSecret(target, "c2VjcmV0"),
      ];
      const kinds = new Set(children.map((o) => `${o.apiVersion}/${o.kind}`));
      assert.ok(kinds.size >= 10, [...kinds].join(" "));
      for (const k of kinds) {
        const apiVersion = k.slice(0, k.lastIndexOf("/"));
        const group = apiVersion.includes("/") ? apiVersion.split("/")[0]! : "";
        const plural = resourceInfo(apiVersion, k.slice(k.lastIndexOf("/") + 1)).plural;
        // Server-side apply creates or patches; prune and cleanup list and delete.
        for (const verb of ["create", "patch", "get", "list", "delete"])
          assert.ok(allows(group, plural, verb), `${verb} ${plural}.${group}`);
      }
      for (const [group, resource] of [
        ["hasan.dev", "hasantargets"],
        ["", "pods"],
        ["", "services"],
        ["", "persistentvolumeclaims"],
        ["coordination.k8s.io", "leases"],
      ] as const)
        assert.ok(allows(group, resource, "watch"), `watch ${resource} (informer)`);
      assert.ok(allows("hasan.dev", "hasantargets/status", "patch"));
      assert.ok(allows("hasan.dev", "hasantargets", "patch"), "finalizer");
      assert.ok(allows("", "events", "create"));
      // The pair's Role is granted by holding its Lease permissions, not by escalate or bind.
      assert.ok(allows("coordination.k8s.io", "leases", "update"));
      for (const r of rules) {
        assert.ok(
          !r.verbs.includes("*") && !r.resources.includes("*") && !r.apiGroups.includes("*"),
          JSON.stringify(r),
        );
        for (const v of ["escalate", "bind", "impersonate"])
          assert.ok(!r.verbs.includes(v), JSON.stringify(r));
        assert.ok(!r.resources.includes("secrets") || !r.verbs.includes("watch"), "no watch on every Secret");
      }
    });
  });

  it("leaves the CRD out, or lets uninstall remove it, when asked", async () => {
    assert.equal((await template(["crds.enabled=false"])).includes("kind: CustomResourceDefinition"), false);
    const unkept = await template(["crds.keep=false"], "templates/crd.yaml");
    assert.match(unkept, /kind: CustomResourceDefinition/);
    assert.doesNotMatch(unkept, /resource-policy/);
  });

  it("scopes the operator and the webhook to one namespace", async () => {
    const out = await template(["operator.watchNamespace=san"]);
    assert.match(out, /- --namespace=san\n/);
    assert.match(out, /operator: In\n\s+values: \["san"\]/);
  });

  it("with watchNamespace, grants namespaced permissions by a Role there and passes a server-side dry run", async () => {
    // The release namespace is ns; the watched one must exist for the dry run.
    const rendered = await template(["operator.watchNamespace=default", "crds.enabled=false"]);
    const r = await c.kubectl(["apply", "--dry-run=server", "-o", "json", "-f", "-"], { input: rendered });
    assert.equal(r.code, 0, r.stderr);
    const objects = z.object({ items: z.array(Obj) }).parse(JSON.parse(r.stdout)).items;
    const roles = objects.filter((o) => o.kind === "Role");
    assert.deepEqual(roles.map((r) => r.metadata.name).sort(), [
      "hasan-csi-controller", // the CSI sidecars' leader-election Leases
      "hasan-csi-controller-targets", // the CSI controller's HASanTargets in the watched namespace
      "hasan-operator", // the watched namespace
      "hasan-operator-leader-election",
    ]);
    const cluster = objects
      .filter((o) => o.kind === "ClusterRole" && o.metadata.name === "hasan-operator")
      .map((o) => ClusterRole.parse(o).rules);
    assert.deepEqual(
      cluster.flat().map((rule) => rule.resources),
      [["persistentvolumes"]],
    );
  });

  it("lets cert-manager issue the certificate and inject the CA", async () => {
    const out = await template(["webhook.certManager.enabled=true"], "templates/webhook.yaml");
    assert.match(out, /kind: Certificate\n/);
    assert.match(out, /kind: Issuer\n[\s\S]*selfSigned: \{\}/);
    assert.match(out, new RegExp(`cert-manager.io/inject-ca-from: ${ns}/hasan-webhook-tls`));
    assert.doesNotMatch(out, /caBundle|kind: Secret/);
    const issuer = await template(
      [
        "webhook.certManager.enabled=true",
        "webhook.certManager.issuerRef.name=corp",
        "webhook.certManager.issuerRef.kind=ClusterIssuer",
      ],
      "templates/webhook.yaml",
    );
    assert.match(issuer, /issuerRef:\n\s+kind: ClusterIssuer\n\s+name: corp/);
    assert.doesNotMatch(issuer, /kind: Issuer\n/);
  });

  it("drops the webhook entirely when disabled", async () => {
    const out = await template(["webhook.enabled=false"]);
    assert.doesNotMatch(out, /ValidatingWebhookConfiguration|--webhook-addr|webhook-tls/);
  });

  it("renders a ServiceMonitor only when asked", async () => {
    assert.doesNotMatch(await template(), /ServiceMonitor/);
    assert.match(await template(["metrics.serviceMonitor.enabled=true"]), /kind: ServiceMonitor/);
  });

  it("refuses values the schema does not allow before rendering anything", async () => {
    for (const [set, field] of [
      ["operator.replicas=0", "replicas"],
      ["operator.agentAddress=node", "agentAddress"],
      ["operator.replica=2", "replica"],
      ["webhook.failurePolicy=Sometimes", "failurePolicy"],
    ]) {
      const r = await c.helm([
        "template",
        release,
        chartDir,
        "--kube-version",
        c.kubernetesVersion,
        "--set",
        set!,
      ]);
      assert.notEqual(r.code, 0, set);
      assert.match(r.stderr, /schema/i, r.stderr);
      assert.match(r.stderr, new RegExp(field!), r.stderr);
    }
  });
});
