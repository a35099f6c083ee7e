/**
 * The reconcile step that grows a pair's LUN (decisions in capacity-growth.ts): applies the
 * backing PVCs' expansions on their own, then asks a serving node's agent to grow the LUN once both
 * volumes hold the new capacity. Returns the Capacity condition for the status.
 */
import type { Logger } from "../../target/log.js";
import { quantityBytes } from "../api/quantity.js";
import type { HASanTarget } from "../api/target.js";
import type { KubeClient } from "../kit/kube-client.js";
import { AgentAuthError, agentHeaders } from "../status/agent-client.js";
import type { AgentTokens } from "../status/agent-token.js";
import type { ObservedNode } from "../pair/observed.js";
import {
  capacityDecision,
  postCapacity,
  volumeOf,
  type BackingVolume,
  type CapacityCondition,
} from "./capacity-growth.js";
import { storageSize, type KubeObject } from "./desired-children.js";
import { childName, FIELD_MANAGER, NODE_NAMES, type NodeName } from "../pair/names.js";

/** A refused expansion is tried again after this long (the StorageClass may have changed). */
const EXPANSION_RETRY_MS = 60_000;
/** The agent is asked again at most this often while the LUN has not grown. */
const GROW_RETRY_MS = 5_000;

export interface CapacityStepInput {
  t: HASanTarget;
  nodes: readonly ObservedNode[];
  /** the desired PVCs that ask for more than their live PVC (heldPvcExpansions) */
  expansions: ReadonlySet<KubeObject>;
  livePvc: (name: string) => unknown;
  agentUrl: (n: NodeName) => string | undefined;
  log: Logger;
}

export class CapacityGrowthStep {
  /** per PVC name and requested size: when the expansion was refused, and why */
  private readonly refused = new Map<string, { at: number; why: string }>();
  /** per target uid: the last request to an agent, and its failure if it failed */
  private readonly asked = new Map<string, { at: number; failure?: string }>();

  constructor(
    private readonly client: KubeClient,
    private readonly tokens: AgentTokens,
    private readonly now: () => number = Date.now,
  ) {}

  async run(i: CapacityStepInput): Promise<CapacityCondition> {
    const { t, log } = i;
    const volumes: Partial<Record<NodeName, BackingVolume>> = {};
    for (const n of NODE_NAMES) {
      const name = childName.pvc(t.metadata, n);
      const v = volumeOf(i.livePvc(name));
      if (v) volumes[n] = v;
      const expansion = [...i.expansions].find((d) => d.metadata.name === name);
      if (!expansion) continue;
      const why = await this.expand(expansion, log);
      if (why && v) v.expansionRefused = why;
    }
    const decision = capacityDecision({
      wantBytes: quantityBytes(t.spec.capacity),
      storageBytes: quantityBytes(storageSize(t)),
      nodes: i.nodes,
      volumes,
    });
    const uid = t.metadata.uid;
    if (decision.kind !== "grow") {
      if (decision.kind === "done") this.asked.delete(uid);
      return decision.condition;
    }
    const last = this.asked.get(uid);
    if (last && this.now() - last.at < GROW_RETRY_MS)
      return this.withFailure(decision.condition, last.failure);
    const url = i.agentUrl(decision.node);
    if (!url) return decision.condition;
    this.asked.set(uid, { at: this.now() });
    try {
      const r = await this.tokens.call(t.metadata, async (token) => {
        const answer = await postCapacity(url, decision.sizeBytes, agentHeaders(token));
        if (answer.status === 401 || answer.status === 403) throw new AgentAuthError(answer.message);
        return answer;
      });
      if (r.status !== 200) throw new Error(r.message);
      log.info({ node: decision.node, sizeBytes: decision.sizeBytes, message: r.message }, "LUN grown");
      return { ...decision.condition, reason: "Grown", message: r.message };
    } catch (e) {
      const failure = (e as Error).message;
      this.asked.set(uid, { at: this.now(), failure });
      log.warn({ node: decision.node, sizeBytes: decision.sizeBytes, err: failure }, "LUN growth not done");
      return this.withFailure(decision.condition, failure);
    }
  }

  private withFailure(c: CapacityCondition, failure: string | undefined): CapacityCondition {
    return failure ? { ...c, reason: "GrowthRefused", message: `${c.message}: ${failure}` } : c;
  }

  /** Applies one PVC expansion; returns why it was refused, or undefined. */
  private async expand(pvc: KubeObject, log: Logger): Promise<string | undefined> {
    const key = `${pvc.metadata.namespace ?? ""}/${pvc.metadata.name}/${JSON.stringify(
      (pvc as { spec?: unknown }).spec,
    )}`;
    const before = this.refused.get(key);
    if (before && this.now() - before.at < EXPANSION_RETRY_MS) return before.why;
    try {
      await this.client.apply(pvc, FIELD_MANAGER, true);
      this.refused.delete(key);
      log.info({ pvc: pvc.metadata.name }, "asked the backing PVC to expand");
      return undefined;
    } catch (e) {
      const why = (e as Error).message;
      this.refused.set(key, { at: this.now(), why });
      log.warn({ pvc: pvc.metadata.name, err: why }, "the backing PVC cannot expand");
      return why;
    }
  }
}
