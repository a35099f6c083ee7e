import { test } from "node:test";
import assert from "node:assert/strict";
import {
  capacityDecision,
  heldPvcExpansions,
  runningLunSizes,
  type BackingVolume,
} from "../../../operator/reconcile/capacity-growth.js";
import { desiredChildren, type KubeObject } from "../../../operator/reconcile/desired-children.js";
import { ANNOTATION_TEMPLATE_HASH } from "../../../operator/pair/names.js";
import type { ObservedNode } from "../../../operator/pair/observed.js";
import { node, target, type AgentOpts } from "./fixtures.js";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** A node whose agent reports a LUN of `size` bytes (and which node sequences). */
function sized(name: "a" | "b", size: number, o: AgentOpts, sequencer: "a" | "b" = "a"): ObservedNode {
  const n = node(name, o);
  const rep = n.agent!.replication!;
  rep.alua = {
    a: sequencer === "a" ? "active/optimized" : "active/non-optimized",
    b: sequencer === "b" ? "active/optimized" : "active/non-optimized",
  };
  n.agent = { ...n.agent!, sizeBytes: size };
  return n;
}
const held = (bytes: number): BackingVolume => ({ requestedBytes: bytes, capacityBytes: bytes });
const working = { state: "Working" as const };

test("both nodes at the capacity: done, Capacity True", () => {
  const d = capacityDecision({
    wantBytes: 2 * GiB,
    storageBytes: 2 * GiB + 64 * MiB,
    nodes: [sized("a", 2 * GiB, working), sized("b", 2 * GiB, working)],
    volumes: { a: held(2 * GiB + 64 * MiB), b: held(2 * GiB + 64 * MiB) },
  });
  assert.equal(d.kind, "done");
  assert.deepEqual(d.condition, {
    type: "Capacity",
    status: "True",
    reason: "Grown",
    message: "both nodes serve a LUN of 2Gi",
  });
});

test("capacity grew: the volumes first, then the node that sequences is asked to grow", () => {
  const nodes = [sized("a", GiB, working, "b"), sized("b", GiB, working, "b")];
  const expanding = capacityDecision({
    wantBytes: 2 * GiB,
    storageBytes: 2 * GiB + 64 * MiB,
    nodes,
    volumes: {
      a: held(2 * GiB + 64 * MiB),
      b: { requestedBytes: 2 * GiB + 64 * MiB, capacityBytes: GiB + 64 * MiB },
    },
  });
  assert.equal(expanding.kind, "wait");
  assert.equal(expanding.condition.reason, "VolumeExpanding");
  assert.match(
    expanding.condition.message,
    /backing PVC of node b to hold 2112Mi before the LUN grows to 2Gi/,
  );

  const refused = capacityDecision({
    wantBytes: 2 * GiB,
    storageBytes: 2 * GiB + 64 * MiB,
    nodes,
    volumes: {
      a: { ...held(GiB + 64 * MiB), expansionRefused: "the storageclass does not allow volume expansion" },
      b: held(GiB + 64 * MiB),
    },
  });
  assert.equal(refused.kind, "wait");
  assert.equal(refused.condition.reason, "VolumeExpansionRefused");
  assert.match(refused.condition.message, /node a cannot grow to hold 2Gi: the storageclass does not allow/);

  const grow = capacityDecision({
    wantBytes: 2 * GiB,
    storageBytes: 2 * GiB + 64 * MiB,
    nodes,
    volumes: { a: held(2 * GiB + 64 * MiB), b: held(3 * GiB) },
  });
  assert.deepEqual(grow, {
    kind: "grow",
    node: "b",
    sizeBytes: 2 * GiB,
    condition: {
      type: "Capacity",
      status: "False",
      reason: "Growing",
      message: "growing the LUN from 1Gi to 2Gi",
    },
  });
});

test("one node serving alone: it is asked; once grown, its partner grows when it returns", () => {
  const volumes = { a: held(3 * GiB), b: held(3 * GiB) };
  const alone = [sized("a", GiB, { state: "Failed", serving: true }), node("b")];
  const d = capacityDecision({ wantBytes: 2 * GiB, storageBytes: 3 * GiB, nodes: alone, volumes });
  assert.equal(d.kind === "grow" && d.node, "a");
  const grown = [sized("a", 2 * GiB, { state: "Failed", serving: true }), node("b")];
  const after = capacityDecision({ wantBytes: 2 * GiB, storageBytes: 3 * GiB, nodes: grown, volumes });
  assert.equal(after.kind, "wait");
  assert.equal(after.condition.reason, "PartnerGrowsOnReturn");
  const none = capacityDecision({
    wantBytes: 2 * GiB,
    storageBytes: 3 * GiB,
    nodes: [
      sized("a", GiB, { state: "Pending", serving: false }),
      sized("b", GiB, { state: "Pending", serving: false }),
    ],
    volumes,
  });
  assert.equal(none.kind === "wait" && none.condition.reason, "NoServingNode");
});

test("a capacity change keeps the pod templates: the pods keep the --size they run with", () => {
  const observed = {
    serviceIPs: { a: "10.0.0.1", b: "10.0.0.2" },
    chap: { username: "data" },
    bothWorking: true,
  };
  const defaults = { image: "ghcr.io/hasan-dev/hasan:0.1.0" };
  const before = desiredChildren(target({ capacity: "1Gi" }), observed, defaults);
  const pods = Object.fromEntries(
    before.filter((o) => o.kind === "Pod").map((p) => [p.metadata.labels!["hasan.dev/node"]!, p]),
  );
  const lunSizes = runningLunSizes(pods);
  assert.deepEqual(lunSizes, { a: String(GiB), b: String(GiB) });
  const after = desiredChildren(target({ capacity: "2Gi" }), { ...observed, lunSizes }, defaults);
  const hash = (objs: KubeObject[]) =>
    objs.filter((o) => o.kind === "Pod").map((p) => p.metadata.annotations?.[ANNOTATION_TEMPLATE_HASH]);
  assert.deepEqual(hash(after), hash(before), "no pod template changed: no roll");
  // Without running pods (a new pair, or a pod to re-create) the pods take spec.capacity.
  const fresh = desiredChildren(target({ capacity: "2Gi" }), observed, defaults);
  assert.notDeepEqual(hash(fresh), hash(before));

  // The PVCs ask for the new storage: held back from the common apply when they grow.
  const live = Object.fromEntries(
    before.filter((o) => o.kind === "PersistentVolumeClaim").map((p) => [p.metadata.name, p]),
  );
  const expansions = heldPvcExpansions(after, (name) => live[name]);
  assert.deepEqual(
    [...expansions].map((p) => p.metadata.name),
    ["data-a-data", "data-b-data"],
  );
  assert.equal(heldPvcExpansions(before, (name) => live[name]).size, 0, "an unchanged PVC is not held");
});
