import type { KubeClient } from "../../operator/kit/kube-client.js";
import type { Pod } from "./kube/schemas.js";
import { allocateIP } from "./net/ip-alloc.js";
import type { NodeHeartbeat } from "./nodes/heartbeat.js";
import { finalizePod, PodWorker, type WorkerDeps } from "./pods/pod-worker.js";
import type { Logger } from "../../target/log.js";

export interface ManagedNode {
  heartbeat: NodeHeartbeat;
  failed: boolean;
  usedIPs: Set<string>;
}

type SharedDeps = Omit<WorkerDeps, "hostIP" | "allocateIP" | "releaseIP" | "log">;

/** Dispatches the pods bound to this agent's nodes to one worker each; fails and restores nodes. */
export class Kubelet {
  readonly workers = new Map<string, { worker: PodWorker; node: string }>();
  private readonly latest = new Map<string, Pod>();

  constructor(
    readonly nodes: Map<string, ManagedNode>,
    private readonly client: KubeClient,
    private readonly deps: SharedDeps,
    private readonly log: Logger,
  ) {}

  onPod(kind: "upsert" | "delete", pod: Pod): void {
    const nodeName = pod.spec.nodeName;
    const node = nodeName ? this.nodes.get(nodeName) : undefined;
    if (!nodeName || !node) return;
    const uid = pod.metadata.uid;
    const entry = this.workers.get(uid);
    if (kind === "delete") {
      this.latest.delete(uid);
      if (entry) {
        this.workers.delete(uid);
        void entry.worker.terminate(pod.spec.terminationGracePeriodSeconds ?? 30, false);
      }
      return;
    }
    this.latest.set(uid, pod);
    if (node.failed) return;
    if (entry) {
      entry.worker.update(pod);
      return;
    }
    const phase = pod.status?.phase;
    if (pod.metadata.deletionTimestamp) {
      // Nothing runs for it here (terminal, or its node was down): finalize at once.
      void finalizePod(
        this.client,
        pod,
        this.log.child({ pod: `${pod.metadata.namespace}/${pod.metadata.name}` }),
      );
      return;
    }
    if (phase === "Succeeded" || phase === "Failed") return;
    this.startWorker(pod, nodeName, node);
  }

  private startWorker(pod: Pod, nodeName: string, node: ManagedNode): void {
    const worker = new PodWorker(pod, {
      ...this.deps,
      log: this.log.child({ node: nodeName }),
      hostIP: node.heartbeat.id.internalIP,
      allocateIP: () => {
        const ip = allocateIP(node.heartbeat.id.podCIDR, node.usedIPs);
        if (!ip) throw new Error(`node ${nodeName}: pod address range exhausted`);
        node.usedIPs.add(ip);
        return ip;
      },
      releaseIP: (ip) => node.usedIPs.delete(ip),
    });
    this.workers.set(pod.metadata.uid, { worker, node: nodeName });
    void worker.start().then(() => {
      // A deletion that arrived while the worker was starting.
      const latest = this.latest.get(pod.metadata.uid);
      if (latest) worker.update(latest);
    });
  }

  /** Heartbeats stop and every process of the node dies at once, as in a power loss. */
  async failNode(name: string): Promise<void> {
    const node = this.mustNode(name);
    node.failed = true;
    node.heartbeat.stop();
    const victims = [...this.workers].filter(([, e]) => e.node === name);
    for (const [uid] of victims) this.workers.delete(uid);
    await Promise.all(victims.map(([, e]) => e.worker.kill()));
    this.log.warn({ node: name, pods: victims.length }, "node failed");
  }

  /** Heartbeats resume and the node's pods start again, as after a reboot. */
  async restoreNode(name: string): Promise<void> {
    const node = this.mustNode(name);
    if (!node.failed) return;
    node.failed = false;
    node.heartbeat.start(true);
    for (const pod of this.latest.values()) {
      if (pod.spec.nodeName === name) this.onPod("upsert", pod);
    }
    this.log.info({ node: name }, "node restored");
  }

  findPod(namespace: string, name: string): PodWorker | undefined {
    for (const { worker } of this.workers.values()) {
      const p = this.latest.get(worker.uid);
      if (p && p.metadata.namespace === namespace && p.metadata.name === name) return worker;
    }
    return undefined;
  }

  podIPs(): string[] {
    return [...this.workers.values()].flatMap(({ worker }) => (worker.network ? [worker.network.ip] : []));
  }

  async shutdown(): Promise<void> {
    await Promise.all(
      [...this.workers.values()].map(({ worker }) => worker.shutdown(5).catch(() => undefined)),
    );
    this.workers.clear();
  }

  private mustNode(name: string): ManagedNode {
    const node = this.nodes.get(name);
    if (!node) throw new Error(`unknown node ${name}`);
    return node;
  }
}
