// The CSI driver as the chart renders it with `helm template`: the CSIDriver, the controller
// Deployment and its sidecars, the node DaemonSet, the StorageClass, each switchable by values; and
// RBAC that grants the controller's ServiceAccount what the sidecars and the controller service do,
// and nothing broader.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { parseCsiArgs } from "../../../operator/csi/config.js";
import { readFileSync } from "node:fs";
import path from "node:path";
import { CHART_DIR, CHART_NAMESPACE, renderChart } from "../../support/chart-render.js";

const releaseNs = CHART_NAMESPACE;

const Obj = z.looseObject({
  kind: z.string(),
  metadata: z.looseObject({
    name: z.string(),
    namespace: z.string().optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
});
type Obj = z.infer<typeof Obj>;

function render(set: string[] = []): Obj[] {
  // Plain objects: loadAllYaml builds the client library's model classes.
  return renderChart(set)
    .filter((d) => d && typeof d === "object")
    .map((d) => Obj.parse(JSON.parse(JSON.stringify(d))));
}

const one = (objs: Obj[], kind: string, name: string) => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `renders ${kind} ${name}`);
  return o;
};

const Container = z.object({
  name: z.string(),
  image: z.string(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()),
  securityContext: z.looseObject({ privileged: z.boolean().optional() }).optional(),
  volumeMounts: z.array(
    z.object({ name: z.string(), mountPath: z.string(), mountPropagation: z.string().optional() }),
  ),
});
const Workload = z.object({
  spec: z.object({
    replicas: z.int().optional(),
    template: z.object({
      spec: z.looseObject({
        serviceAccountName: z.string(),
        hostNetwork: z.boolean().optional(),
        hostPID: z.boolean().optional(),
        containers: z.array(Container),
        volumes: z.array(z.looseObject({ name: z.string() })),
      }),
    }),
  }),
});
const Rule = z.object({
  apiGroups: z.array(z.string()),
  resources: z.array(z.string()),
  verbs: z.array(z.string()),
  resourceNames: z.array(z.string()).optional(),
});
const RoleJson = z.object({ rules: z.array(Rule) });
const Binding = z.object({
  roleRef: z.object({ kind: z.string(), name: z.string() }),
  subjects: z.array(z.object({ kind: z.string(), name: z.string(), namespace: z.string() })),
});

/** "group/resource verb" for every grant of a rule set (resourceNames-limited ones marked). */
function grantSet(rules: z.infer<typeof Rule>[]): Set<string> {
  const out = new Set<string>();
  for (const r of rules)
    for (const g of r.apiGroups)
      for (const res of r.resources)
        for (const v of r.verbs)
          out.add(`${g}/${res} ${v}${r.resourceNames ? ` [${r.resourceNames.join(",")}]` : ""}`);
  return out;
}

