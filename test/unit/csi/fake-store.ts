import { KubeApiError } from "../../../operator/kit/kube-client.js";
import type { HASanTarget } from "../../../operator/api/target.js";
import type { ListedTarget, TargetStore } from "../../../operator/csi/controller/targets.js";
import type { TargetManifest } from "../../../operator/csi/controller/volume.js";
import type { VolumeRef } from "../../../operator/csi/controller/naming.js";

const key = (r: VolumeRef) => `${r.namespace}/${r.name}`;

/** HASanTargets in memory; `becomesReadyAfterGets` stands in for the operator bringing a pair up. */
export class FakeStore implements TargetStore {
  readonly targets = new Map<string, { t: HASanTarget; created: string }>();
  readonly writes: string[] = [];
  becomesReadyAfterGets = 0;
  private gets = 0;
  private seq = 0;

  async get(ref: VolumeRef): Promise<HASanTarget | undefined> {
    const e = this.targets.get(key(ref));
    if (e && !e.t.status && ++this.gets > this.becomesReadyAfterGets) e.t.status = readyStatus(e.t);
    return e ? structuredClone(e.t) : undefined;
  }

  async create(m: TargetManifest): Promise<HASanTarget> {
    this.writes.push(`create ${key(m.metadata)}`);
    if (this.targets.has(key(m.metadata))) throw new KubeApiError(409, "AlreadyExists", "exists", {});
    this.seq++;
    const t: HASanTarget = {
      ...structuredClone(m),
      metadata: {
        ...structuredClone(m.metadata),
        uid: `00000000-0000-0000-0000-${String(this.seq).padStart(12, "0")}`,
        resourceVersion: "1",
      },
    };
    this.gets = 0;
    this.targets.set(key(m.metadata), {
      t,
      created: `2030-01-01T00:00:${String(this.seq).padStart(2, "0")}Z`,
    });
    return structuredClone(t);
  }

  async setCapacity(t: HASanTarget, capacity: string): Promise<HASanTarget> {
    this.writes.push(`capacity ${key(t.metadata)} ${capacity}`);
    const e = this.targets.get(key(t.metadata))!;
    e.t.spec.capacity = capacity;
    return structuredClone(e.t);
  }

  async delete(t: HASanTarget): Promise<void> {
    this.writes.push(`delete ${key(t.metadata)}`);
    this.targets.delete(key(t.metadata));
  }

  async list(): Promise<ListedTarget[]> {
    return [...this.targets.values()]
      .filter((e) => e.t.metadata.labels?.["csi.hasan.dev/driver"] === "iscsi.hasan.dev")
      .map((e) => ({ target: structuredClone(e.t), created: e.created }));
  }

  async reachable() {
    return true;
  }

  /** Puts a HASanTarget there as someone else made it. */
  put(t: HASanTarget): void {
    this.targets.set(key(t.metadata), { t, created: "2029-12-31T00:00:00Z" });
  }
}

export function readyStatus(t: HASanTarget): HASanTarget["status"] {
  const c = (type: string) => ({
    type,
    status: "True" as const,
    reason: "BothNodesWorking",
    message: "both nodes Working",
    lastTransitionTime: "2030-01-01T00:00:00Z",
  });
  return {
    phase: "Ready",
    iqn: `iqn.2024-01.dev.hasan:${t.metadata.namespace}.${t.metadata.name}`,
    portals: ["10.214.0.10:3260", "10.214.0.11:3260"],
    conditions: [c("Ready"), c("Synchronized")],
  };
}
