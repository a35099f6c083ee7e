import { APP_TARGET, LABEL_APP, LABEL_NODE, LABEL_TARGET, type NodeName } from "./names.js";
import type { ObservedNode } from "./observed.js";
import { pairFacts, partnerOf, progressText } from "./facts.js";

export interface EvictedPod {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  phase?: string;
}

/** Live state of the pair the pod belongs to (agents asked just now). */
export interface PairLiveStatus {
  nodes: readonly [ObservedNode, ObservedNode];
  everSynchronized: boolean;
}

export interface EvictionDecision {
  allowed: boolean;
  /** 429 makes `kubectl drain` retry every 5 s instead of giving up */
  code?: 429;
  message: string;
}

const allow = (message: string): EvictionDecision => ({ allowed: true, message });
const deny = (message: string): EvictionDecision => ({ allowed: false, code: 429, message });

export function targetOfPod(pod: EvictedPod): { target: string; node: NodeName } | undefined {
  const node = pod.labels[LABEL_NODE];
  const target = pod.labels[LABEL_TARGET];
  if (pod.labels[LABEL_APP] !== APP_TARGET || !target || (node !== "a" && node !== "b")) return undefined;
  return { target, node };
}

/**
 * Whether evicting this pod now keeps the data safe and available. Denials explain what the drain
 * waits for; they clear by themselves once both nodes are Working.
 */
export function evictionDecision(pod: EvictedPod, pair: PairLiveStatus | undefined): EvictionDecision {
  const who = targetOfPod(pod);
  if (!who) return allow("not a hasan target pod");
  if (pod.phase && pod.phase !== "Running") return allow(`pod is ${pod.phase}: it serves nothing`);
  if (!pair) return allow(`no HASanTarget ${who.target} owns this pod`);
  const self = who.node;
  const partner = partnerOf(self);
  const f = pairFacts(pair.nodes);
  const mine = f.states[self];
  const theirs = f.states[partner];
  if (f.bothWorking) return allow("both nodes Working: the partner keeps serving");
  if (!f.serving.includes(self) && f.serving.includes(partner) && theirs === "Failed") {
    return allow(`node ${self} is not serving; node ${partner} serves alone`);
  }
  if (f.splitBrain) {
    return deny(`split brain between node a and node b: resolve it with spec.splitBrainResolution first`);
  }
  if (!pair.everSynchronized) {
    return deny(`pair has never been in sync yet (a: ${f.states.a}, b: ${f.states.b})`);
  }
  if (mine === "Failed") {
    return deny(`partner node ${partner} is down: evicting ${self} would lose the only copy`);
  }
  if (f.resyncing) return deny(`resync in flight: ${progressText(f)}`);
  if (mine === "Unknown" && theirs === "Unknown") {
    return deny("cannot read the state of either node; refusing until it is known");
  }
  if (mine === "Unknown") return deny(`state of node ${self} unknown while node ${partner} is ${theirs}`);
  return deny(`partner node ${partner} is ${theirs}: waiting for both nodes to be Working`);
}
