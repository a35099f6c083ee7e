import type { Condition, ConditionType, HASanTargetStatus, NodeStatus, Phase } from "../api/status.js";
import { formatBytes, percent } from "../pair/format.js";
import { nodeStatusOf, whyUnknown } from "../pair/node-status.js";
import type { ObservedNode, ObservedPair } from "../pair/observed.js";
import { lostPartnerText, pairFacts, resyncText, type PairFacts } from "../pair/facts.js";

/** A condition before it is stamped with a transition time. */
export interface ConditionDraft {
  type: ConditionType;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
}

export interface PairStatus {
  phase: Phase;
  conditions: ConditionDraft[];
  nodes: NodeStatus[];
  syncProgress: string;
}

const draft = (
  type: ConditionType,
  status: ConditionDraft["status"],
  reason: string,
  message: string,
): ConditionDraft => ({ type, status, reason, message });

/** The first node found in one of the given states. */
function nodeIn(nodes: readonly ObservedNode[], f: PairFacts, ...states: string[]): ObservedNode | undefined {
  return nodes.find((n) => states.includes(f.states[n.name]));
}

function degradedText(nodes: readonly [ObservedNode, ObservedNode], f: PairFacts): string | undefined {
  const survivor = nodeIn(nodes, f, "Failed");
  if (survivor)
    return lostPartnerText(
      survivor,
      nodes.find((n) => n !== survivor)!,
    );
  const unknown = nodes.find((n) => f.states[n.name] === "Unknown");
  if (unknown) return `node ${unknown.name} state unknown: ${whyUnknown(unknown)}`;
  return undefined;
}

/**
 * Why the partners refuse each other's peer link, and what to check, when a node reports an
 * authentication failure (undefined otherwise). Stable while the failure lasts (no counts or
 * ages), so it does not make a status write per pass.
 */
export function peerAuthText(o: ObservedPair): string | undefined {
  const failing = o.nodes.flatMap((n) => {
    const e = n.agent?.replication?.peer.authError;
    return e ? [{ node: n, e }] : [];
  });
  const first = failing.find((x) => x.e.kind === "secret") ?? failing[0];
  if (!first) return undefined;
  const who =
    failing.length > 1
      ? "nodes a and b refuse each other's peer link"
      : `node ${first.node.name} refuses the peer link of node ${first.node.name === "a" ? "b" : "a"}`;
  const what = `${who} since ${first.e.since}: ${first.e.reason}`;
  if (first.e.kind === "version")
    return `${what}; run the same hasan image on both pods (spec.pod.image), then delete the older pod`;
  if (first.e.kind === "identity") return `${what}; check the --node and --peer arguments of both pods`;
  const s = o.peerSecret;
  const secret = s ? `Secret ${s.name} (key 'secret')` : "the peer Secret (key 'secret')";
  const origin = s?.generated
    ? "generated once by the operator and never rewritten"
    : "from spec.replication.peerSecretRef";
  return (
    `${what}. Both pods must mount the same value of ${secret}, ${origin}: a pod keeps the value ` +
    `it read until its kubelet refreshes the volume (each node then accepts the old and the new ` +
    `value for 10 minutes); check that the Secret was not replaced, and delete the pod that holds ` +
    `the older value so that it restarts with the current one`
  );
}

function splitBrainText(o: ObservedPair): string {
  if (o.splitBrainDiscard) {
    return `resolution requested: discarding node ${o.splitBrainDiscard}'s changes since the split; a resync follows`;
  }
  return (
    "both nodes took writes while apart; inspect status.nodes and set spec.splitBrainResolution.discard " +
    "to the node whose changes should be thrown away"
  );
}

/**
 * Conditions are decided worst-first: the first matching case wins, so a condition always carries the
 * most severe reason that applies (e.g. SplitBrain beats PartnerLost beats Resyncing).
 */
function ready(o: ObservedPair, f: PairFacts): ConditionDraft {
  const t = "Ready";
  if (o.specError) return draft(t, "False", "InvalidSpec", o.specError);
  if (o.applyError) return draft(t, "False", "ApplyFailed", `cannot apply children: ${o.applyError}`);
  if (f.serving.length === 0) {
    if (f.splitBrain) return draft(t, "False", "SplitBrain", splitBrainText(o));
    const waiting = o.nodes.filter((n) => !n.agent);
    if (waiting.length > 0) {
      return draft(t, "False", "NodesNotRunning", `no node serving: ${waiting.map(whyUnknown).join("; ")}`);
    }
    return draft(t, "False", "NoNodeServing", `no node serves I/O (a: ${f.states.a}, b: ${f.states.b})`);
  }
  if (f.serving.length === 1) {
    const [only] = f.serving;
    return draft(
      t,
      "True",
      "OneNodeServing",
      `node ${only} serves I/O; node ${only === "a" ? "b" : "a"} does not`,
    );
  }
  return draft(t, "True", "BothNodesServing", "both nodes serve I/O");
}

