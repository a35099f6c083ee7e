import { z } from "zod";
import {
  NODE_NAMES,
  PORT_AGENT,
  PORT_ISCSI,
  childName,
  type NodeName,
  type TargetMeta,
} from "../pair/names.js";
import type { AgentRead } from "./agent-client.js";
import type { ObservedNode } from "../pair/observed.js";

const ViewMeta = z.looseObject({
  name: z.string(),
  namespace: z.string(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  deletionTimestamp: z.string().optional(),
  ownerReferences: z.array(z.looseObject({ uid: z.string() })).optional(),
});

/** Any namespaced object, by its metadata (the PVCs and Leases the controller watches). */
export const ObjectViewSchema = z.looseObject({ metadata: ViewMeta });
export type ObjectView = z.infer<typeof ObjectViewSchema>;

/** How the controller's cache reads a Pod (PodView). */
export const PodViewSchema: z.ZodType<PodView> = z.looseObject({
  metadata: ViewMeta,
  spec: z.looseObject({ nodeName: z.string().optional() }).optional(),
  status: z
    .looseObject({
      phase: z.string().optional(),
      podIP: z.string().optional(),
      conditions: z.array(z.looseObject({ type: z.string(), status: z.string() })).optional(),
    })
    .optional(),
});

/** How the controller's cache reads a Service (ServiceView). */
export const ServiceViewSchema: z.ZodType<ServiceView> = z.looseObject({
  metadata: ViewMeta,
  spec: z.looseObject({ clusterIP: z.string().optional() }).optional(),
});

/** The parts of a core/v1 Pod the operator reads. */
export interface PodView {
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
    ownerReferences?: { uid: string }[];
  };
  spec?: { nodeName?: string };
  status?: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
}

export interface ServiceView {
  metadata: { name: string; namespace: string; labels?: Record<string, string> };
  spec?: { clusterIP?: string };
}

export type AgentAddressMode = "pod" | "service";

/** Base URL of a node's agent: the pod IP (direct) or the Service clusterIP (through the Service). */
export function agentUrl(
  mode: AgentAddressMode,
  pod: PodView | undefined,
  serviceIP: string | undefined,
): string | undefined {
  if (mode === "service") return serviceIP ? `http://${serviceIP}:${PORT_AGENT}` : undefined;
  const ip = pod?.status?.podIP;
  return ip ? `http://${ip}:${PORT_AGENT}` : undefined;
}

export function podReady(pod: PodView): boolean {
  return !!pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
}

/** One node's observation from its pod, its Service IP and what its agent said. */
export function observeNode(
  name: NodeName,
  pod: PodView | undefined,
  serviceIP: string | undefined,
  read?: AgentRead,
): ObservedNode {
  const n: ObservedNode = { name };
  if (pod) {
    n.pod = {
      name: pod.metadata.name,
      ready: podReady(pod),
      terminating: !!pod.metadata.deletionTimestamp,
    };
    if (pod.spec?.nodeName) n.pod.nodeName = pod.spec.nodeName;
    if (pod.status?.phase) n.pod.phase = pod.status.phase;
  }
  if (serviceIP) n.portal = `${serviceIP}:${PORT_ISCSI}`;
  if (read?.ok) n.agent = read.status;
  else if (read) n.agentError = read.error;
  return n;
}

/** Reads an agent only for a pod that can answer (scheduled, running, not gone). */
export function shouldReadAgent(pod: PodView | undefined): boolean {
  return !!pod && pod.status?.phase === "Running" && !!pod.status.podIP;
}

type Maybe<T> = T | undefined | Promise<T | undefined>;

/** Where a pair's pods and Services are read from: the controller's caches, or the API server now. */
export interface PairChildSource {
  pod(namespace: string, name: string): Maybe<PodView>;
  service(namespace: string, name: string): Maybe<ServiceView>;
}

/** A pair's pods and Service clusterIPs, by node. */
export interface PairChildren {
  pods: Partial<Record<NodeName, PodView>>;
  serviceIPs: Partial<Record<NodeName, string>>;
}

/** Reads both nodes' pods and Services; a headless Service ("None") gives no IP. */
export async function readPairChildren(source: PairChildSource, meta: TargetMeta): Promise<PairChildren> {
  const children: PairChildren = { pods: {}, serviceIPs: {} };
  await Promise.all(
    NODE_NAMES.map(async (n) => {
      const [pod, service] = await Promise.all([
        source.pod(meta.namespace, childName.pod(meta, n)),
        source.service(meta.namespace, childName.service(meta, n)),
      ]);
      const ip = service?.spec?.clusterIP;
      if (ip && ip !== "None") children.serviceIPs[n] = ip;
      if (pod) children.pods[n] = pod;
    }),
  );
  return children;
}

/**
 * Observes both nodes of a pair: each node's pod and portal, and what its agent says (asked only
 * where a pod can answer, through readAgent).
 */
export async function observePair(
  children: PairChildren,
  agentAddress: AgentAddressMode,
  readAgent: (url: string) => Promise<AgentRead>,
): Promise<[ObservedNode, ObservedNode]> {
  const { pods, serviceIPs } = children;
  const reads = await Promise.all(
    NODE_NAMES.map(async (n): Promise<AgentRead | undefined> => {
      const url = agentUrl(agentAddress, pods[n], serviceIPs[n]);
      if (!url || !shouldReadAgent(pods[n])) return undefined;
      return await readAgent(url);
    }),
  );
  return NODE_NAMES.map((n, i) => observeNode(n, pods[n], serviceIPs[n], reads[i])) as [
    ObservedNode,
    ObservedNode,
  ];
}
