// The node agent's decisions, checked without a cluster: Service rules, env, pod phase, images.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { renderRules, serviceRules } from "../../hack/node-agent/net/service-rules.js";
import { allocateIP, firstServiceIP, nodePodCidr } from "../../hack/node-agent/net/ip-alloc.js";
import { containerEnv, expandVars } from "../../hack/node-agent/pods/env.js";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  imagePlan,
  isPauseImage,
  isProjectImage,
  sidecarBinaries,
} from "../../hack/node-agent/pods/image.js";
import { podPhase, type ContainerView } from "../../hack/node-agent/pods/pod-status.js";
import { backoffMs, shouldRestart } from "../../hack/node-agent/pods/restart-policy.js";
import { sandboxScript } from "../../hack/node-agent/pods/sandbox-script.js";
import { EndpointSlice, Pod, Service } from "../../hack/node-agent/kube/schemas.js";
import { resolveName } from "../../hack/node-agent/net/cluster-dns.js";
import { buildAnswer, parseQuery, RCODE_OK } from "../../hack/node-agent/net/dns-message.js";

const svc = (
  name: string,
  ns: string,
  ip: string,
  ports: { name?: string; port: number; targetPort?: number }[],
) => Service.parse({ metadata: { name, namespace: ns }, spec: { clusterIP: ip, ports } });
const slice = (
  svcName: string,
  ns: string,
  eps: { ip: string; ready: boolean }[],
  port: number,
  portName = "",
) =>
  EndpointSlice.parse({
    metadata: { name: `${svcName}-x`, namespace: ns, labels: { "kubernetes.io/service-name": svcName } },
    addressType: "IPv4",
    endpoints: eps.map((e) => ({ addresses: [e.ip], conditions: { ready: e.ready } })),
    ports: [{ name: portName, port, protocol: "TCP" }],
  });

describe("node agent: service rules", () => {
  const apiserver = { ip: "127.0.0.1", port: 16443 };
  const fixed = { "default/kubernetes:https": apiserver };

  it("routes a Service port only to ready endpoints of its own slices", () => {
    const rules = serviceRules(
      [svc("echo", "a", "10.214.0.20", [{ port: 80 }])],
      [
        slice(
          "echo",
          "a",
          [
            { ip: "10.213.1.2", ready: true },
            { ip: "10.213.2.2", ready: false },
          ],
          8080,
        ),
        slice("echo", "b", [{ ip: "10.213.3.9", ready: true }], 8080),
      ],
      fixed,
    );
    assert.deepEqual(rules[0]?.backends, [{ ip: "10.213.1.2", port: 8080 }]);
  });

  it("sends the kubernetes Service to the API server on loopback", () => {
    const rules = serviceRules(
      [svc("kubernetes", "default", "10.214.0.1", [{ name: "https", port: 443 }])],
      [],
      fixed,
    );
    assert.deepEqual(rules[0]?.backends, [apiserver]);
  });

  it("balances evenly, rejects Services without endpoints and drops cut links", () => {
    const set = renderRules({
      services: [
        svc("two", "a", "10.214.0.30", [{ port: 80 }]),
        svc("none", "a", "10.214.0.31", [{ port: 81 }]),
      ],
      slices: [
        slice(
          "two",
          "a",
          [
            { ip: "10.213.1.2", ready: true },
            { ip: "10.213.1.3", ready: true },
          ],
          8080,
        ),
      ],
      fixed,
      serviceCidr: "10.214.0.0/16",
      podCidr: "10.213.0.0/16",
      podIPs: ["10.213.1.2"],
      cutLinks: [["10.213.1.2", "10.213.2.5"]],
    });
    assert.match(set.nat, /--probability 0\.50000 -p tcp -j DNAT --to-destination 10\.213\.1\.2:8080/);
    assert.match(set.nat, /-p tcp -j DNAT --to-destination 10\.213\.1\.3:8080/);
    assert.match(set.filter, /-d 10\.214\.0\.31\/32 -p tcp -m tcp --dport 81 -j REJECT/);
    assert.match(set.filter, /-s 10\.213\.1\.2\/32 -d 10\.213\.2\.5\/32 -j DROP/);
    assert.match(set.filter, /-s 10\.213\.2\.5\/32 -d 10\.213\.1\.2\/32 -j DROP/);
    assert.match(set.filter, /-A HASAN-SERVICES -d 10\.214\.0\.0\/16 -j REJECT/);
    assert.match(set.filter, /-A HASAN-FORWARD -s 10\.213\.0\.0\/16 ! -d 10\.213\.0\.0\/16 -j REJECT/);
    assert.match(set.nat, /-s 10\.213\.1\.2\/32 -d 10\.213\.1\.2\/32 -j SNAT --to-source 169\.254\.1\.1/);
  });
});

describe("node agent: addresses", () => {
  it("gives node N the N-th /24 and hands out the lowest free address", () => {
    assert.equal(nodePodCidr("10.213.0.0/16", 3), "10.213.3.0/24");
    assert.equal(firstServiceIP("10.214.0.0/16"), "10.214.0.1");
    assert.equal(allocateIP("10.213.3.0/24", new Set(["10.213.3.2"])), "10.213.3.3");
  });
});

