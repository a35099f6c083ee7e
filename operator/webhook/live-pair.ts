import { API_VERSION, KIND } from "../api/target.js";
import type { HASanTargetStatus } from "../api/status.js";
import type { KubeClient } from "../kit/kube-client.js";
import { wasEverSynchronized } from "../status/conditions.js";
import type { AgentStatusCache } from "../status/agent-client.js";
import type { AgentTokens } from "../status/agent-token.js";
import {
  observePair,
  readPairChildren,
  type AgentAddressMode,
  type PairChildSource,
  type PodView,
  type ServiceView,
} from "../status/observe.js";
import type { EvictedPod, PairLiveStatus } from "../pair/eviction-decision.js";
import { targetOfPod } from "../pair/eviction-decision.js";

/** Live state of a pod's pair for an eviction review: pods and Services read now, agents asked within maxAgeMs. */
export class LivePairReader {
  constructor(
    private readonly client: KubeClient,
    private readonly agents: AgentStatusCache,
    private readonly agentAddress: AgentAddressMode,
    /** the pairs' agent tokens (the agents refuse /status without them) */
    private readonly tokens?: AgentTokens,
    private readonly maxAgeMs = 1000,
  ) {}

  async pod(namespace: string, name: string): Promise<EvictedPod | undefined> {
    const pod = await this.client.getOrUndefined<PodView>("v1", "Pod", namespace, name);
    if (!pod) return undefined;
    return { name, namespace, labels: pod.metadata.labels ?? {}, phase: pod.status?.phase };
  }

  async pair(pod: EvictedPod): Promise<PairLiveStatus | undefined> {
    const who = targetOfPod(pod);
    if (!who) return undefined;
    const target = await this.client.getOrUndefined<{
      metadata: { name: string; namespace: string; uid?: string };
      status?: HASanTargetStatus;
    }>(API_VERSION, KIND, pod.namespace, who.target);
    if (!target) return undefined;
    const meta = { ...target.metadata, uid: target.metadata.uid ?? "" };
    const live: PairChildSource = {
      pod: (ns, name) => this.client.getOrUndefined<PodView>("v1", "Pod", ns, name),
      service: (ns, name) => this.client.getOrUndefined<ServiceView>("v1", "Service", ns, name),
    };
    const children = await readPairChildren(live, meta);
    const nodes = await observePair(children, this.agentAddress, (url) =>
      this.tokens
        ? this.tokens.readStatus(this.agents, meta, url, this.maxAgeMs)
        : this.agents.get(url, this.maxAgeMs),
    );
    return {
      nodes,
      everSynchronized: wasEverSynchronized(target.status?.conditions),
    };
  }
}
