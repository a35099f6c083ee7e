import { test } from "node:test";
import assert from "node:assert/strict";
import {
  conditionsFrom,
  nodeTransitions,
  stampConditions,
  statusEqual,
  type PairStatus,
} from "../../../operator/status/conditions.js";
import type { Condition } from "../../../operator/api/status.js";
import { node } from "./fixtures.js";
import type { ObservedNode } from "../../../operator/pair/observed.js";

const MiB = 1024 * 1024;
const cond = (s: PairStatus, type: string) => s.conditions.find((c) => c.type === type)!;
const synced: Condition[] = [
  {
    type: "Synchronized",
    status: "True",
    reason: "InSync",
    message: "",
    lastTransitionTime: "2026-01-01T00:00:00Z",
  },
];

test("both Working: Ready, Synchronized, disruption allowed, phase Ready, 100%", () => {
  const s = conditionsFrom({
    generation: 3,
    nodes: [node("a", { state: "Working" }), node("b", { state: "Working" })],
  });
  assert.equal(s.phase, "Ready");
  assert.equal(s.syncProgress, "100%");
  assert.equal(cond(s, "Ready").reason, "BothNodesServing");
  assert.equal(cond(s, "Synchronized").status, "True");
  assert.equal(cond(s, "Degraded").status, "False");
  assert.equal(cond(s, "DisruptionAllowed").status, "True");
  assert.equal(cond(s, "SplitBrain").status, "False");
  assert.deepEqual(
    s.nodes.map((n) => [n.name, n.state, n.pod, n.portal]),
    [
      ["a", "Working", "data-a", "10.214.0.10:3260"],
      ["b", "Working", "data-b", "10.214.0.11:3260"],
    ],
  );
});

test("partner lost: Degraded with an actionable message naming time, survivor and out-of-sync bytes", () => {
  const s = conditionsFrom(
    {
      generation: 3,
      nodes: [
        node("a", { state: "Failed", lastHeardMs: 12_000, outOfSyncBytes: 40 * MiB }),
        node("b", undefined, { phase: "Pending" }),
      ],
    },
    synced,
  );
  assert.equal(s.phase, "Degraded");
  const d = cond(s, "Degraded");
  assert.equal(d.status, "True");
  assert.equal(d.reason, "NodeLost");
  assert.match(
    d.message,
    /^node b lost 12s ago; node a serving alone; 40 MiB out of sync; pod data-b is Pending$/,
  );
  assert.equal(cond(s, "Ready").status, "True");
  assert.equal(cond(s, "Ready").reason, "OneNodeServing");
  assert.equal(cond(s, "Synchronized").reason, "PartnerLost");
  assert.equal(cond(s, "DisruptionAllowed").status, "False");
  assert.equal(s.nodes[1]!.state, "Unknown");
  assert.equal(s.syncProgress, "40 MiB behind");
});

test("resync: Resyncing with direction, percent, rate and ETA; sync progress column", () => {
  const resync = { doneBytes: 43 * MiB, totalBytes: 100 * MiB, bytesPerSecond: 10 * MiB, etaSeconds: 120 };
  const s = conditionsFrom(
    {
      generation: 3,
      nodes: [node("a", { state: "Synchronizing", resync }), node("b", { state: "Pending", resync })],
    },
    synced,
  );
  assert.equal(s.phase, "Resyncing");
  assert.equal(s.syncProgress, "43%");
  assert.equal(cond(s, "Resyncing").status, "True");
  assert.equal(
    cond(s, "Resyncing").message,
    "node a → node b: 43% done (43 MiB of 100 MiB) at 10 MiB/s, about 2m left",
  );
  assert.equal(cond(s, "Synchronized").reason, "Resyncing");
  assert.equal(cond(s, "DisruptionAllowed").reason, "ResyncInProgress");
  assert.deepEqual(s.nodes[0]!.resync, {
    doneBytes: 43 * MiB,
    totalBytes: 100 * MiB,
    bytesPerSecond: 10 * MiB,
    etaSeconds: 120,
  });
});

