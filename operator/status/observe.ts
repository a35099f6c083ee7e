import type { NodeName } from "../pair/names.js";
import { PORT_AGENT, PORT_ISCSI } from "../pair/names.js";
import type { AgentRead } from "./agent-client.js";
import type { ObservedNode } from "../pair/observed.js";

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
