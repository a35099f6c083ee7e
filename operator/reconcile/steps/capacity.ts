import { agentUrl } from "../../status/observe.js";
import type { Step } from "../pass.js";

/**
 * spec.capacity grew: expands the backing PVCs (on their own: a refused one is reported and stops
 * nothing else), then asks a serving node to grow the LUN on both nodes without restarting a pod
 * (capacity-step.ts). Leaves the Capacity condition. Needs: nodes, children, expansions.
 */
export const growCapacity: Step = async (pass, c) => {
  const t = pass.target;
  const { pods, serviceIPs } = pass.children;
  pass.capacity = await c.capacity.run({
    t,
    nodes: pass.nodes,
    expansions: pass.expansions,
    livePvc: (n) => c.pvcs.get(n, t.metadata.namespace),
    agentUrl: (n) => agentUrl(c.options.agentAddress, pods[n], serviceIPs[n]),
    log: pass.log,
  });
};
