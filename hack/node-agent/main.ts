import { lstat, readdir, readlink } from "node:fs/promises";
import type { Server as HttpsServer } from "node:https";
import path from "node:path";
import { createLogger } from "../../target/log.js";
import { parseConfig } from "./config.js";
import { startKubeletServer } from "./control/kubelet-server.js";
import { controlApp, listen } from "./control/server.js";
import type { PodRef } from "./control/api.js";
import { run } from "./exec.js";
import { KubeClient } from "../../operator/kit/kube-client.js";
import { Reflector } from "../../operator/kit/reflector.js";
import { EndpointSlice, PersistentVolume, PersistentVolumeClaim, Pod, Service } from "./kube/schemas.js";
import { Kubelet, type ManagedNode } from "./kubelet.js";
import { ensureDnsService, dnsServiceKey } from "./net/dns-service.js";
import { startClusterDns } from "./net/cluster-dns.js";
import { intToIp, nodePodCidr, parseCidr } from "./net/ip-alloc.js";
import { removeRules } from "./net/iptables.js";
import { deletePodNetwork, ensureHostRoutes, removeHostRoutes } from "./net/pod-network.js";
import { ServiceProxy } from "./net/service-proxy.js";
import { NodeHeartbeat } from "./nodes/heartbeat.js";
import { serviceLinkEnv } from "./pods/env.js";
import { sidecarBinaries } from "./pods/image.js";
import { loadImageBundle } from "./pods/image-config.js";
import { imageTopLevel, type TopLevelEntry } from "./pods/sandbox-script.js";
import { ensureLocalStorage, expandLocalClaim, recyclePV, type ClaimView } from "./storage/local-pvs.js";

const zones = ["zone-a", "zone-b", "zone-c"];

async function topLevelEntries(root = "/"): Promise<TopLevelEntry[]> {
  const out: TopLevelEntry[] = [];
  for (const name of await readdir(root)) {
    const st = await lstat(path.join(root, name));
    if (st.isSymbolicLink()) out.push({ name, symlink: await readlink(path.join(root, name)) });
    else if (st.isDirectory()) out.push({ name });
  }
  return out;
}

/** The project's image unpacked by hack/cluster/image-rootfs.sh, when the node runs from it. */
async function projectImage(bundle: string | undefined) {
  if (bundle === undefined) return undefined;
  const runtime = loadImageBundle(bundle);
  return { runtime, topLevel: imageTopLevel(runtime.rootfs, await topLevelEntries(runtime.rootfs)) };
}

/** Leftovers of an agent that did not shut down cleanly. */
async function cleanLeftovers(): Promise<void> {
  const list = await run("ip", ["netns", "list"]);
  for (const line of list.stdout.split("\n")) {
    const ns = line.split(" ")[0] ?? "";
    if (ns.startsWith("hasan-")) await deletePodNetwork({ netns: ns, hostVeth: `hsn${ns.slice(6)}` });
  }
  await removeRules();
}