test("split brain wins over every other reason and tells the user what to set", () => {
  const s = conditionsFrom(
    {
      generation: 3,
      nodes: [
        node("a", { state: "SplitBrain", serving: false }),
        node("b", { state: "SplitBrain", serving: false }),
      ],
    },
    synced,
  );
  assert.equal(s.phase, "SplitBrain");
  for (const t of ["Ready", "Synchronized", "Degraded", "DisruptionAllowed"]) {
    assert.equal(cond(s, t).reason, "SplitBrain", t);
  }
  assert.equal(cond(s, "SplitBrain").status, "True");
  assert.match(cond(s, "SplitBrain").message, /spec\.splitBrainResolution\.discard/);
  const resolving = conditionsFrom(
    {
      generation: 3,
      splitBrainDiscard: "b",
      nodes: [node("a", { state: "SplitBrain" }), node("b", { state: "SplitBrain" })],
    },
    synced,
  );
  assert.equal(cond(resolving, "SplitBrain").reason, "ResolutionRequested");
});

test("a new pair that never synchronized says so instead of claiming a lost partner", () => {
  const s = conditionsFrom({
    generation: 1,
    nodes: [node("a", undefined, { phase: "Pending" }), node("b", undefined, { phase: "Pending" })],
  });
  assert.equal(s.phase, "Pending");
  assert.equal(cond(s, "Synchronized").reason, "NotYetSynchronized");
  assert.match(cond(s, "Synchronized").message, /^pair has never been in sync yet/);
  assert.equal(cond(s, "Ready").reason, "NodesNotRunning");
  assert.equal(cond(s, "Degraded").status, "False");
  assert.equal(cond(s, "DisruptionAllowed").reason, "NotYetSynchronized");
});

test("invalid spec is the worst Ready reason", () => {
  const s = conditionsFrom({
    generation: 2,
    specError: "secret chap not found",
    nodes: [node("a", { state: "Working" }), node("b", { state: "Working" })],
  });
  assert.equal(cond(s, "Ready").status, "False");
  assert.equal(cond(s, "Ready").reason, "InvalidSpec");
});

test("stamping keeps lastTransitionTime while the status is unchanged and sets observedGeneration", () => {
  const prev: Condition[] = [
    {
      type: "Ready",
      status: "True",
      reason: "OneNodeServing",
      message: "x",
      lastTransitionTime: "2026-01-01T00:00:00Z",
      observedGeneration: 1,
    },
  ];
  const now = new Date("2026-02-02T10:00:00.123Z");
  const [same] = stampConditions(
    [{ type: "Ready", status: "True", reason: "BothNodesServing", message: "y" }],
    prev,
    4,
    now,
  );
  assert.equal(same!.lastTransitionTime, "2026-01-01T00:00:00Z");
  assert.equal(same!.observedGeneration, 4);
  const [flipped] = stampConditions(
    [{ type: "Ready", status: "False", reason: "NoNodeServing", message: "z" }],
    prev,
    4,
    now,
  );
  assert.equal(flipped!.lastTransitionTime, "2026-02-02T10:00:00Z");
});

test("status comparison ignores lastTransitionTime churn but not reasons or node states", () => {
  const c = (t: string, reason = "R"): Condition => ({
    type: "Ready",
    status: "True",
    reason,
    message: "",
    lastTransitionTime: t,
  });
  assert.ok(
    statusEqual(
      { phase: "Ready", conditions: [c("2026-01-01T00:00:00Z")] },
      { phase: "Ready", conditions: [c("2026-01-02T00:00:00Z")] },
    ),
  );
  assert.ok(!statusEqual({ conditions: [c("x", "A")] }, { conditions: [c("x", "B")] }));
  // The API server returns keys in its own order; the same status built here must compare equal,
  // or every pass writes status again (the steady state must make no writes).
  assert.ok(
    statusEqual(
      { phase: "Pending", observedGeneration: 1, nodes: [{ state: "Unknown", name: "a" }] },
      { nodes: [{ name: "a", state: "Unknown" }], observedGeneration: 1, phase: "Pending" },
    ),
  );
  assert.ok(
    !statusEqual({ nodes: [{ name: "a", state: "Working" }] }, { nodes: [{ name: "a", state: "Failed" }] }),
  );
});