function synchronized(o: ObservedPair, f: PairFacts, everSynchronized: boolean): ConditionDraft {
  const t = "Synchronized";
  if (f.bothWorking) return draft(t, "True", "InSync", "both nodes hold the same data; writes are mirrored");
  let reason: string;
  let message: string;
  const auth = peerAuthText(o);
  if (f.splitBrain) [reason, message] = ["SplitBrain", splitBrainText(o)];
  else if (auth) [reason, message] = ["PeerAuthenticationFailed", auth];
  else if (f.resyncing) [reason, message] = ["Resyncing", `resync in flight: ${resyncText(f)}`];
  else [reason, message] = ["PartnerLost", degradedText(o.nodes, f) ?? `a: ${f.states.a}, b: ${f.states.b}`];
  if (!everSynchronized)
    return draft(t, "False", "NotYetSynchronized", `pair has never been in sync yet; ${message}`);
  return draft(t, "False", reason, message);
}

function degraded(o: ObservedPair, f: PairFacts, everSynchronized: boolean): ConditionDraft {
  const t = "Degraded";
  if (f.bothWorking) return draft(t, "False", "BothNodesWorking", "both nodes Working");
  if (f.splitBrain) return draft(t, "True", "SplitBrain", splitBrainText(o));
  const auth = peerAuthText(o);
  if (auth) return draft(t, "True", "PeerAuthenticationFailed", auth);
  const lost = degradedText(o.nodes, f);
  if (lost && (everSynchronized || f.serving.length > 0)) return draft(t, "True", "NodeLost", lost);
  if (f.resyncing)
    return draft(t, "True", "Resyncing", `no redundancy until resync completes: ${resyncText(f)}`);
  return draft(t, "False", "Provisioning", "the pair has not formed yet");
}

function resyncing(f: PairFacts): ConditionDraft {
  const t = "Resyncing";
  if (f.resyncing) return draft(t, "True", "ResyncInProgress", resyncText(f));
  return draft(t, "False", "NoResync", "no resync in progress");
}

function disruptionAllowed(o: ObservedPair, f: PairFacts, everSynchronized: boolean): ConditionDraft {
  const t = "DisruptionAllowed";
  if (f.bothWorking) return draft(t, "True", "BothNodesWorking", "one node at a time may be evicted");
  if (f.splitBrain) return draft(t, "False", "SplitBrain", "split brain: evictions wait for its resolution");
  if (!everSynchronized) return draft(t, "False", "NotYetSynchronized", "pair has never been in sync yet");
  if (f.resyncing) return draft(t, "False", "ResyncInProgress", `resync in flight: ${resyncText(f)}`);
  const lost = degradedText(o.nodes, f);
  return draft(
    t,
    "False",
    "NodeLost",
    lost ? `${lost}: evicting would lose the only copy` : "pair not Working",
  );
}

function splitBrain(o: ObservedPair, f: PairFacts): ConditionDraft {
  const t = "SplitBrain";
  if (f.splitBrain) {
    return draft(
      t,
      "True",
      o.splitBrainDiscard ? "ResolutionRequested" : "SplitBrainDetected",
      splitBrainText(o),
    );
  }
  return draft(t, "False", "NoSplitBrain", "the nodes agree on their history");
}

/** Reason of AuthenticationRequired=False; also the reason of its Warning Event. */
export const CHAP_DISABLED = "ChapDisabled";
/** Reason of AuthenticationRequired=False for a target kept without CHAP across the upgrade. */
export const CHAP_NOT_CONFIGURED = "ChapNotConfigured";

/** Whether initiators must authenticate, and with which Secret (status.auth says the same). */
function authenticationRequired(o: ObservedPair): ConditionDraft | undefined {
  const t = "AuthenticationRequired";
  const a = o.auth;
  if (!a) return undefined;
  if (a.mode === "Disabled" && a.keptOpen) {
    return draft(
      t,
      "False",
      CHAP_NOT_CONFIGURED,
      "this target was made before CHAP became the default and stays without it so its initiators keep " +
        "logging in: any initiator that reaches the portals logs in without credentials; set " +
        "spec.auth.chap: Required to have CHAP credentials generated (give them to your initiators, and " +
        "recreate an exported PV), or spec.auth.chap: Disabled to keep it open knowingly",
    );
  }
  if (a.mode === "Disabled") {
    return draft(
      t,
      "False",
      CHAP_DISABLED,
      "spec.auth.chap is Disabled: any initiator that reaches the portals logs in without credentials; " +
        "remove spec.auth.chap to have CHAP credentials generated, and restrict the Services with a NetworkPolicy",
    );
  }
  const how = a.mode === "MutualCHAP" ? "mutual CHAP" : "CHAP";
  const where = a.generated
    ? `the credentials in Secret ${a.chapSecretName}, generated once by the operator`
    : `the credentials in Secret ${a.chapSecretName} (spec.auth.chapSecretRef)`;
  return draft(
    t,
    "True",
    a.generated ? "ChapGenerated" : "ChapSecret",
    `initiators log in with ${how}: ${where}`,
  );
}

