import { test } from "node:test";
import assert from "node:assert/strict";
import {
  desiredChildren,
  type KubeObject,
  type ObservedForChildren,
} from "../../../operator/reconcile/desired-children.js";
import { target } from "./fixtures.js";

const observed: ObservedForChildren = {
  serviceIPs: { a: "10.214.0.10", b: "10.214.0.11" },
  // the user name read from the generated CHAP Secret (CHAP is on by default)
  chap: { username: "data" },
  bothWorking: true,
};
const defaults = { image: "ghcr.io/hasan-dev/hasan:0.1.0" };
const find = (objs: KubeObject[], kind: string, name?: string) =>
  objs.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
type Pod = {
  spec: { containers: { args: string[]; image: string }[]; affinity: unknown; volumes: { name: string }[] };
};

test("two pods on different hosts, each with its own PVC, Service and the partner's clusterIP as peer", () => {
  const objs = desiredChildren(target(), observed, defaults);
  const a = find(objs, "Pod", "data-a") as unknown as Pod & KubeObject;
  const b = find(objs, "Pod", "data-b") as unknown as Pod & KubeObject;
  assert.ok(a && b);
  const argsA = a.spec.containers[0]!.args;
  const flag = (args: string[], f: string) => args[args.indexOf(f) + 1];
  assert.equal(flag(argsA, "--node"), "a");
  assert.equal(flag(argsA, "--peer"), "10.214.0.11:3261");
  assert.equal(flag(b.spec.containers[0]!.args, "--peer"), "10.214.0.10:3261");
  assert.equal(flag(argsA, "--size"), String(1 << 30));
  assert.equal(flag(argsA, "--iqn"), "iqn.2024-01.dev.hasan:prod.data");
  assert.equal(flag(argsA, "--serial"), "0b7c6f2e1a2b4c3d8e9f001122334455");
  assert.equal(flag(argsA, "--witness"), "lease:prod/data-witness");
  assert.equal(flag(argsA, "--peer-secret-file"), "/etc/hasan/peer/secret");
  assert.deepEqual(a.spec.affinity, {
    podAntiAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: [
        {
          labelSelector: {
            matchLabels: { "app.kubernetes.io/name": "hasan-target", "hasan.dev/target": "data" },
          },
          topologyKey: "kubernetes.io/hostname",
        },
      ],
    },
  });
  assert.equal(a.metadata.labels?.["hasan.dev/node"], "a");
  assert.equal(a.spec.containers[0]!.image, defaults.image);
  for (const n of ["a", "b"]) {
    assert.ok(find(objs, "PersistentVolumeClaim", `data-${n}-data`));
    assert.ok(find(objs, "Service", `data-${n}`));
  }
});

test("every namespaced child has a controller owner reference; the cluster-scoped PV has labels instead", () => {
  const objs = desiredChildren(target({ export: { persistentVolume: {} } }), observed, defaults);
  for (const o of objs) {
    if (o.kind === "PersistentVolume") {
      assert.equal(o.metadata.ownerReferences, undefined);
      assert.equal(o.metadata.labels?.["hasan.dev/namespace"], "prod");
      continue;
    }
    const [ref] = o.metadata.ownerReferences ?? [];
    assert.equal(ref?.controller, true, `${o.kind} ${o.metadata.name}`);
    assert.equal(ref?.uid, "0b7c6f2e-1a2b-4c3d-8e9f-001122334455");
  }
});

test("pods and the PV wait for both Service clusterIPs", () => {
  const objs = desiredChildren(
    target({ export: { persistentVolume: {} } }),
    { ...observed, serviceIPs: { a: "10.214.0.10" } },
    defaults,
  );
  assert.equal(find(objs, "Pod"), undefined);
  assert.equal(find(objs, "PersistentVolume"), undefined);
  assert.ok(find(objs, "Service", "data-b"));
});

