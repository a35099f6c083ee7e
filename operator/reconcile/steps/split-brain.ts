import { childName } from "../../pair/names.js";
import { resolveSplitBrain } from "../../status/agent-client.js";
import { recordEvent } from "../../status/events.js";
import { agentUrl } from "../../status/observe.js";
import type { Step } from "../pass.js";

/**
 * With spec.splitBrainResolution and a node in SplitBrain, tells the agent of the node to discard
 * (at most every 10 s) and records an Event. Needs: nodes.
 */
export const resolveSplitBrainStep: Step = async (pass, c) => {
  const t = pass.target;
  const discard = t.spec.splitBrainResolution?.discard;
  if (!discard) return;
  const split = pass.nodes.filter((n) => n.agent?.replication?.state === "SplitBrain");
  if (split.length === 0) return;
  const posted = c.memory.splitBrainPosted;
  const key = `${t.metadata.uid}/${discard}`;
  if (Date.now() - (posted.get(key) ?? 0) < 10_000) return;
  posted.set(key, Date.now());
  const target = split.find((n) => n.name === discard) ?? split[0]!;
  const pod = c.pods.get(childName.pod(t.metadata, target.name), t.metadata.namespace);
  const ip = c.services.get(childName.service(t.metadata, target.name), t.metadata.namespace)?.spec
    ?.clusterIP;
  const url = agentUrl(c.options.agentAddress, pod, ip);
  if (!url) return;
  try {
    const message = await c.tokens.call(t.metadata, (token) => resolveSplitBrain(url, discard, token));
    pass.log.warn({ discard, message }, "split brain resolution sent");
    await recordEvent(
      c.client,
      t,
      "Warning",
      "SplitBrainResolution",
      `discarding node ${discard}: ${message}`,
      c.options.identity,
    );
  } catch (e) {
    pass.log.error({ discard, err: e }, "split brain resolution failed");
  }
};
