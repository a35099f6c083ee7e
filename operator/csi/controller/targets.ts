import { HASanTargetSchema, type HASanTarget, API_VERSION, KIND } from "../../api/target.js";
import type { KubeClient } from "../../kit/kube-client.js";
import { DRIVER_NAME, LABEL_DRIVER } from "../driver.js";
import { describeZodError, internal } from "../errors.js";
import type { VolumeRef } from "./naming.js";
import type { TargetManifest } from "./volume.js";

/** The HASanTargets the controller service reads and writes: the only I/O it does. */
export interface TargetStore {
  get(ref: VolumeRef): Promise<HASanTarget | undefined>;
  /** Fails with the API's 409 when the name is taken. */
  create(m: TargetManifest): Promise<HASanTarget>;
  /** Sets spec.capacity if the target is still at resourceVersion (409 otherwise). */
  setCapacity(t: HASanTarget, capacity: string): Promise<HASanTarget>;
  /** Deletes that very target (by uid); a missing one counts as deleted. */
  delete(t: HASanTarget): Promise<void>;
  /** Every HASanTarget this driver created, with its creation time (ListVolumes' order). */
  list(): Promise<ListedTarget[]>;
  /** Whether the Kubernetes API answers (the Probe call). */
  reachable(): Promise<boolean>;
}

export interface ListedTarget {
  target: HASanTarget;
  created: string;
}

/** Objects from the API server are checked before use, as everywhere else in the operator. */
function parseTarget(obj: unknown): HASanTarget {
  const r = HASanTargetSchema.safeParse(obj);
  if (r.success) return r.data;
  const m = (obj as { metadata?: { namespace?: string; name?: string } }).metadata;
  throw internal(`HASanTarget ${m?.namespace}/${m?.name} does not parse: ${describeZodError(r.error)}`);
}

export class KubeTargetStore implements TargetStore {
  constructor(
    private readonly client: KubeClient,
    /** Limit ListVolumes to one namespace (undefined: all). */
    private readonly namespace?: string,
  ) {}

  async get(ref: VolumeRef): Promise<HASanTarget | undefined> {
    const obj = await this.client.getOrUndefined<unknown>(API_VERSION, KIND, ref.namespace, ref.name);
    return obj === undefined ? undefined : parseTarget(obj);
  }

  async create(m: TargetManifest): Promise<HASanTarget> {
    return parseTarget(await this.client.create(m, DRIVER_NAME));
  }

  async setCapacity(t: HASanTarget, capacity: string): Promise<HASanTarget> {
    const patch = { metadata: { resourceVersion: t.metadata.resourceVersion }, spec: { capacity } };
    return parseTarget(
      await this.client.mergePatch<unknown>(API_VERSION, KIND, t.metadata.namespace, t.metadata.name, patch),
    );
  }

  async delete(t: HASanTarget): Promise<void> {
    await this.client.delete(API_VERSION, KIND, t.metadata.namespace, t.metadata.name, {
      uid: t.metadata.uid,
    });
  }

  async list(): Promise<ListedTarget[]> {
    const r = await this.client.list<{ metadata?: { creationTimestamp?: unknown } }>(
      API_VERSION,
      KIND,
      this.namespace,
      { labelSelector: `${LABEL_DRIVER}=${DRIVER_NAME}` },
    );
    return r.items.map((o) => ({
      target: parseTarget(o),
      created: String(o.metadata?.creationTimestamp ?? ""),
    }));
  }

  async reachable(): Promise<boolean> {
    try {
      await this.client.request("GET", "/version", { timeoutMs: 5000 });
      return true;
    } catch {
      return false;
    }
  }
}