test("node transitions list each node whose state changed", () => {
  assert.deepEqual(
    nodeTransitions(
      [
        { name: "a", state: "Working" },
        { name: "b", state: "Working" },
      ],
      [
        { name: "a", state: "Failed", message: "peer lost" },
        { name: "b", state: "Working" },
      ],
    ),
    [{ node: "a", from: "Working", to: "Failed", message: "peer lost" }],
  );
});

test("a survivor that may not serve (witness lost) is not reported as serving alone", () => {
  const a = node("a", { state: "Failed", serving: false, lastHeardMs: 4000 });
  a.agent!.replication!.message = "partner lost; the witness went to the partner or is unreachable";
  const s = conditionsFrom({ generation: 3, nodes: [a, node("b")] }, synced);
  assert.equal(s.phase, "Unavailable");
  assert.equal(cond(s, "Ready").reason, "NodesNotRunning");
  assert.match(
    cond(s, "Degraded").message,
    /^node b lost 4s ago; node a not serving either \(partner lost; the witness went to the partner or is unreachable\)/,
  );
});

test("a peer authentication failure: Degraded True PeerAuthenticationFailed naming the Secret and what to check", () => {
  const wrong = {
    kind: "secret" as const,
    reason: "peer failed authentication (wrong secret): the partner proved no knowledge of the peer secret",
    since: "2026-01-02T03:04:05.000Z",
    at: "2026-01-02T03:09:05.000Z",
    count: 600,
  };
  const failed = (n: "a" | "b") => {
    const x = node(n, { state: "Failed", serving: n === "a", lastHeardMs: null });
    x.agent!.replication!.peer.authError = wrong;
    return x;
  };
  const o = {
    generation: 3,
    nodes: [failed("a"), failed("b")] as [ObservedNode, ObservedNode],
    peerSecret: { name: "data-peer", generated: true },
  };
  const s = conditionsFrom(o, synced);
  const d = cond(s, "Degraded");
  assert.equal(d.status, "True");
  assert.equal(d.reason, "PeerAuthenticationFailed");
  assert.match(d.message, /^nodes a and b refuse each other's peer link since 2026-01-02T03:04:05.000Z: /);
  assert.match(d.message, /wrong secret/);
  assert.match(d.message, /Secret data-peer \(key 'secret'\), generated once by the operator/);
  assert.match(d.message, /delete the pod that holds the older value/);
  assert.doesNotMatch(d.message, /600/, "no counter that would change the status every pass");
  assert.equal(cond(s, "Synchronized").reason, "PeerAuthenticationFailed");
  // Later failures (count, at) leave the conditions as they were: no status write per pass.
  const later = structuredClone(o);
  later.nodes[0].agent!.replication!.peer.authError = {
    ...wrong,
    count: 700,
    at: "2026-01-02T03:19:05.000Z",
  };
  assert.deepEqual(conditionsFrom(later, synced).conditions, s.conditions);
  // A user's Secret is named as theirs; a version mismatch says to run one image.
  const user = conditionsFrom({ ...o, peerSecret: { name: "mine", generated: false } }, synced);
  assert.match(
    cond(user, "Degraded").message,
    /Secret mine \(key 'secret'\), from spec\.replication\.peerSecretRef/,
  );
  const version = structuredClone(o);
  version.nodes[1].agent!.replication!.peer.authError = null;
  version.nodes[0].agent!.replication!.peer.authError = {
    ...wrong,
    kind: "version",
    reason: "partner speaks peer protocol 1, this node 2: upgrade both nodes",
  };
  assert.match(
    cond(conditionsFrom(version, synced), "Degraded").message,
    /^node a refuses the peer link of node b since .*: partner speaks peer protocol 1, this node 2: upgrade both nodes; run the same hasan image/,
  );
});

test("an authentication failure reported while both nodes are Working does not degrade the pair", () => {
  const a = node("a", { state: "Working" });
  a.agent!.replication!.peer.authError = {
    kind: "secret",
    reason: "peer failed authentication (wrong secret)",
    since: "2026-01-02T03:04:05.000Z",
    at: "2026-01-02T03:04:05.000Z",
    count: 1,
  };
  const s = conditionsFrom({ generation: 3, nodes: [a, node("b", { state: "Working" })] }, synced);
  assert.equal(cond(s, "Degraded").status, "False");
});
