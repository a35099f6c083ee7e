/**
 * Growing a pair's LUN when spec.capacity grows, without restarting a pod:
 * - the pods keep the `--size` they run with (`runningLunSizes`), so a capacity change leaves the
 *   pod template as it is (a restarted target serves its LUN file's size, which only grows);
 * - each backing PVC asks for the storage the new capacity needs; the expansion is applied on its
 *   own (`heldPvcExpansions`), so a StorageClass that refuses it says so in the Capacity condition
 *   instead of failing the apply of every other child;
 * - once both backing volumes hold the storage, one serving node's agent is asked to grow the LUN
 *   (`POST /capacity`); the pair grows both nodes in the order of its writes, or the node serving
 *   alone and its partner when it returns;
 * - the Capacity condition says where the growth stands; each node's status reports the LUN size
 *   it serves (node-status.ts).
 * `capacityDecision` is the pure part.
 */
import { z } from "zod";
export type { CapacityCondition } from "../pair/observed.js";
import { quantityBytes } from "../api/quantity.js";
import type { CapacityCondition, ObservedNode } from "../pair/observed.js";
import type { KubeObject } from "./desired-children.js";
import { NODE_NAMES, type NodeName } from "../pair/names.js";

/** One backing PVC as the decision needs it. */
export interface BackingVolume {
  /** storage the PVC asks for now (spec.resources.requests.storage) */
  requestedBytes?: number;
  /** storage the bound volume holds (status.capacity.storage) */
  capacityBytes?: number;
  /** why the API server refused to expand it, when it did */
  expansionRefused?: string;
}

export interface CapacityInput {
  /** spec.capacity in bytes */
  wantBytes: number;
  /** what each backing PVC must hold for it (storageSize) */
  storageBytes: number;
  nodes: readonly ObservedNode[];
  volumes: Partial<Record<NodeName, BackingVolume>>;
}

export type CapacityDecision =
  | { kind: "done"; condition: CapacityCondition }
  | { kind: "wait"; condition: CapacityCondition }
  | { kind: "grow"; node: NodeName; sizeBytes: number; condition: CapacityCondition };

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
export function bytesText(n: number): string {
  if (n % GiB === 0) return `${n / GiB}Gi`;
  if (n % MiB === 0) return `${n / MiB}Mi`;
  return `${n} bytes`;
}

function lunSizeOf(n: ObservedNode): number | undefined {
  return n.agent?.replication ? n.agent.sizeBytes : undefined;
}

/** What to do about the LUN's size in this pass: a pure function of the spec and what was observed. */
export function capacityDecision(i: CapacityInput): CapacityDecision {
  const want = bytesText(i.wantBytes);
  const sizes = i.nodes.map((n) => ({ n, size: lunSizeOf(n) }));
  const known = sizes.filter((s): s is { n: ObservedNode; size: number } => s.size !== undefined);
  const cond = (status: "True" | "False", reason: string, message: string): CapacityCondition => ({
    type: "Capacity",
    status,
    reason,
    message,
  });
  if (known.length === 2 && known.every((s) => s.size >= i.wantBytes)) {
    return { kind: "done", condition: cond("True", "Grown", `both nodes serve a LUN of ${want}`) };
  }
  if (known.length === 0) {
    return { kind: "wait", condition: cond("False", "NodesUnknown", "no node reports its LUN size yet") };
  }
  // The backing volumes first: the LUN may grow only when both can hold it.
  const short: string[] = [];
  for (const name of NODE_NAMES) {
    const v = i.volumes[name];
    if (v?.expansionRefused) {
      return {
        kind: "wait",
        condition: cond(
          "False",
          "VolumeExpansionRefused",
          `the backing PVC of node ${name} cannot grow to hold ${want}: ${v.expansionRefused}`,
        ),
      };
    }
    if (v?.capacityBytes === undefined || v.capacityBytes < i.storageBytes) short.push(name);
  }
  if (short.length > 0) {
    return {
      kind: "wait",
      condition: cond(
        "False",
        "VolumeExpanding",
        `waiting for the backing PVC of node ${short.join(" and ")} to hold ${bytesText(i.storageBytes)} before the LUN grows to ${want}`,
      ),
    };
  }
  const serving = known.filter((s) => s.n.agent?.replication?.serving);
  const grown = serving.filter((s) => s.size >= i.wantBytes);
  if (serving.length > 0 && grown.length === serving.length) {
    const down = i.nodes.filter((n) => !serving.some((s) => s.n.name === n.name)).map((n) => n.name);
    return {
      kind: "wait",
      condition: cond(
        "False",
        "PartnerGrowsOnReturn",
        `the LUN holds ${want} on the serving node; node ${down.join(" and ")} grows when it rejoins its partner`,
      ),
    };
  }
  // Ask a serving node, the one sequencing writes first (it grows the pair without forwarding).
  const ask =
    serving.find((s) => s.n.agent?.replication?.alua?.[s.n.name] === "active/optimized") ?? serving[0];
  if (!ask) {
    return {
      kind: "wait",
      condition: cond("False", "NoServingNode", `no node serves I/O; the LUN grows to ${want} once one does`),
    };
  }
  return {
    kind: "grow",
    node: ask.n.name,
    sizeBytes: i.wantBytes,
    condition: cond("False", "Growing", `growing the LUN from ${bytesText(ask.size)} to ${want}`),
  };
}