describe("node agent: container environment", () => {
  const pod = Pod.parse({
    metadata: { name: "p", namespace: "ns1", uid: "u-1", labels: { app: "x" } },
    spec: { nodeName: "hasan-node-2", containers: [{ name: "c" }] },
  });
  const base = {
    pod,
    podIP: "10.213.2.4",
    hostIP: "127.0.10.2",
    serviceEnv: { KUBERNETES_SERVICE_HOST: "10.214.0.1" },
  };

  it("resolves field refs, secrets, config maps, envFrom and $(VAR) references", () => {
    const r = containerEnv(
      {
        name: "c",
        image: "ghcr.io/hasan-dev/hasan:1",
        envFrom: [{ configMapRef: { name: "cm" }, prefix: "CM_" }],
        env: [
          { name: "NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
          { name: "IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
          { name: "NODE", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
          { name: "APP", valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
          { name: "PW", valueFrom: { secretKeyRef: { name: "s", key: "pw" } } },
          { name: "URL", value: "http://$(IP):8080/$(MISSING)" },
        ],
      },
      {
        ...base,
        configMaps: new Map([["cm", { mode: Buffer.from("fast") }]]),
        secrets: new Map([["s", { pw: Buffer.from("hunter2") }]]),
      },
    );
    assert.equal(r.error, undefined);
    assert.equal(r.env.NAME, "p");
    assert.equal(r.env.NODE, "hasan-node-2");
    assert.equal(r.env.APP, "x");
    assert.equal(r.env.PW, "hunter2");
    assert.equal(r.env.CM_mode, "fast");
    assert.equal(r.env.URL, "http://10.213.2.4:8080/$(MISSING)");
    assert.equal(r.env.KUBERNETES_SERVICE_HOST, "10.214.0.1");
  });

  it("refuses to start when a required secret key is missing", () => {
    const r = containerEnv(
      { name: "c", image: "x", env: [{ name: "PW", valueFrom: { secretKeyRef: { name: "s", key: "pw" } } }] },
      { ...base, configMaps: new Map(), secrets: new Map() },
    );
    assert.match(r.error ?? "", /secret "s" key "pw" not found/);
    assert.equal(expandVars("$$(X)", { X: "1" }), "$(X)");
  });
});

describe("node agent: pods", () => {
  const c = (state: ContainerView["state"], final: boolean, restartCount = 0): ContainerView => ({
    name: "c",
    image: "i",
    state,
    restartCount,
    ready: false,
    started: false,
    final,
  });
  const view = (containers: ContainerView[]) => ({
    sandboxReady: true,
    initDone: true,
    init: [],
    containers,
    hostIP: "127.0.10.1",
    startTime: "",
  });
  const done = (exitCode: number) => ({
    terminated: { exitCode, reason: "x", startedAt: "", finishedAt: "" },
  });

  it("derives the phase like the kubelet", () => {
    assert.equal(podPhase(view([c({ waiting: { reason: "ContainerCreating" } }, false)])), "Pending");
    assert.equal(podPhase(view([c({ running: { startedAt: "" } }, false)])), "Running");
    assert.equal(podPhase(view([c({ waiting: { reason: "CrashLoopBackOff" } }, false, 2)])), "Running");
    assert.equal(podPhase(view([c(done(0), true)])), "Succeeded");
    assert.equal(podPhase(view([c(done(1), true)])), "Failed");
  });

  it("restarts per policy with doubling back-off capped at five minutes", () => {
    assert.equal(shouldRestart("Always", 0), true);
    assert.equal(shouldRestart("OnFailure", 0), false);
    assert.equal(shouldRestart("OnFailure", 2), true);
    assert.equal(shouldRestart("Never", 2), false);
    assert.deepEqual(
      [1, 2, 3, 10].map((n) => backoffMs(n, 1000)),
      [10_000, 20_000, 40_000, 300_000],
    );
  });

  it("runs only the project's image", () => {
    assert.ok(isProjectImage("ghcr.io/hasan-dev/hasan:0.1.0"));
    assert.ok(isProjectImage("localhost:5000/hasan@sha256:abc"));
    assert.ok(!isProjectImage("busybox:1.36"));
    assert.ok(!isProjectImage("ghcr.io/hasan-dev/hasan-tools:1"));
    assert.ok(isPauseImage("registry.k8s.io/pause:3.10"));
    assert.ok(!isPauseImage("busybox"));
  });

  it("runs the CSI sidecars at their pinned tags from the built binaries, and nothing else", () => {
    const root = mkdtempSync(path.join(tmpdir(), "hasan-images-"));
    const repo = path.join(root, "repo");
    const cache = path.join(root, "cache");
    const dir = path.join(cache, "tools", "csi-provisioner-v6.4.0-resizer-v2.3.0-test-v5.4.0");
    for (const d of [path.join(repo, "hack/csi"), dir]) mkdirSync(d, { recursive: true });
    writeFileSync(
      path.join(repo, "hack/csi/versions.sh"),
      "# pinned\nCSI_PROVISIONER_VERSION=v6.4.0\nCSI_RESIZER_VERSION=v2.3.0\nCSI_TEST_VERSION=v5.4.0\n",
    );
    writeFileSync(path.join(dir, "csi-provisioner"), "");
    const sidecars = sidecarBinaries(repo, { HASAN_CACHE: cache });
    assert.equal(sidecars.dir, dir);
    assert.deepEqual(imagePlan("registry.k8s.io/sig-storage/csi-provisioner:v6.4.0", sidecars), {
      kind: "binary",
      path: path.join(dir, "csi-provisioner"),
    });
    assert.deepEqual(imagePlan("ghcr.io/hasan-dev/hasan:0.1.0", sidecars), { kind: "project" });
    const wrongTag = imagePlan("registry.k8s.io/sig-storage/csi-provisioner:v6.3.0", sidecars);
    assert.equal(wrongTag.kind, "unavailable");
    assert.match("message" in wrongTag ? wrongTag.message : "", /at v6\.4\.0 only/);
    const notBuilt = imagePlan("registry.k8s.io/sig-storage/csi-resizer:v2.3.0", sidecars);
    assert.match("message" in notBuilt ? notBuilt.message : "", /csi-resizer is missing: make csi-tools/);
    const other = imagePlan("registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.16.0", sidecars);
    assert.equal(other.kind, "unavailable");
    assert.match(
      "message" in other ? other.message : "",
      /csi-provisioner:v6\.4\.0, …\/csi-resizer:v2\.3\.0/,
    );
  });

  it("places mounts in a sandbox root, parents first, and chroots", () => {
    const script = sandboxScript({
      root: "/run/x/root",
      scratch: "/run/x/scratch",
      hostname: "p",
      topLevel: [{ name: "usr" }, { name: "bin", symlink: "usr/bin" }, { name: "mnt" }],
      mounts: [
        {
          source: "/v/sa",
          target: "/var/run/secrets/kubernetes.io/serviceaccount",
          readOnly: true,
          file: false,
        },
        { source: "/repo", target: "/app", readOnly: true, file: false },
      ],
      workingDir: "/",
      env: { A: "it's" },
      argv: ["node", "/app/x.js"],
    });
    assert.match(script, /mount --rbind \/'usr'/);
    assert.match(script, /ln -s 'usr\/bin' "\$R"\/'bin'/);
    assert.doesNotMatch(script, /'mnt'/, "hidden top-level directories are not exposed");
    assert.ok(script.indexOf("place '/repo' '/app'") < script.indexOf("place '/v/sa'"));
    assert.match(script, /exec chroot "\$R" \/usr\/bin\/env -i -C '\/' 'A=it'\\''s' 'node' '\/app\/x.js'/);
  });
});

describe("node agent: cluster DNS", () => {
  const services = [
    svc("echo", "a", "10.214.0.20", [{ port: 80 }]),
    Service.parse({
      metadata: { name: "peers", namespace: "a" },
      spec: { clusterIP: "None", ports: [{ port: 1 }] },
    }),
  ];
  const slices = [
    EndpointSlice.parse({
      metadata: { name: "peers-x", namespace: "a", labels: { "kubernetes.io/service-name": "peers" } },
      addressType: "IPv4",
      endpoints: [
        { addresses: ["10.213.1.7"], hostname: "p-0", conditions: { ready: true } },
        { addresses: ["10.213.2.7"], hostname: "p-1", conditions: { ready: true } },
      ],
    }),
  ];
  const src = { services: () => services, slices: () => slices };

  it("answers Service, headless and pod names and nothing outside the cluster", () => {
    assert.deepEqual(resolveName("echo.a.svc.cluster.local", src), ["10.214.0.20"]);
    assert.deepEqual(resolveName("peers.a.svc.cluster.local", src), ["10.213.1.7", "10.213.2.7"]);
    assert.deepEqual(resolveName("p-1.peers.a.svc.cluster.local", src), ["10.213.2.7"]);
    assert.deepEqual(resolveName("10-213-1-7.a.pod.cluster.local", src), ["10.213.1.7"]);
    assert.deepEqual(resolveName("missing.a.svc.cluster.local", src), []);
    assert.equal(resolveName("example.com", src), undefined);
  });

  it("encodes an answer that echoes the query", () => {
    const query = Buffer.from(
      "abcd01000001000000000000" + "046563686f0161037376630763" + "6c7573746572056c6f63616c00" + "00010001",
      "hex",
    );
    const q = parseQuery(query);
    assert.equal(q?.name, "echo.a.svc.cluster.local");
    const answer = buildAnswer(q!, RCODE_OK, ["10.214.0.20"]);
    assert.equal(answer.readUInt16BE(0), 0xabcd);
    assert.equal(answer.readUInt16BE(6), 1, "one answer");
    assert.deepEqual([...answer.subarray(-4)], [10, 214, 0, 20]);
  });
});
