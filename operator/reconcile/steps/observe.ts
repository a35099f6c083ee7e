import { API_VERSION, KIND } from "../../api/target.js";
import { pairFacts } from "../../pair/facts.js";
import { ANNOTATION_CHAP_DEFAULT } from "../../pair/names.js";
import { observePair, readPairChildren, type PairChildSource } from "../../status/observe.js";
import { madeOpenBeforeChapDefault, type PodArgsView } from "../auth.js";
import type { Step } from "../pass.js";

/** Reads the pair's pods and Service clusterIPs from the caches. Needs: target. */
export const observeChildren: Step = async (pass, c) => {
  const cached: PairChildSource = {
    pod: (namespace, name) => c.pods.get(name, namespace),
    service: (namespace, name) => c.services.get(name, namespace),
  };
  pass.children = await readPairChildren(cached, pass.target.metadata);
};

/**
 * A target made before CHAP was the default, whose pods still run without it, is annotated to
 * stay without CHAP; the update comes back through the informer. Needs: children.
 */
export const keepOpenIfMadeBeforeChapDefault: Step = async (pass, c) => {
  const t = pass.target;
  // The informer holds whole pods; PodView names only what status needs.
  if (!madeOpenBeforeChapDefault(t, Object.values(pass.children.pods) as PodArgsView[])) return;
  await c.client.mergePatch(API_VERSION, KIND, t.metadata.namespace, t.metadata.name, {
    metadata: { annotations: { [ANNOTATION_CHAP_DEFAULT]: "Disabled" } },
  });
  pass.log.warn("target made before CHAP was the default: kept without CHAP (status.auth.keptOpen)");
  return "done";
};

/** Asks both nodes' agents for their status and derives the pair's facts. Needs: children. */
export const observeAgents: Step = async (pass, c) => {
  const o = c.options;
  pass.nodes = await observePair(pass.children, o.agentAddress, (url) =>
    c.tokens.readStatus(c.agents, pass.target.metadata, url, Math.min(500, o.activePollMs / 2)),
  );
  pass.facts = pairFacts(pass.nodes);
};

/** Whether this is a full pass (drift check, Secrets checked again, prune): 60 s since the last or a new generation. */
export const decideFullPass: Step = (pass, c) => {
  const t = pass.target;
  pass.periodic = c.applied.periodicDue(t.metadata.uid, t.metadata.generation ?? 0);
  return Promise.resolve();
};
