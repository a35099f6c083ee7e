// End-to-end checks of the local cluster: real control plane, node agent, pod processes,
// Service routing, PDB-respecting drains, persistent volumes and node failure.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import http from "node:http";
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { ensureCluster, type Cluster } from "../support/cluster.js";
import { echoCodeMount, echoCodeVolume, echoCommand, echoImage } from "../support/http-echo-pod.js";

const image = echoImage;
const echoCode = echoCodeVolume;
const ns = `cluster-e2e-${randomBytes(3).toString("hex")}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(500);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** GET over a fresh connection each time, so Service balancing is visible. */
function httpGet(url: string, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => {
        if (res.statusCode !== 200) reject(new Error(`GET ${url}: ${res.statusCode} ${body}`));
        else resolve(JSON.parse(body));
      });
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on("error", reject);
  });
}

const EchoReply = z.object({
  pod: z.string(),
  namespace: z.string().optional(),
  node: z.string().optional(),
  ip: z.string().optional(),
  pid: z.number(),
});
const FetchReply = z.object({ body: z.string() });

const PodJson = z.object({
  metadata: z.object({ name: z.string(), uid: z.string() }),
  spec: z.object({ nodeName: z.string().optional() }),
  status: z.object({
    phase: z.string().optional(),
    podIP: z.string().optional(),
    conditions: z.array(z.object({ type: z.string(), status: z.string() })).optional(),
  }),
});
const PodList = z.object({ items: z.array(PodJson) });
type PodJson = z.infer<typeof PodJson>;

function isReady(p: PodJson): boolean {
  return p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

function echoContainer(extraEnv: Record<string, string> = {}) {
  return {
    name: "echo",
    image,
    command: echoCommand,
    args: ["8080"],
    volumeMounts: [echoCodeMount],
    ports: [{ name: "http", containerPort: 8080 }],
    env: [
      { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
      { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
      { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
      ...Object.entries(extraEnv).map(([name, value]) => ({ name, value })),
    ],
    readinessProbe: { httpGet: { path: "/healthz", port: "http" }, periodSeconds: 1 },
    // Generous: a loaded machine may take many seconds to start node.
    livenessProbe: {
      tcpSocket: { port: 8080 },
      initialDelaySeconds: 30,
      periodSeconds: 5,
      failureThreshold: 6,
    },
  };
}

function podManifest(name: string, spec: Record<string, unknown> = {}, labels: Record<string, string> = {}) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: ns, labels: { app: name, ...labels } },
    spec: { terminationGracePeriodSeconds: 5, containers: [echoContainer()], volumes: [echoCode], ...spec },
  };
}

describe("local cluster", { timeout: 900_000 }, () => {
  let cluster: Cluster;
  const apply = (obj: unknown) => cluster.kubectlOk(["apply", "-f", "-"], { input: JSON.stringify(obj) });
  const getPod = async (name: string) =>
    PodJson.parse(JSON.parse(await cluster.kubectlOk(["get", "pod", "-n", ns, name, "-o", "json"])));
  const readyPod = (name: string) =>
    eventually(`pod ${name} Ready`, async () => {
      const p = await getPod(name);
      return isReady(p) ? p : undefined;
    });
  const listPods = async (selector: string) =>
    PodList.parse(
      JSON.parse(await cluster.kubectlOk(["get", "pods", "-n", ns, "-l", selector, "-o", "json"])),
    ).items;

  before(async () => {
    cluster = await ensureCluster();
    await cluster.kubectlOk(["create", "namespace", ns]);
  });

  after(async () => {
    if (!cluster) return;
    for (const n of ["hasan-node-1", "hasan-node-2", "hasan-node-3"]) {
      await cluster.restoreNode(n).catch(() => undefined);
      await cluster.kubectl(["uncordon", n]);
    }
    await cluster.kubectl(["delete", "namespace", ns, "--wait=true", "--timeout=120s"], {
      timeoutMs: 150_000,
    });
  });

  it("has three Ready nodes labelled like real ones", async () => {
    const Nodes = z.object({
      items: z.array(
        z.object({
          metadata: z.object({ name: z.string(), labels: z.record(z.string(), z.string()) }),
          status: z.object({ conditions: z.array(z.object({ type: z.string(), status: z.string() })) }),
        }),
      ),
    });
    const nodes = await eventually("3 Ready nodes", async () => {
      const list = Nodes.parse(JSON.parse(await cluster.kubectlOk(["get", "nodes", "-o", "json"]))).items;
      const ready = list.filter((n) =>
        n.status.conditions.some((c) => c.type === "Ready" && c.status === "True"),
      );
      return ready.length >= 3 ? list : undefined;
    });
    const names = nodes.map((n) => n.metadata.name).sort();
    assert.deepEqual(names, ["hasan-node-1", "hasan-node-2", "hasan-node-3"]);
    for (const n of nodes) {
      assert.equal(n.metadata.labels["kubernetes.io/hostname"], n.metadata.name);
      assert.equal(n.metadata.labels["kubernetes.io/os"], "linux");
      assert.match(n.metadata.labels["topology.kubernetes.io/zone"] ?? "", /^zone-/);
    }
    const version = await cluster.kubectlOk(["version", "-o", "json"]);
    assert.match(version, new RegExp(`"gitVersion": "${cluster.kubernetesVersion}"`));
  });

  it("runs a Deployment as real processes behind a Service reachable from the host and from pods", async () => {
    await apply({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "echo", namespace: ns },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: "echo" } },
        template: {
          metadata: { labels: { app: "echo" } },
          spec: {
            terminationGracePeriodSeconds: 5,
            containers: [echoContainer()],
            volumes: [echoCode],
            topologySpreadConstraints: [
              {
                maxSkew: 1,
                topologyKey: "kubernetes.io/hostname",
                whenUnsatisfiable: "DoNotSchedule",
                labelSelector: { matchLabels: { app: "echo" } },
              },
            ],
          },
        },
      },
    });
    await apply({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "echo", namespace: ns },
      spec: { selector: { app: "echo" }, ports: [{ name: "http", port: 80, targetPort: "http" }] },
    });
    await apply(podManifest("client"));
    await cluster.kubectlOk(["rollout", "status", "-n", ns, "deployment/echo", "--timeout=180s"], {
      timeoutMs: 200_000,
    });
    const pods = (await listPods("app=echo")).filter(isReady);
    assert.equal(pods.length, 2);

    for (const p of pods) {
      const info = await cluster.podInfo(ns, p.metadata.name);
      assert.ok(info.pids.length > 0 && info.pids.every(alive), "each pod is a live process");
      assert.match(p.status.podIP ?? "", /^10\.213\./);
      const reply = EchoReply.parse(await httpGet(`http://${p.status.podIP}:8080/`));
      assert.equal(reply.pod, p.metadata.name, "pod IP reaches that pod from the host");
      assert.equal(reply.node, p.spec.nodeName);
    }

    const slices = await eventually("EndpointSlice with both pod IPs", async () => {
      const out = await cluster.kubectlOk([
        "get",
        "endpointslices",
        "-n",
        ns,
        "-l",
        "kubernetes.io/service-name=echo",
        "-o",
        "json",
      ]);
      const ips = [...out.matchAll(/"(10\.213\.\d+\.\d+)"/g)].map((m) => m[1]);
      return pods.every((p) => ips.includes(p.status.podIP)) ? ips : undefined;
    });
    assert.ok(slices.length >= 2);

    const clusterIP = (
      await cluster.kubectlOk(["get", "service", "-n", ns, "echo", "-o", "jsonpath={.spec.clusterIP}"])
    ).trim();
    const seen = new Set<string>();
    await eventually("Service spreading over both pods from the host", async () => {
      seen.add(EchoReply.parse(await httpGet(`http://${clusterIP}/`)).pod);
      return seen.size === 2 ? true : undefined;
    });

    const client = await readyPod("client");
    const viaPod = FetchReply.parse(
      await httpGet(
        `http://${client.status.podIP}:8080/fetch?url=${encodeURIComponent(`http://${clusterIP}/`)}`,
      ),
    );
    assert.ok(
      pods.some((p) => p.metadata.name === EchoReply.parse(JSON.parse(viaPod.body)).pod),
      "Service reachable from a pod",
    );
    const podToPod = FetchReply.parse(
      await httpGet(
        `http://${client.status.podIP}:8080/fetch?url=${encodeURIComponent(`http://${pods[0]?.status.podIP}:8080/`)}`,
      ),
    );
    assert.equal(
      EchoReply.parse(JSON.parse(podToPod.body)).pod,
      pods[0]?.metadata.name,
      "pod IP reachable from a pod",
    );

    const viaDns = FetchReply.parse(
      await httpGet(`http://${client.status.podIP}:8080/fetch?url=${encodeURIComponent("http://echo/")}`),
    );
    assert.ok(
      pods.some((p) => p.metadata.name === EchoReply.parse(JSON.parse(viaDns.body)).pod),
      "Service name resolves through cluster DNS",
    );

    const kube = z
      .object({ gitVersion: z.string() })
      .parse(await httpGet(`http://${client.status.podIP}:8080/kube`, 15_000));
    assert.equal(kube.gitVersion, cluster.kubernetesVersion, "in-cluster config reaches the API server");
    assert.match(await cluster.podLogs(ns, "client"), /listening/);
  });

  it("stops a pod's process when the pod is deleted", async () => {
    const [victim] = (await listPods("app=echo")).filter(isReady);
    assert.ok(victim);
    const { pids } = await cluster.podInfo(ns, victim.metadata.name);
    await cluster.kubectlOk(
      ["delete", "pod", "-n", ns, victim.metadata.name, "--wait=true", "--timeout=60s"],
      { timeoutMs: 90_000 },
    );
    await eventually("process gone", async () => (pids.every((p) => !alive(p)) ? true : undefined), 30_000);
    assert.match(await cluster.podLogs(ns, victim.metadata.name), /SIGTERM received/);
    await cluster.kubectlOk(["rollout", "status", "-n", ns, "deployment/echo", "--timeout=180s"], {
      timeoutMs: 200_000,
    });
  });

  it("holds a drain while a PDB forbids disruption and completes it once allowed", async () => {
    await apply({
      apiVersion: "policy/v1",
      kind: "PodDisruptionBudget",
      metadata: { name: "echo", namespace: ns },
      spec: { maxUnavailable: 0, selector: { matchLabels: { app: "echo" } } },
    });
    await eventually("PDB observed", async () => {
      const out = await cluster.kubectlOk([
        "get",
        "pdb",
        "-n",
        ns,
        "echo",
        "-o",
        "jsonpath={.status.observedGeneration}/{.metadata.generation}/{.status.expectedPods}",
      ]);
      const [obs, gen, expected] = out.split("/");
      return obs === gen && expected === "2" ? true : undefined;
    });
    const [target] = (await listPods("app=echo")).filter(isReady);
    const node = target?.spec.nodeName;
    assert.ok(target && node);
    const { pids } = await cluster.podInfo(ns, target.metadata.name);

    let output = "";
    const child = spawn(
      cluster.kubectlBinary,
      [
        "--kubeconfig",
        cluster.kubeconfig,
        "drain",
        node,
        // Only this test's pods: other tests may share the cluster.
        "--pod-selector=app=echo",
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=240s",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    try {
      await eventually(
        "drain blocked by the PDB",
        async () => (/disruption budget/.test(output) ? true : undefined),
        60_000,
      );
      await sleep(6000);
      assert.equal(child.exitCode, null, "drain keeps retrying while the budget forbids eviction");
      assert.ok(pids.every(alive), "the protected pod still runs");

      await cluster.kubectlOk([
        "patch",
        "pdb",
        "-n",
        ns,
        "echo",
        "--type=merge",
        "-p",
        '{"spec":{"maxUnavailable":1}}',
      ]);
      assert.equal(await exited, 0, `drain completes: ${output}`);
      await eventually(
        "evicted pod's process gone",
        async () => (pids.every((p) => !alive(p)) ? true : undefined),
        30_000,
      );
      const left = (await listPods("app=echo")).filter((p) => p.spec.nodeName === node);
      assert.equal(left.length, 0, "no echo pod left on the drained node");
    } finally {
      child.kill();
      await cluster.kubectl(["uncordon", node]);
      await cluster.kubectl(["delete", "pdb", "-n", ns, "echo"]);
    }
  });

  it("keeps a PVC's data across pod delete and re-create", async () => {
    await apply({
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: "data", namespace: ns },
      spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
    });
    const withVolume = podManifest("store", {
      containers: [
        { ...echoContainer(), volumeMounts: [echoCodeMount, { name: "data", mountPath: "/var/lib/hasan" }] },
      ],
      volumes: [echoCode, { name: "data", persistentVolumeClaim: { claimName: "data" } }],
      // The image's user (65532) writes the volume through its group, as the target pods do.
      securityContext: { fsGroup: 65532 },
    });
    await apply(withVolume);
    const first = await readyPod("store");
    const secret = randomBytes(8).toString("hex");
    await httpGet(`http://${first.status.podIP}:8080/write?path=/var/lib/hasan/proof&data=${secret}`);
    await cluster.kubectlOk(["delete", "pod", "-n", ns, "store", "--wait=true", "--timeout=60s"], {
      timeoutMs: 90_000,
    });
    await apply(withVolume);
    const second = await readyPod("store");
    assert.notEqual(second.metadata.uid, first.metadata.uid);
    assert.equal(second.spec.nodeName, first.spec.nodeName, "the local volume keeps the pod on its node");
    const read = z
      .object({ data: z.string() })
      .parse(await httpGet(`http://${second.status.podIP}:8080/read?path=/var/lib/hasan/proof`));
    assert.equal(read.data, secret);
  });

  it("cuts and restores the link between two pods", async () => {
    await apply(podManifest("left", { nodeName: "hasan-node-1" }));
    await apply(podManifest("right", { nodeName: "hasan-node-2" }));
    const left = await readyPod("left");
    const right = await readyPod("right");
    const probe = `http://${left.status.podIP}:8080/fetch?url=${encodeURIComponent(`http://${right.status.podIP}:8080/`)}`;
    assert.equal(EchoReply.parse(JSON.parse(FetchReply.parse(await httpGet(probe)).body)).pod, "right");
    const a = { namespace: ns, name: "left" };
    const b = { namespace: ns, name: "right" };
    await cluster.cutLink(a, b);
    try {
      await eventually("link cut", async () => {
        const failed = await httpGet(probe, 15_000).then(
          () => false,
          (err: unknown) => /: 500 /.test(String(err)),
        );
        return failed ? true : undefined;
      });
    } finally {
      await cluster.restoreLink(a, b);
    }
    await eventually(
      "link restored",
      async () => EchoReply.parse(JSON.parse(FetchReply.parse(await httpGet(probe)).body)).pod,
    );
  });

  it("fails a node (NotReady, processes killed) and restores it", async () => {
    const node = "hasan-node-3";
    await apply(podManifest("pinned", { nodeName: node }));
    const before = await readyPod("pinned");
    const { pids } = await cluster.podInfo(ns, "pinned");
    await cluster.failNode(node);
    try {
      assert.ok(
        pids.every((p) => !alive(p)),
        "the node's processes die with it",
      );
      await eventually(
        "node NotReady",
        async () => {
          const st = await cluster.kubectlOk([
            "get",
            "node",
            node,
            "-o",
            'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
          ]);
          return st.trim() !== "True" ? true : undefined;
        },
        120_000,
      );
      await eventually("pod marked not ready by the node lifecycle controller", async () =>
        isReady(await getPod("pinned")) ? undefined : true,
      );
    } finally {
      await cluster.restoreNode(node);
    }
    await eventually("node Ready again", async () => {
      const st = await cluster.kubectlOk([
        "get",
        "node",
        node,
        "-o",
        'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
      ]);
      return st.trim() === "True" ? true : undefined;
    });
    const after = await readyPod("pinned");
    assert.equal(after.metadata.uid, before.metadata.uid, "the same pod runs again, as after a reboot");
    const info = await cluster.podInfo(ns, "pinned");
    assert.ok(info.pids.length > 0 && info.pids.every(alive));
    assert.ok(
      info.pids.every((p) => !pids.includes(p)),
      "with new processes",
    );
  });
});