/** The `--size` each existing pod runs with, so that desiredChildren keeps it (no roll on growth). */
export function runningLunSizes(pods: Partial<Record<NodeName, unknown>>): Partial<Record<NodeName, string>> {
  const out: Partial<Record<NodeName, string>> = {};
  for (const n of NODE_NAMES) {
    const parsed = PodArgsSchema.safeParse(pods[n]);
    if (!parsed.success) continue;
    const args = parsed.data.spec.containers.find((c) => c.name === "target")?.args ?? [];
    const at = args.indexOf("--size");
    const value = at >= 0 ? args[at + 1] : undefined;
    if (value !== undefined && /^[0-9]+$/.test(value)) out[n] = value;
  }
  return out;
}

const PodArgsSchema = z.object({
  spec: z.object({
    containers: z.array(z.object({ name: z.string(), args: z.array(z.string()).optional() })),
  }),
});

const PvcSchema = z.object({
  metadata: z.object({ name: z.string(), labels: z.record(z.string(), z.string()).optional() }),
  spec: z
    .object({
      resources: z
        .object({ requests: z.object({ storage: z.union([z.string(), z.number()]) }).partial() })
        .partial()
        .optional(),
    })
    .optional(),
  status: z
    .object({ capacity: z.object({ storage: z.union([z.string(), z.number()]) }).partial() })
    .partial()
    .optional(),
});

function bytesOrUndefined(q: string | number | undefined): number | undefined {
  if (q === undefined) return undefined;
  try {
    return quantityBytes(q);
  } catch {
    return undefined;
  }
}

/** A live PVC's requested and held storage. */
export function volumeOf(live: unknown): BackingVolume | undefined {
  const p = PvcSchema.safeParse(live);
  if (!p.success) return undefined;
  const v: BackingVolume = {};
  const requested = bytesOrUndefined(p.data.spec?.resources?.requests?.storage);
  const held = bytesOrUndefined(p.data.status?.capacity?.storage);
  if (requested !== undefined) v.requestedBytes = requested;
  if (held !== undefined) v.capacityBytes = held;
  return v;
}

/**
 * The desired PVCs that ask for more storage than their live PVC: applied on their own, so a
 * refused expansion is reported in the Capacity condition and stops nothing else.
 */
export function heldPvcExpansions(
  desired: readonly KubeObject[],
  live: (name: string) => unknown,
): Set<KubeObject> {
  const held = new Set<KubeObject>();
  for (const d of desired) {
    if (d.kind !== "PersistentVolumeClaim") continue;
    const now = volumeOf(live(d.metadata.name));
    const want = bytesOrUndefined(
      (d as { spec?: { resources?: { requests?: { storage?: string | number } } } }).spec?.resources?.requests
        ?.storage,
    );
    if (now?.requestedBytes !== undefined && want !== undefined && want > now.requestedBytes) held.add(d);
  }
  return held;
}

export const CapacityReplySchema = z.object({
  ok: z.literal(true),
  sizeBytes: z.number().int().positive(),
  grew: z.boolean(),
  message: z.string(),
});

/** POST /capacity on an agent; resolves with its message, rejects with its reason. */
export async function postCapacity(
  baseUrl: string,
  sizeBytes: number,
  headers: Record<string, string>,
  timeoutMs = 30_000,
): Promise<{ status: number; message: string }> {
  const res = await fetch(`${baseUrl}/capacity`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ sizeBytes }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body: unknown = await res.json().catch(() => ({}));
  const ok = CapacityReplySchema.safeParse(body);
  if (res.ok && ok.success) return { status: res.status, message: ok.data.message };
  const error = z.object({ error: z.string() }).safeParse(body);
  return { status: res.status, message: error.success ? error.data.error : `answered ${res.status}` };
}
