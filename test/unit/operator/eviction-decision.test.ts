import { test } from "node:test";
import assert from "node:assert/strict";
import {
  evictionDecision,
  type EvictedPod,
  type PairLiveStatus,
} from "../../../operator/pair/eviction-decision.js";
import type { ObservedNode } from "../../../operator/pair/observed.js";
import { node } from "./fixtures.js";

const MiB = 1024 * 1024;
const pod = (n: "a" | "b", extra: Partial<EvictedPod> = {}): EvictedPod => ({
  name: `data-${n}`,
  namespace: "prod",
  labels: { "app.kubernetes.io/name": "hasan-target", "hasan.dev/target": "data", "hasan.dev/node": n },
  phase: "Running",
  ...extra,
});
const pair = (a: ObservedNode, b: ObservedNode, everSynchronized = true): PairLiveStatus => ({
  nodes: [a, b],
  everSynchronized,
});
const resync = { doneBytes: 43 * MiB, totalBytes: 100 * MiB, bytesPerSecond: MiB, etaSeconds: 125 };

const cases: { name: string; pod: EvictedPod; pair?: PairLiveStatus; allowed: boolean; message: RegExp }[] = [
  {
    name: "other pods",
    pod: { name: "web", namespace: "prod", labels: { app: "web" } },
    allowed: true,
    message: /not a hasan/,
  },
  {
    name: "both Working",
    pod: pod("a"),
    pair: pair(node("a", { state: "Working" }), node("b", { state: "Working" })),
    allowed: true,
    message: /both nodes Working/,
  },
  {
    name: "resync source",
    pod: pod("a"),
    pair: pair(node("a", { state: "Synchronizing", resync }), node("b", { state: "Pending", resync })),
    allowed: false,
    message: /^resync in flight: 43% done, about 2m left$/,
  },
  {
    name: "resync target",
    pod: pod("b"),
    pair: pair(node("a", { state: "Synchronizing", resync }), node("b", { state: "Pending", resync })),
    allowed: false,
    message: /^resync in flight: 43% done/,
  },
  {
    name: "survivor of a lost partner",
    pod: pod("a"),
    pair: pair(node("a", { state: "Failed" }), node("b")),
    allowed: false,
    message: /^partner node b is down: evicting a would lose the only copy$/,
  },
  {
    name: "the dead node while its partner serves alone",
    pod: pod("b"),
    pair: pair(node("a", { state: "Failed" }), node("b")),
    allowed: true,
    message: /node b is not serving; node a serves alone/,
  },
  {
    name: "never synchronized",
    pod: pod("a"),
    pair: pair(node("a", { state: "Synchronizing", resync }), node("b", { state: "Pending", resync }), false),
    allowed: false,
    message: /^pair has never been in sync yet/,
  },
  {
    name: "split brain",
    pod: pod("b"),
    pair: pair(
      node("a", { state: "SplitBrain", serving: false }),
      node("b", { state: "SplitBrain", serving: false }),
    ),
    allowed: false,
    message: /split brain/,
  },
  {
    name: "both agents unreachable",
    pod: pod("a"),
    pair: pair(node("a"), node("b")),
    allowed: false,
    message: /cannot read the state of either node/,
  },
  {
    name: "a pod that is not running",
    pod: pod("a", { phase: "Pending" }),
    pair: pair(node("a"), node("b")),
    allowed: true,
    message: /Pending/,
  },
];

for (const c of cases) {
  test(`eviction: ${c.name} → ${c.allowed ? "allowed" : "denied with 429"}`, () => {
    const d = evictionDecision(c.pod, c.pair);
    assert.equal(d.allowed, c.allowed, d.message);
    assert.match(d.message, c.message);
    assert.equal(d.code, c.allowed ? undefined : 429);
  });
}