test("PDB allows one disruption only while both nodes are Working (minAvailable 1 of 2, else 2 of 2)", () => {
  const budget = (bothWorking: boolean) =>
    find(desiredChildren(target(), { ...observed, bothWorking }, defaults), "PodDisruptionBudget")!.spec as {
      minAvailable?: number;
      maxUnavailable?: number;
    };
  assert.deepEqual(budget(true).minAvailable, 1);
  assert.deepEqual(budget(false).minAvailable, 2);
  assert.equal(budget(true).maxUnavailable, undefined, "maxUnavailable needs a scale subresource");
});

test("exported PV: portal a as targetPortal, portal b in portals, CHAP secret and reclaim policy", () => {
  const t = target({
    auth: { chapSecretRef: { name: "chap" } },
    export: { persistentVolume: { name: "san-1", reclaimPolicy: "Delete", fsType: "xfs" } },
  });
  const objs = desiredChildren(t, { ...observed, chap: { username: "alice" } }, defaults);
  const pv = find(objs, "PersistentVolume", "san-1")!;
  assert.deepEqual(pv.spec, {
    capacity: { storage: "1Gi" },
    accessModes: ["ReadWriteOnce"],
    volumeMode: "Filesystem",
    persistentVolumeReclaimPolicy: "Delete",
    iscsi: {
      targetPortal: "10.214.0.10:3260",
      portals: ["10.214.0.11:3260"],
      iqn: "iqn.2024-01.dev.hasan:prod.data",
      lun: 0,
      fsType: "xfs",
      readOnly: false,
      chapAuthSession: true,
      chapAuthDiscovery: false,
      secretRef: { name: "chap", namespace: "prod" },
    },
  });
  const args = (find(objs, "Pod", "data-a") as unknown as Pod).spec.containers[0]!.args;
  assert.equal(args[args.indexOf("--chap-user") + 1], "alice");
});

test("with CHAP configured but its user name unknown, no pod is started without authentication", () => {
  const unknown = { ...observed, chap: undefined };
  const objs = desiredChildren(target({ auth: { chapSecretRef: { name: "chap" } } }), unknown, defaults);
  assert.equal(find(objs, "Pod"), undefined);
  // the same for the generated Secret (spec.auth unset): pods wait until its user name is read
  assert.equal(find(desiredChildren(target(), unknown, defaults), "Pod"), undefined);
});

test("the peer Secret is never among the applied children; pods mount the generated one or the user's", () => {
  const generated = desiredChildren(target(), observed, defaults);
  assert.equal(find(generated, "Secret"), undefined, "created once (peer-secret.ts), never applied");
  const volume = (objs: KubeObject[]) =>
    (
      find(objs, "Pod", "data-a") as unknown as {
        spec: { volumes: { name: string; secret?: { secretName: string } }[] };
      }
    ).spec.volumes.find((v) => v.name === "peer")?.secret?.secretName;
  assert.equal(volume(generated), "data-peer");
  const own = desiredChildren(
    target({ replication: { peerSecretRef: { name: "mine" } } }),
    observed,
    defaults,
  );
  assert.equal(find(own, "Secret"), undefined);
  assert.equal(volume(own), "mine");
});

test("witness Lease carries metadata only; the target Role is scoped to it by name", () => {
  const objs = desiredChildren(target(), observed, defaults);
  const lease = find(objs, "Lease", "data-witness")!;
  assert.equal(lease.spec, undefined);
  const role = find(objs, "Role")! as unknown as { rules: { resourceNames?: string[]; verbs: string[] }[] };
  assert.deepEqual(role.rules[0]!.resourceNames, ["data-witness"]);
  assert.ok(role.rules[0]!.verbs.includes("update"));
});

test("PVC size defaults to capacity plus metadata room; storage class only when set", () => {
  const pvc = find(desiredChildren(target(), observed, defaults), "PersistentVolumeClaim")!;
  assert.deepEqual(pvc.spec, {
    accessModes: ["ReadWriteOnce"],
    resources: { requests: { storage: "1088Mi" } },
  });
  const withClass = find(
    desiredChildren(target({ storage: { storageClassName: "fast", size: "2Gi" } }), observed, defaults),
    "PersistentVolumeClaim",
  )!;
  assert.deepEqual(withClass.spec, {
    accessModes: ["ReadWriteOnce"],
    resources: { requests: { storage: "2Gi" } },
    storageClassName: "fast",
  });
});

