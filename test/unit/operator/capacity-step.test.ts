import { test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { CapacityGrowthStep } from "../../../operator/reconcile/capacity-step.js";
import { heldPvcExpansions } from "../../../operator/reconcile/capacity-growth.js";
import { desiredChildren, type KubeObject } from "../../../operator/reconcile/desired-children.js";
import type { KubeClient } from "../../../operator/kit/kube-client.js";
import type { AgentTokens } from "../../../operator/status/agent-token.js";
import type { ObservedNode } from "../../../operator/pair/observed.js";
import { node, target } from "./fixtures.js";

const MiB = 1024 ** 2;
const observed = {
  serviceIPs: { a: "10.0.0.1", b: "10.0.0.2" },
  chap: { username: "data" },
  bothWorking: true,
};
const defaults = { image: "ghcr.io/hasan-dev/hasan:0.1.0" };

/** Live PVCs as the API server shows them: bound, holding what they asked for. */
function livePvcs(objs: KubeObject[]): Record<string, unknown> {
  return Object.fromEntries(
    objs
      .filter((o) => o.kind === "PersistentVolumeClaim")
      .map((p) => {
        const storage = (p as unknown as { spec: { resources: { requests: { storage: string } } } }).spec
          .resources.requests.storage;
        return [p.metadata.name, { ...p, status: { phase: "Bound", capacity: { storage } } }];
      }),
  );
}

function sized(name: "a" | "b", size: number): ObservedNode {
  const n = node(name, { state: "Working" });
  n.agent = { ...n.agent!, sizeBytes: size };
  return n;
}

test("a refused PVC expansion is the Capacity condition's reason; the agent is not asked", async () => {
  const before = desiredChildren(target({ capacity: "64Mi" }), observed, defaults);
  const live = livePvcs(before);
  const after = desiredChildren(target({ capacity: "128Mi" }), observed, defaults);
  const expansions = heldPvcExpansions(after, (n) => live[n]);
  assert.equal(expansions.size, 2);
  const applied: string[] = [];
  const client = {
    apply: async (o: KubeObject) => {
      applied.push(o.metadata.name);
      if (o.metadata.name === "data-a-data") {
        throw new Error(
          'persistentvolumeclaims "data-a-data" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize',
        );
      }
      return o;
    },
  } as unknown as KubeClient;
  let asked = 0;
  const tokens = {
    call: async () => {
      asked++;
      return { status: 200, message: "grown" };
    },
  } as unknown as AgentTokens;
  const step = new CapacityGrowthStep(client, tokens);
  const c = await step.run({
    t: target({ capacity: "128Mi" }),
    nodes: [sized("a", 64 * MiB), sized("b", 64 * MiB)],
    expansions,
    livePvc: (n) => live[n],
    agentUrl: (n) => `http://10.0.0.${n === "a" ? 1 : 2}:8080`,
    log: pino({ level: "silent" }),
  });
  assert.deepEqual(applied, ["data-a-data", "data-b-data"], "the other PVC is still expanded");
  assert.equal(c.reason, "VolumeExpansionRefused");
  assert.match(c.message, /node a cannot grow to hold 128Mi: .*must support resize/);
  assert.equal(asked, 0);

  // Once both volumes hold the new storage, the node is asked.
  const grownLive = livePvcs(after);
  const next = await new CapacityGrowthStep(client, tokens).run({
    t: target({ capacity: "128Mi" }),
    nodes: [sized("a", 64 * MiB), sized("b", 64 * MiB)],
    expansions: new Set(),
    livePvc: (n) => grownLive[n],
    agentUrl: (n) => `http://10.0.0.${n === "a" ? 1 : 2}:8080`,
    log: pino({ level: "silent" }),
  });
  assert.equal(asked, 1);
  assert.deepEqual([next.reason, next.message], ["Grown", "grown"]);
});
