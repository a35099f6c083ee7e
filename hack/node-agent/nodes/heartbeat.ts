import { randomUUID } from "node:crypto";
import { ApiError, type KubeClient } from "../kube/client.js";
import { Node } from "../kube/schemas.js";
import { leaseManifest, nodeManifest, nodeStatus, type NodeIdentity } from "./node-object.js";
import type { Logger } from "../../../target/log.js";

const leaseRenewMs = 5_000;
const statusEveryMs = 10_000;

/** Registers one node and keeps its Lease and status fresh while it is "up". */
export class NodeHeartbeat {
  private timer: NodeJS.Timeout | undefined;
  private uid = "";
  private bootID = randomUUID();
  private lastStatus = 0;

  constructor(
    private readonly client: KubeClient,
    readonly id: NodeIdentity,
    private readonly log: Logger,
  ) {}

  get up(): boolean {
    return this.timer !== undefined;
  }

  async register(): Promise<void> {
    const existing = await this.client.get(Node, `/api/v1/nodes/${this.id.name}`);
    const manifest = nodeManifest(this.id);
    const node = existing
      ? await this.client.request(Node, "PATCH", `/api/v1/nodes/${this.id.name}`, manifest, "merge")
      : await this.client.request(Node, "POST", "/api/v1/nodes", manifest);
    this.uid = node.metadata.uid;
  }

  /** Starts heartbeats; a restart after a failure looks like a reboot (new boot ID). */
  start(reboot = false): void {
    if (this.timer) return;
    if (reboot) this.bootID = randomUUID();
    this.lastStatus = 0;
    const beat = () => void this.beat();
    this.timer = setInterval(beat, leaseRenewMs);
    beat();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async beat(): Promise<void> {
    const now = new Date();
    try {
      await this.renewLease(now);
      if (now.getTime() - this.lastStatus >= statusEveryMs) {
        await this.client.raw(
          "PATCH",
          `/api/v1/nodes/${this.id.name}/status`,
          { status: nodeStatus(this.id, now, this.bootID) },
          "strategic",
        );
        this.lastStatus = now.getTime();
      }
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) await this.register().catch(() => undefined);
      this.log.warn({ err: String(err), node: this.id.name }, "heartbeat failed");
    }
  }

  private async renewLease(now: Date): Promise<void> {
    const path = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${this.id.name}`;
    const lease = leaseManifest(this.id.name, this.uid, now);
    try {
      await this.client.raw("PATCH", path, { spec: (lease as { spec: unknown }).spec }, "merge");
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
      await this.client.raw("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease);
    }
  }
}
