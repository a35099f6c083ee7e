/**
 * One reconcile pass as a list of steps (controller.ts lists them): what the steps share and
 * what each leaves for the next.
 */
import { z } from "zod";
import type { Logger } from "../../target/log.js";
import { HASanTargetStatusSchema, type HASanTargetStatus, type VerifyRunStatus } from "../api/status.js";
import type { ResourceRequirements } from "../api/spec.js";
import { ObjectMetaSchema, type HASanTarget } from "../api/target.js";
import type { OperatorMetrics } from "../http/metrics.js";
import type { KeyedLock } from "../kit/keyed-lock.js";
import type { KubeClient } from "../kit/kube-client.js";
import { pairFacts, type PairFacts } from "../pair/facts.js";
import type { CapacityCondition, ObservedNode } from "../pair/observed.js";
import type { AgentStatusCache } from "../status/agent-client.js";
import type { AgentTokens } from "../status/agent-token.js";
import type { AgentAddressMode, PairChildren, PodView, ServiceView } from "../status/observe.js";
import type { ApplyCache } from "./apply-cache.js";
import type { KubeObject, ObservedForChildren } from "./desired-children.js";
import type { NetworkPolicyOptions } from "./network-policies.js";
import type { CapacityGrowthStep } from "./capacity-step.js";
import type { PvSyncResult } from "./pv-export.js";

export interface ControllerOptions {
  /** one namespace, or all when unset */
  namespace?: string;
  image: string;
  agentAddress: AgentAddressMode;
  /** status poll period while both nodes are Working */
  steadyPollMs: number;
  /** status poll period while anything is not Working */
  activePollMs: number;
  /** drift check period: children are read back and drifted ones re-applied (default 60 s) */
  driftCheckMs?: number;
  identity: string;
  workers?: number;
  /** images spec.pod.image may name (image-policy.ts); `image` alone when unset */
  allowedTargetImages?: readonly string[];
  /** each pair's NetworkPolicies; none when unset */
  networkPolicies?: NetworkPolicyOptions;
  /** target pods' resources when spec.pod.resources is unset */
  targetResources?: ResourceRequirements;
}

/**
 * How the controller's cache reads a HASanTarget: the spec is validated later, by the pass (so a
 * bad spec gets a condition and an Event, not silence); a status this version cannot read counts
 * as none and is written anew.
 */
export const RawTargetSchema: z.ZodType<RawTarget> = z.looseObject({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: ObjectMetaSchema.loose(),
  spec: z.unknown().optional(),
  status: HASanTargetStatusSchema.optional().catch(undefined),
});

/** A HASanTarget as the cache holds it, before its spec is validated. */
export interface RawTarget {
  apiVersion: string;
  kind: string;
  metadata: HASanTarget["metadata"];
  spec?: unknown;
  status?: HASanTargetStatus;
}

interface Cache<T> {
  get(name: string, namespace?: string): T | undefined;
}

/** What the controller remembers per target uid between passes (facts, never Secret values). */
export interface TargetMemory {
  /**
   * Targets whose created-once Secrets (peer, CHAP, agent token) were seen to exist: a fact, never
   * a value, so it cannot win over the cluster's. Forgotten on the periodic pass, which checks again.
   */
  secretsSeen: Set<string>;
  /**
   * CHAP user names read from a generated CHAP Secret: that Secret is never rewritten, so it is
   * read again only on periodic passes (a user's Secret is read every pass).
   */
  generatedChapUsers: Map<string, NonNullable<ObservedForChildren["chap"]>>;
  /** when a split brain resolution was last sent, by `<uid>/<node>` */
  splitBrainPosted: Map<string, number>;
}

/** What every step may use: the API client, the caches, the options and the per-target memory. */
export interface ReconcileContext {
  client: KubeClient;
  options: ControllerOptions;
  metrics: OperatorMetrics;
  pods: Cache<PodView>;
  services: Cache<ServiceView>;
  pvcs: Cache<unknown>;
  leases: Cache<unknown>;
  agents: AgentStatusCache;
  tokens: AgentTokens;
  /** what was applied, and when the last periodic pass ran */
  applied: ApplyCache;
  /** exported PVs are read and written under their name's lock (pv-export.ts) */
  pvLock: KeyedLock;
  memory: TargetMemory;
  /** grows pairs' LUNs to spec.capacity (capacity-step.ts) */
  capacity: CapacityGrowthStep;
}

/** What one pass has learned so far; each step reads what earlier steps left and adds its part. */
export interface Pass {
  readonly log: Logger;
  readonly raw: RawTarget;
  /** the target; its spec is the validated one once validateSpec has run */
  target: HASanTarget;
  children: PairChildren;
  nodes: [ObservedNode, ObservedNode];
  facts: PairFacts;
  /** a full pass: drift check, created-once Secrets checked again, prune */
  periodic: boolean;
  /** the created-once Secrets could not be made sure of; pods are not created meanwhile */
  secretsError?: string;
  chap?: ObservedForChildren["chap"];
  /** spec.pod.image is not allowed: no pod is created or replaced */
  imageError?: string;
  specError?: string;
  applyError?: string;
  desired: KubeObject[];
  /** desired PVCs asking for more than their live PVC: applied by the capacity step, on their own */
  expansions: Set<KubeObject>;
  pvSync?: PvSyncResult;
  /** where growing the LUN to spec.capacity stands */
  capacity?: CapacityCondition;
  /** status.verify (steps/verify.ts) */
  verify?: VerifyRunStatus;
}

/** "done" ends the pass there (nothing queued again: a watch event brings the next one). */
export type Step = (pass: Pass, c: ReconcileContext) => Promise<"done" | void>;

export function startPass(raw: RawTarget, log: Logger): Pass {
  const nodes: [ObservedNode, ObservedNode] = [{ name: "a" }, { name: "b" }];
  return {
    log,
    raw,
    target: raw as HASanTarget,
    children: { pods: {}, serviceIPs: {} },
    nodes,
    facts: pairFacts(nodes),
    periodic: false,
    desired: [],
    expansions: new Set(),
  };
}

export function joinErrors(...errors: (string | undefined)[]): string | undefined {
  const set = errors.filter((e): e is string => !!e);
  return set.length ? set.join("; ") : undefined;
}
