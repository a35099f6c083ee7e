import type { NodeStatus, PairNodeState } from "../api/status.js";
import type { ObservedNode } from "./observed.js";

/** The pair state of one node; Standalone (no replication) and unreadable agents count as Unknown. */
export function nodeState(n: ObservedNode): PairNodeState {
  if (!n.agent) return "Unknown";
  const s = n.agent.replication?.state ?? n.agent.state;
  return s === "Standalone" ? "Unknown" : s;
}

/** Whether the node accepts I/O right now, as the node itself reports it. */
export function nodeServing(n: ObservedNode): boolean {
  if (!n.agent) return false;
  if (n.agent.replication) return n.agent.replication.serving;
  return false;
}

/** Why a node has no agent status: the pod's own story first, then the agent's error. */
export function whyUnknown(n: ObservedNode): string {
  if (!n.pod) return `pod of node ${n.name} does not exist`;
  if (n.pod.terminating) return `pod ${n.pod.name} is terminating`;
  if (n.pod.phase && n.pod.phase !== "Running") return `pod ${n.pod.name} is ${n.pod.phase}`;
  return n.agentError
    ? `agent of ${n.pod.name} unreachable: ${n.agentError}`
    : `agent of ${n.pod.name} not read yet`;
}

export function nodeStatusOf(n: ObservedNode): NodeStatus {
  const out: NodeStatus = { name: n.name, state: nodeState(n) };
  if (n.pod) out.pod = n.pod.name;
  if (n.pod?.nodeName) out.nodeName = n.pod.nodeName;
  if (n.portal) out.portal = n.portal;
  const rep = n.agent?.replication;
  if (rep) {
    out.generation = rep.generation;
    out.outOfSyncBytes = rep.outOfSyncBytes;
    if (n.agent) out.lunSizeBytes = n.agent.sizeBytes;
    if (rep.peer.connected && rep.peer.records)
      out.linkRecords = rep.peer.records === "authenticated" ? "Authenticated" : "Encrypted";
    if (rep.resync) {
      out.resync = {
        doneBytes: rep.resync.doneBytes,
        totalBytes: rep.resync.totalBytes,
        bytesPerSecond: rep.resync.bytesPerSecond,
      };
      if (rep.resync.etaSeconds !== null) out.resync.etaSeconds = rep.resync.etaSeconds;
    }
    out.message = rep.message;
  } else {
    out.message = n.agent ? "target runs without replication" : whyUnknown(n);
  }
  return out;
}