test("a pod spec change changes its template hash; an unrelated change does not", () => {
  const hash = (spec: Parameters<typeof target>[0]) =>
    find(desiredChildren(target(spec), observed, defaults), "Pod", "data-a")!.metadata.annotations?.[
      "hasan.dev/template-hash"
    ];
  assert.equal(hash({}), hash({ export: { persistentVolume: {} } }));
  assert.notEqual(hash({}), hash({ capacity: "2Gi" }));
  assert.notEqual(hash({}), hash({ pod: { image: "other:1" } }));
});

test("target pods run unprivileged: non-root, no capabilities, RuntimeDefault seccomp, read-only root, default requests", () => {
  const objs = desiredChildren(target(), observed, defaults);
  const pod = find(objs, "Pod", "data-a") as unknown as {
    spec: {
      securityContext: Record<string, unknown>;
      containers: { securityContext: Record<string, unknown>; resources: unknown }[];
    };
  };
  assert.deepEqual(pod.spec.securityContext, {
    runAsNonRoot: true,
    runAsUser: 65532,
    runAsGroup: 65532,
    fsGroup: 65532,
    fsGroupChangePolicy: "OnRootMismatch",
    seccompProfile: { type: "RuntimeDefault" },
  });
  const c = pod.spec.containers[0]!;
  assert.deepEqual(c.securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"] },
  });
  assert.deepEqual(c.resources, { requests: { cpu: "100m", memory: "192Mi" } });
  // A target's own resources replace the defaults.
  const own = { requests: { cpu: "2", memory: "1Gi" }, limits: { memory: "2Gi" } };
  const custom = find(
    desiredChildren(target({ pod: { resources: own } }), observed, defaults),
    "Pod",
    "data-a",
  ) as unknown as { spec: { containers: { resources: unknown }[] } };
  assert.deepEqual(custom.spec.containers[0]!.resources, own);
});

test("target pods take the operator's targetResources when their spec sets none; spec.pod.resources wins", () => {
  const resources = { requests: { cpu: "250m", memory: "512Mi" }, limits: { memory: "1Gi" } };
  const podResources = (t: ReturnType<typeof target>) =>
    (
      find(desiredChildren(t, observed, { ...defaults, resources }), "Pod") as unknown as {
        spec: { containers: { resources: unknown }[] };
      }
    ).spec.containers[0]!.resources;
  assert.deepEqual(podResources(target()), resources);
  const own = { requests: { memory: "64Mi" } };
  assert.deepEqual(podResources(target({ pod: { resources: own } })), own);
});

test("spec.pod.logLevel sets the target pods' log level (info by default)", () => {
  const level = (spec: Parameters<typeof target>[0]) => {
    const pod = desiredChildren(
      target(spec),
      { serviceIPs: { a: "10.96.0.1", b: "10.96.0.2" }, bothWorking: false, chap: { username: "data" } },
      { image: "img" },
    ).find((d) => d.kind === "Pod") as unknown as {
      spec: { containers: { env: { name: string; value: string }[] }[] };
    };
    return pod.spec.containers[0]!.env.find((e) => e.name === "HASAN_LOG_LEVEL")?.value;
  };
  assert.equal(level({}), "info");
  assert.equal(level({ pod: { logLevel: "debug" } }), "debug");
});

test("spec.replication.records Authenticated asks both pods for authenticated records; Encrypted and unset pass nothing", () => {
  const argsOf = (records?: "Encrypted" | "Authenticated") =>
    desiredChildren(target(records ? { replication: { records } } : {}), observed, defaults)
      .filter((o) => o.kind === "Pod")
      .map((p) => (p as unknown as Pod).spec.containers[0]!.args);
  for (const args of argsOf("Authenticated"))
    assert.equal(args[args.indexOf("--peer-records") + 1], "authenticated");
  for (const records of [undefined, "Encrypted"] as const)
    for (const args of argsOf(records)) assert.ok(!args.includes("--peer-records"), String(records));
});