/**
 * The Warning Event for CHAP turned off: when AuthenticationRequired becomes False (or first
 * appears False), never again while it stays so.
 */
export function authDisabledEvent(
  previous: readonly Condition[] | undefined,
  next: readonly Condition[],
): { reason: string; message: string } | undefined {
  const now = next.find((c) => c.type === "AuthenticationRequired");
  if (!now || now.status !== "False") return undefined;
  const before = previous?.find((c) => c.type === "AuthenticationRequired");
  if (before?.status === "False") return undefined;
  return { reason: now.reason, message: now.message };
}

/** Ready reasons that need the user: each new one (or a new message) becomes a Warning Event. */
const READY_PROBLEMS = new Set(["InvalidSpec", "ApplyFailed"]);

/** The Warning Event to record when Ready turns to InvalidSpec or ApplyFailed, or its message changes. */
export function readyProblemEvent(
  previous: readonly Condition[] | undefined,
  next: readonly Condition[],
): { reason: string; message: string } | undefined {
  const now = next.find((c) => c.type === "Ready");
  if (!now || now.status !== "False" || !READY_PROBLEMS.has(now.reason)) return undefined;
  const before = previous?.find((c) => c.type === "Ready");
  if (before?.reason === now.reason && before.message === now.message) return undefined;
  return { reason: now.reason, message: now.message };
}

function phaseOf(o: ObservedPair, f: PairFacts): Phase {
  if (f.splitBrain) return "SplitBrain";
  if (f.bothWorking) return "Ready";
  if (f.resyncing) return "Resyncing";
  if (f.serving.length > 0) return "Degraded";
  if (o.specError || o.nodes.some((n) => !n.pod || n.pod.phase === "Pending")) return "Pending";
  return "Unavailable";
}

function syncProgressOf(f: PairFacts, nodes: readonly ObservedNode[]): string {
  if (f.bothWorking) return "100%";
  if (f.resyncing && f.resync) return `${percent(f.resync.done, f.resync.total)}%`;
  const behind = Math.max(0, ...nodes.map((n) => n.agent?.replication?.outOfSyncBytes ?? 0));
  return behind > 0 ? `${formatBytes(behind)} behind` : "";
}

/** Whether the pair was ever seen in sync, from the conditions written before. */
export function wasEverSynchronized(previous: readonly Condition[] | undefined): boolean {
  const c = previous?.find((x) => x.type === "Synchronized");
  return !!c && (c.status === "True" || c.reason !== "NotYetSynchronized");
}

/** The pair's phase, conditions and per-node status: a pure function of what was observed. */
export function conditionsFrom(o: ObservedPair, previous?: readonly Condition[]): PairStatus {
  const f = pairFacts(o.nodes);
  const ever = f.bothWorking || wasEverSynchronized(previous);
  return {
    phase: phaseOf(o, f),
    conditions: [
      ready(o, f),
      synchronized(o, f, ever),
      degraded(o, f, ever),
      resyncing(f),
      disruptionAllowed(o, f, ever),
      splitBrain(o, f),
      ...[authenticationRequired(o)].filter((c): c is ConditionDraft => !!c),
      ...(o.capacity ? [o.capacity] : []),
    ],
    nodes: o.nodes.map(nodeStatusOf),
    syncProgress: syncProgressOf(f, o.nodes),
  };
}

/** Stamps drafts with observedGeneration and keeps lastTransitionTime while the status stays the same. */
export function stampConditions(
  drafts: readonly ConditionDraft[],
  previous: readonly Condition[] | undefined,
  generation: number,
  now: Date,
): Condition[] {
  return drafts.map((d) => {
    const before = previous?.find((p) => p.type === d.type);
    const lastTransitionTime =
      before && before.status === d.status
        ? before.lastTransitionTime
        : now.toISOString().replace(/\.\d+Z$/, "Z");
    return { ...d, observedGeneration: generation, lastTransitionTime };
  });
}

/** Status equality that ignores lastTransitionTime churn, so an unchanged pass writes nothing. */
export function statusEqual(a: HASanTargetStatus | undefined, b: HASanTargetStatus | undefined): boolean {
  const norm = (s: HASanTargetStatus | undefined) =>
    canonicalJson({
      ...s,
      conditions: (s?.conditions ?? [])
        .map(({ lastTransitionTime: _t, ...c }) => c)
        .sort((x, y) => x.type.localeCompare(y.type)),
    });
  return norm(a) === norm(b);
}

/**
 * JSON with object keys sorted at every level and undefined members left out, so that a status
 * read back from the API server (keys in the server's order) compares equal to the same status
 * built here (keys in construction order).
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value))
    return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** Node state transitions between two status snapshots, for Events. */
export function nodeTransitions(
  before: readonly NodeStatus[] | undefined,
  after: readonly NodeStatus[],
): { node: string; from: string; to: string; message?: string }[] {
  return after.flatMap((n) => {
    const old = before?.find((b) => b.name === n.name);
    if (!old || old.state === n.state) return [];
    return [{ node: n.name, from: old.state, to: n.state, message: n.message }];
  });
}
