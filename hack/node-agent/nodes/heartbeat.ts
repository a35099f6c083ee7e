import { randomUUID } from "node:crypto";
import { PATCH, isNotFound, type KubeClient } from "../../../operator/kit/kube-client.js";
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
    const existing = await this.client.getParsed(Node, `/api/v1/nodes/${this.id.name}`);
    const manifest = nodeManifest(this.id);
    const node = existing
      ? await this.client.parsed(Node, "PATCH", `/api/v1/nodes/${this.id.name}`, {
          body: manifest,
          contentType: PATCH.merge,
        })
      : await this.client.parsed(Node, "POST", "/api/v1/nodes", { body: manifest });
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
        await this.client.request("PATCH", `/api/v1/nodes/${this.id.name}/status`, {
          body: { status: nodeStatus(this.id, now, this.bootID) },
          contentType: PATCH.strategic,
        });
        this.lastStatus = now.getTime();
      }
    } catch (err) {
      if (isNotFound(err)) await this.register().catch(() => undefined);
      this.log.warn({ err: String(err), node: this.id.name }, "heartbeat failed");
    }
  }

  private async renewLease(now: Date): Promise<void> {
    const path = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${this.id.name}`;
    const lease = leaseManifest(this.id.name, this.uid, now);
    try {
      await this.client.request("PATCH", path, {
        body: { spec: (lease as { spec: unknown }).spec },
        contentType: PATCH.merge,
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.client.request("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
        body: lease,
      });
    }
  }
}
