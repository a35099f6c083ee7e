import type { AuthStatus } from "../api/status.js";
import type { TargetStatus } from "../../target/agent/status-schema.js";
import type { NodeName } from "./names.js";

/** What the operator saw of one node in this pass. */
export interface ObservedNode {
  name: NodeName;
  pod?: {
    name: string;
    nodeName?: string;
    phase?: string;
    ready: boolean;
    terminating: boolean;
  };
  /** Service clusterIP:3260, the node's stable portal */
  portal?: string;
  /** the agent's GET /status, validated; absent when it could not be read */
  agent?: TargetStatus;
  /** why agent is absent (connection refused, timeout, invalid body) */
  agentError?: string;
}

/** Everything conditionsFrom decides from. */
export interface ObservedPair {
  generation: number;
  nodes: [ObservedNode, ObservedNode];
  /** spec problems the API server cannot catch (missing secrets, sizes the target refuses) */
  specError?: string;
  /** the last apply of children failed */
  applyError?: string;
  /** the user asked to resolve a split brain */
  splitBrainDiscard?: NodeName;
  /** the Secret both pods mount for the peer link (for messages about a failed authentication) */
  peerSecret?: { name: string; generated: boolean };
  /** how initiators authenticate (auth.ts); absent when the spec could not be read */
  auth?: AuthStatus;
  /** where growing the LUN to spec.capacity stands (capacity-growth.ts) */
  capacity?: CapacityCondition;
}

/** What the Capacity condition says (stamped like the others by the status writer). */
export interface CapacityCondition {
  type: "Capacity";
  status: "True" | "False";
  reason: string;
  message: string;
}
