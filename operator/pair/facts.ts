import type { PairNodeState } from "../api/status.js";
import type { NodeName } from "./names.js";
import { formatBytes, formatDuration, percent } from "./format.js";
import { nodeServing, nodeState, whyUnknown } from "./node-status.js";
import type { ObservedNode } from "./observed.js";

/** Derived facts about a pair, shared by conditions, the phase and the eviction decision. */
export interface PairFacts {
  states: Record<NodeName, PairNodeState>;
  bothWorking: boolean;
  splitBrain: boolean;
  resyncing: boolean;
  serving: NodeName[];
  /** resync progress, from the node that reports it */
  resync?: { from: NodeName; to: NodeName; done: number; total: number; rate: number; eta: number | null };
}

export function partnerOf(n: NodeName): NodeName {
  return n === "a" ? "b" : "a";
}

export function pairFacts(nodes: readonly [ObservedNode, ObservedNode]): PairFacts {
  const states = { a: nodeState(nodes[0]), b: nodeState(nodes[1]) };
  const serving = nodes.filter(nodeServing).map((n) => n.name);
  const facts: PairFacts = {
    states,
    bothWorking: states.a === "Working" && states.b === "Working",
    splitBrain: states.a === "SplitBrain" || states.b === "SplitBrain",
    resyncing: [states.a, states.b].some((s) => s === "Synchronizing" || s === "Pending"),
    serving,
  };
  for (const n of nodes) {
    const r = n.agent?.replication?.resync;
    if (!r) continue;
    const state = states[n.name];
    const from = state === "Pending" ? partnerOf(n.name) : n.name;
    facts.resync = {
      from,
      to: partnerOf(from),
      done: r.doneBytes,
      total: r.totalBytes,
      rate: r.bytesPerSecond,
      eta: r.etaSeconds,
    };
    if (state === "Synchronizing") break; // the sender's view wins
  }
  return facts;
}

/** "43% done, about 2m left" */
export function progressText(f: PairFacts): string {
  if (!f.resync) return "progress not reported yet";
  const pct = percent(f.resync.done, f.resync.total);
  const eta = f.resync.eta === null ? "time left unknown" : `about ${formatDuration(f.resync.eta)} left`;
  return `${pct}% done, ${eta}`;
}

/** "node a → node b: 43% done (40 MiB of 93 MiB) at 12 MiB/s, about 2m left" */
export function resyncText(f: PairFacts): string {
  if (!f.resync) return "resync starting; progress not reported yet";
  const r = f.resync;
  return (
    `node ${r.from} → node ${r.to}: ${percent(r.done, r.total)}% done (${formatBytes(r.done)} of ` +
    `${formatBytes(r.total)}) at ${formatBytes(r.rate)}/s, ` +
    (r.eta === null ? "time left unknown" : `about ${formatDuration(r.eta)} left`)
  );
}

/** "node b lost 12s ago; node a serving alone; 40 MiB out of sync" */
export function lostPartnerText(survivor: ObservedNode, lost: ObservedNode): string {
  const peer = survivor.agent?.replication?.peer;
  const when =
    peer?.lastHeardMs === null || peer?.lastHeardMs === undefined
      ? "unreachable"
      : `lost ${formatDuration(peer.lastHeardMs / 1000)} ago`;
  const rep = survivor.agent?.replication;
  const behind = rep?.outOfSyncBytes ?? 0;
  const alone = rep?.serving
    ? `node ${survivor.name} serving alone`
    : `node ${survivor.name} not serving either (${rep?.message ?? "no status"})`;
  const parts = [`node ${lost.name} ${when}`, alone, `${formatBytes(behind)} out of sync`];
  if (!lost.agent) parts.push(whyUnknown(lost));
  return parts.join("; ");
}