describe("chart: the CSI driver", () => {
  const objs = render();

  it("registers iscsi.hasan.dev without attach, for persistent volumes, with fsGroup handled by the kubelet", () => {
    const driver = z
      .object({
        spec: z.object({
          attachRequired: z.boolean(),
          podInfoOnMount: z.boolean(),
          volumeLifecycleModes: z.array(z.string()),
          fsGroupPolicy: z.string(),
        }),
      })
      .parse(one(objs, "CSIDriver", "iscsi.hasan.dev"));
    assert.deepEqual(driver.spec, {
      attachRequired: false,
      podInfoOnMount: false,
      volumeLifecycleModes: ["Persistent"],
      fsGroupPolicy: "File",
    });
  });

  it("runs the controller service with external-provisioner and external-resizer on one socket", () => {
    const d = Workload.parse(one(objs, "Deployment", "hasan-csi-controller"));
    assert.equal(d.spec.replicas, 2);
    const pod = d.spec.template.spec;
    assert.equal(pod.serviceAccountName, "hasan-csi-controller");
    const [driver, provisioner, resizer, ...more] = pod.containers;
    assert.equal(more.length, 0);
    assert.deepEqual(driver?.command, ["node", "/app/dist/operator/csi/main.js"]);
    // The driver accepts exactly what the chart passes.
    const cfg = parseCsiArgs(driver!.args, {});
    assert.equal(cfg.mode, "controller");
    assert.equal(cfg.endpoint, "unix:///csi/csi.sock");
    assert.equal(provisioner?.image, "registry.k8s.io/sig-storage/csi-provisioner:v6.4.0");
    for (const a of [
      "--csi-address=/csi/csi.sock",
      "--extra-create-metadata",
      "--leader-election",
      "--timeout=60s",
    ])
      assert.ok(provisioner!.args.includes(a), `${a} in ${provisioner!.args.join(" ")}`);
    assert.ok(
      !provisioner!.args.some((a) => a.startsWith("--feature-gates")),
      "no topology: no feature gates",
    );
    assert.equal(resizer?.image, "registry.k8s.io/sig-storage/csi-resizer:v2.3.0");
    assert.ok(resizer!.args.includes("--leader-election"));
    for (const c of pod.containers)
      assert.ok(
        c.volumeMounts.some((m) => m.name === "socket-dir" && m.mountPath === "/csi"),
        `${c.name} shares the socket`,
      );
    assert.deepEqual(
      pod.volumes.find((v) => v.name === "socket-dir"),
      { name: "socket-dir", emptyDir: {} },
    );
  });

  it("runs the node plugin privileged on the host network with the kubelet directory shared both ways", () => {
    const ds = Workload.parse(one(objs, "DaemonSet", "hasan-csi-node"));
    const pod = ds.spec.template.spec;
    assert.equal(pod.hostNetwork, true);
    const names = pod.containers.map((c) => c.name);
    assert.deepEqual(names, ["hasan-csi", "node-driver-registrar", "liveness-probe"]);
    const plugin = pod.containers[0]!;
    assert.equal(plugin.securityContext?.privileged, true);
    const cfg = parseCsiArgs(plugin.args, { NODE_NAME: "n1" });
    assert.equal(cfg.mode, "node");
    assert.equal(cfg.nodeId, "$(NODE_NAME)", "the kubelet expands the node name");
    // The host's own iscsiadm, multipath and mkfs, in the host's namespaces (PID 1 is the host's).
    assert.equal(cfg.hostCommands, "nsenter");
    assert.equal(pod.hostPID, true);
    const mounts = new Map(plugin.volumeMounts.map((m) => [m.mountPath, m]));
    assert.equal(mounts.get("/var/lib/kubelet")?.mountPropagation, "Bidirectional");
    for (const p of ["/dev", "/sys", "/etc/iscsi", "/run/lock/iscsi", "/csi", "/var/lib/hasan-csi"])
      assert.ok(mounts.has(p), `mounts ${p}`);
    const registrar = pod.containers[1]!;
    assert.ok(
      registrar.args.includes(
        "--kubelet-registration-path=/var/lib/kubelet/plugins/iscsi.hasan.dev/csi.sock",
      ),
      registrar.args.join(" "),
    );
  });

  it("makes the StorageClass hasan with expansion, Delete, Immediate, and the node-stage CHAP Secret", () => {
    const sc = z
      .object({
        metadata: z.object({ annotations: z.record(z.string(), z.string()).optional() }),
        provisioner: z.string(),
        reclaimPolicy: z.string(),
        volumeBindingMode: z.string(),
        allowVolumeExpansion: z.boolean(),
        parameters: z.record(z.string(), z.string()),
      })
      .parse(one(objs, "StorageClass", "hasan"));
    assert.equal(sc.provisioner, "iscsi.hasan.dev");
    assert.equal(sc.reclaimPolicy, "Delete");
    assert.equal(sc.volumeBindingMode, "Immediate");
    assert.equal(sc.allowVolumeExpansion, true);
    assert.equal(sc.metadata.annotations?.["storageclass.kubernetes.io/is-default-class"], undefined);
    assert.deepEqual(sc.parameters, {
      "csi.storage.k8s.io/node-stage-secret-name": "${pv.name}-chap",
      "csi.storage.k8s.io/node-stage-secret-namespace": "${pvc.namespace}",
    });
    const custom = z
      .object({
        metadata: z.object({ annotations: z.record(z.string(), z.string()) }),
        parameters: z.record(z.string(), z.string()),
        reclaimPolicy: z.string(),
      })
      .parse(
        one(
          render([
            "csi.storageClass.name=fast",
            "csi.storageClass.default=true",
            "csi.storageClass.reclaimPolicy=Retain",
            "csi.storageClass.parameters.resyncRateLimit=200Mi",
            "csi.storageClass.parameters.storageClassName=local-ssd",
          ]),
          "StorageClass",
          "fast",
        ),
      );
    assert.equal(custom.metadata.annotations["storageclass.kubernetes.io/is-default-class"], "true");
    assert.equal(custom.reclaimPolicy, "Retain");
    assert.equal(custom.parameters.resyncRateLimit, "200Mi");
    assert.equal(custom.parameters.storageClassName, "local-ssd");
  });

  it("switches each part off by its value", () => {
    const kinds = (set: string[]) =>
      render(set)
        .filter((o) => o.metadata.name.includes("csi") || ["CSIDriver", "StorageClass"].includes(o.kind))
        .map((o) => `${o.kind} ${o.metadata.name}`)
        .sort();
    assert.deepEqual(kinds(["csi.enabled=false"]), []);
    const noNode = kinds(["csi.node.enabled=false"]);
    assert.ok(!noNode.some((k) => k.startsWith("DaemonSet")), noNode.join(", "));
    assert.ok(noNode.includes("Deployment hasan-csi-controller"));
    assert.ok(!kinds(["csi.storageClass.create=false"]).some((k) => k.startsWith("StorageClass")));
  });

  it("grants the controller what external-provisioner, external-resizer and the controller service do, and nothing broader", () => {
    const cluster = grantSet(RoleJson.parse(one(objs, "ClusterRole", "hasan-csi-controller")).rules);
    const expected = [
      "/persistentvolumes get",
      "/persistentvolumes list",
      "/persistentvolumes watch",
      "/persistentvolumes create",
      "/persistentvolumes patch",
      "/persistentvolumes delete",
      "/persistentvolumeclaims get",
      "/persistentvolumeclaims list",
      "/persistentvolumeclaims watch",
      "/persistentvolumeclaims update",
      "/persistentvolumeclaims/status patch",
      "storage.k8s.io/storageclasses get",
      "storage.k8s.io/storageclasses list",
      "storage.k8s.io/storageclasses watch",
      "/nodes get",
      "/events create",
      "/events patch",
      "hasan.dev/hasantargets get",
      "hasan.dev/hasantargets list",
      "hasan.dev/hasantargets create",
      "hasan.dev/hasantargets patch",
      "hasan.dev/hasantargets delete",
    ];
    assert.deepEqual([...cluster].sort(), expected.sort());
    for (const g of cluster) assert.doesNotMatch(g, /secrets|pods|\*/, g);
    const leases = grantSet(RoleJson.parse(one(objs, "Role", "hasan-csi-controller")).rules);
    assert.deepEqual([...leases].sort(), [
      "coordination.k8s.io/leases create",
      "coordination.k8s.io/leases get [iscsi-hasan-dev,external-resizer-iscsi-hasan-dev]",
      "coordination.k8s.io/leases update [iscsi-hasan-dev,external-resizer-iscsi-hasan-dev]",
    ]);
    for (const kind of ["ClusterRoleBinding", "RoleBinding"]) {
      const b = Binding.parse(one(objs, kind, "hasan-csi-controller"));
      assert.deepEqual(b.subjects, [
        { kind: "ServiceAccount", name: "hasan-csi-controller", namespace: releaseNs },
      ]);
    }
    // The node plugin reads nothing from the API server.
    assert.ok(!objs.some((o) => o.kind.endsWith("Binding") && o.metadata.name === "hasan-csi-node"));
  });

  it("with operator.watchNamespace, grants HASanTargets in that namespace only and lists no other", () => {
    const scoped = render(["operator.watchNamespace=san"]);
    const cluster = grantSet(RoleJson.parse(one(scoped, "ClusterRole", "hasan-csi-controller")).rules);
    assert.ok(![...cluster].some((g) => g.startsWith("hasan.dev/")), [...cluster].join(", "));
    const role = one(scoped, "Role", "hasan-csi-controller-targets");
    assert.equal(role.metadata.namespace, "san");
    assert.ok(grantSet(RoleJson.parse(role).rules).has("hasan.dev/hasantargets create"));
    const d = Workload.parse(one(scoped, "Deployment", "hasan-csi-controller"));
    assert.equal(parseCsiArgs(d.spec.template.spec.containers[0]!.args, {}).namespace, "san");
  });
});

describe("pod template annotations", () => {
  it("the webhook CA checksum is a quoted string (a hex digest like 12e45… would read as a number)", () => {
    const dep = render().find(
      (o) => o.kind === "Deployment" && o.metadata.name === "hasan-operator",
    ) as unknown as {
      spec: { template: { metadata: { annotations: Record<string, unknown> } } };
    };
    const sum = dep.spec.template.metadata.annotations["checksum/webhook-ca"];
    assert.equal(typeof sum, "string");
    const template = readFileSync(path.join(CHART_DIR, "templates/deployment.yaml"), "utf8");
    assert.match(template, /checksum\/webhook-ca: \{\{[^}]*\| quote \}\}/);
  });
});