async function main(): Promise<void> {
  const cfg = parseConfig(process.argv.slice(2));
  const log = createLogger("node-agent");
  const image = await projectImage(cfg.imageBundle);
  log.info(
    image ? { rootfs: image.runtime.rootfs, user: image.runtime.user } : { appRoot: cfg.appRoot },
    image ? "the project's image runs from its unpacked root" : "the project's image runs the repository",
  );
  const client = KubeClient.fromOptions({ kubeconfig: cfg.kubeconfig });
  await cleanLeftovers();
  await ensureHostRoutes(cfg.podCidr);

  const nodes = new Map<string, ManagedNode>();
  for (let i = 1; i <= cfg.nodes; i++) {
    const name = `${cfg.nodePrefix}-${i}`;
    const hb = new NodeHeartbeat(
      client,
      {
        name,
        index: i,
        internalIP: `127.0.10.${i}`,
        podCIDR: nodePodCidr(cfg.podCidr, i),
        zone: zones[(i - 1) % zones.length] ?? "zone-a",
        kubeletVersion: cfg.kubeletVersion,
        kubeletPort: cfg.kubeletPort,
      },
      log,
    );
    await hb.register();
    hb.start();
    nodes.set(name, { heartbeat: hb, failed: false, usedIPs: new Set() });
  }
  await ensureLocalStorage(
    client,
    [...nodes.keys()],
    cfg.pvsPerNode,
    cfg.pvSize,
    path.join(cfg.runDir, "volumes"),
  );

  const [apiHost, apiPort] = cfg.apiserver.split(":");
  const dnsIP = intToIp(parseCidr(cfg.serviceCidr).base + 10);
  await ensureDnsService(client, dnsIP);
  const cuts = new Map<string, [PodRef, PodRef]>();
  const cutKey = (a: PodRef, b: PodRef) =>
    [`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`].sort().join("|");

  const services: Reflector<Service> = new Reflector(
    client,
    "/api/v1/services",
    Service,
    () => proxy.changed(),
    log,
  );
  const slices: Reflector<EndpointSlice> = new Reflector(
    client,
    "/apis/discovery.k8s.io/v1/endpointslices",
    EndpointSlice,
    () => proxy.changed(),
    log,
  );
  const kubelet = new Kubelet(
    nodes,
    client,
    {
      client,
      runDir: cfg.runDir,
      appRoot: cfg.appRoot,
      ...(image ? { image } : {}),
      dnsIP,
      topLevel: await topLevelEntries(),
      sidecars: sidecarBinaries(cfg.appRoot),
      serviceEnv: (ns) =>
        serviceLinkEnv(
          [...services.store.values()]
            .filter(
              (s) =>
                s.metadata.namespace === ns ||
                (s.metadata.namespace === "default" && s.metadata.name === "kubernetes"),
            )
            .map((s) => ({
              name: s.metadata.name,
              clusterIP: s.spec.clusterIP ?? "",
              ports: (s.spec.ports ?? []).map((p) => ({
                ...(p.name ? { name: p.name } : {}),
                port: p.port,
                protocol: p.protocol ?? "TCP",
              })),
            })),
        ),
      networkChanged: () => proxy.changed(),
    },
    log,
  );
  const proxy: ServiceProxy = new ServiceProxy(
    {
      services: () => [...services.store.values()],
      slices: () => [...slices.store.values()],
      podIPs: () => kubelet.podIPs(),
      cutLinks: () =>
        [...cuts.values()].flatMap(([a, b]) => {
          const ia = kubelet.findPod(a.namespace, a.name)?.ip;
          const ib = kubelet.findPod(b.namespace, b.name)?.ip;
          return ia && ib ? [[ia, ib] as [string, string]] : [];
        }),
    },
    {
      "default/kubernetes:https": { ip: apiHost ?? "127.0.0.1", port: Number(apiPort) },
      [`${dnsServiceKey}:dns`]: { ip: "127.0.0.1", port: cfg.dnsPort },
    },
    cfg.serviceCidr,
    cfg.podCidr,
    log,
  );
  const pods: Reflector<Pod> = new Reflector(
    client,
    "/api/v1/pods",
    Pod,
    (kind, pod) => kubelet.onPod(kind, pod),
    log,
  );
  const pvs: Reflector<PersistentVolume> = new Reflector(
    client,
    "/api/v1/persistentvolumes",
    PersistentVolume,
    (kind, pv) => {
      if (kind === "upsert")
        void recyclePV(client, pv, log).catch((err) => log.warn({ err: String(err) }, "recycle failed"));
    },
    log,
  );
  // Claims on local PVs that ask for more storage are expanded here (local-pvs.ts).
  const claims = new Reflector(
    client,
    "/api/v1/persistentvolumeclaims",
    PersistentVolumeClaim,
    (kind, claim) => {
      if (kind === "upsert")
        void expandLocalClaim(client, claim as ClaimView, (n) => pvs.store.get(n), log).catch((err) =>
          log.warn({ err: String(err) }, "local volume expansion failed"),
        );
    },
    log,
  );
  for (const r of [services, slices, pvs, claims]) r.start();
  const dns = await startClusterDns(
    "127.0.0.1",
    cfg.dnsPort,
    { services: () => [...services.store.values()], slices: () => [...slices.store.values()] },
    log,
  );
  await Promise.all([services.hasSynced(), slices.hasSynced()]);
  await proxy.sync();
  pods.start();

  const server = await listen(
    controlApp(kubelet, {
      cut: (a, b) => {
        cuts.set(cutKey(a, b), [a, b]);
        proxy.changed();
      },
      restore: (a, b) => {
        cuts.delete(cutKey(a, b));
        proxy.changed();
      },
    }),
    cfg.controlPort,
    log,
  );
  const kubeletServers: HttpsServer[] = [];
  if (cfg.kubeletCert && cfg.kubeletKey) {
    for (const n of nodes.values()) {
      kubeletServers.push(
        await startKubeletServer(n.heartbeat.id.internalIP, cfg.kubeletPort, {
          runDir: cfg.runDir,
          cert: cfg.kubeletCert,
          key: cfg.kubeletKey,
          podRunning: (ns, pod) => kubelet.findPod(ns, pod) !== undefined,
          log,
        }),
      );
    }
  }
  log.info({ nodes: [...nodes.keys()] }, "node agent ready");

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    server.close();
    dns.close();
    for (const k of kubeletServers) k.close();
    for (const r of [pods, services, slices, pvs, claims]) r.stop();
    for (const n of nodes.values()) n.heartbeat.stop();
    await kubelet.shutdown();
    await removeRules();
    await removeHostRoutes(cfg.podCidr);
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

// One failed background step must not take every pod of every node down with the agent.
process.on("unhandledRejection", (err) => {
  console.error(JSON.stringify({ level: 50, msg: "unhandled rejection", err: String(err) }));
});

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
