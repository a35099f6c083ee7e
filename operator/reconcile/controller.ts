import type { Logger } from "../../target/log.js";
import { API_VERSION, KIND } from "../api/target.js";
import type { OperatorMetrics } from "../http/metrics.js";
import { Informer, type CacheLifecycle } from "../kit/informer.js";
import { KeyedLock } from "../kit/keyed-lock.js";
import type { KubeClient } from "../kit/kube-client.js";
import { WorkQueue, type WorkResult } from "../kit/work-queue.js";
import { APP_TARGET, FIELD_MANAGER, LABEL_APP, LABEL_TARGET } from "../pair/names.js";
import { AgentStatusCache } from "../status/agent-client.js";
import { AgentTokens } from "../status/agent-token.js";
import {
  ObjectViewSchema,
  PodViewSchema,
  ServiceViewSchema,
  type ObjectView,
  type PodView,
  type ServiceView,
} from "../status/observe.js";
import { ApplyCache } from "./apply-cache.js";
import { CapacityGrowthStep } from "./capacity-step.js";
import type { KubeObject } from "./desired-children.js";
import {
  startPass,
  type ControllerOptions,
  RawTargetSchema,
  type RawTarget,
  type ReconcileContext,
  type Step,
} from "./pass.js";
import { applyChildren, correctDrift, exportPv, planChildren, pruneStaleChildren } from "./steps/children.js";
import { cleanUpDeleted, ensureFinalizer, validateSpec } from "./steps/lifecycle.js";
import {
  decideFullPass,
  keepOpenIfMadeBeforeChapDefault,
  observeAgents,
  observeChildren,
} from "./steps/observe.js";
import { rollPods } from "./steps/roll-pods.js";
import { checkImagePolicy, ensureGeneratedSecrets, readChapUsers } from "./steps/secrets.js";
import { growCapacity } from "./steps/capacity.js";
import { scheduleVerify } from "./steps/verify.js";
import { resolveSplitBrainStep } from "./steps/split-brain.js";
import { writeStatus } from "./steps/write-status.js";

/**
 * One reconcile pass, in order; a step may end the pass early. Each step says what it does and
 * what earlier steps it needs (pass.ts holds what they share).
 */
const RECONCILE_STEPS: readonly Step[] = [
  cleanUpDeleted, // a deleted target: finalize, drop the finalizer, stop
  validateSpec, // an invalid spec: status says why, stop
  ensureFinalizer, // the cleanup finalizer first, stop
  observeChildren, // the pair's pods and Service IPs from the caches
  keepOpenIfMadeBeforeChapDefault, // a pair made before CHAP was the default stays without it, stop
  observeAgents, // both agents' status → observed nodes and pair facts
  decideFullPass, // every 60 s or on a new generation: drift check, Secrets, prune
  ensureGeneratedSecrets, // peer, CHAP and agent-token Secrets exist (created once)
  readChapUsers, // CHAP user names for the pods
  checkImagePolicy, // spec.pod.image allowed?
  planChildren, // every child the pair should have
  correctDrift, // full pass: re-apply what someone changed
  applyChildren, // apply children other than pods and the PV
  exportPv, // the exported PV, only when it is ours
  rollPods, // create missing pods; replace outdated ones one node at a time
  pruneStaleChildren, // full pass: delete children no longer desired
  resolveSplitBrainStep, // spec.splitBrainResolution: tell the agent to discard
  growCapacity, // spec.capacity grew: expand the backing PVCs, then the LUN on both nodes, live
  scheduleVerify, // spec.verify / verify-now annotation: start an online verify, read its progress
  writeStatus, // status, Events, node-state metrics
];

export type { ControllerOptions };

/** The HASanTarget controller: caches, a keyed queue and one idempotent reconcile pass per key. */
export class HASanTargetController {
  readonly targets: Informer<RawTarget>;
  readonly pods: Informer<PodView>;
  readonly services: Informer<ServiceView>;
  readonly pvcs: Informer<ObjectView>;
  /** witness Leases: a target takes its Lease when it loses the partner, so a change there is news */
  readonly leases: Informer<ObjectView>;
  readonly queue: WorkQueue;
  readonly agents = new AgentStatusCache();
  /** each pair's agent token, read from its Secret and cached by target uid */
  readonly tokens: AgentTokens;
  /** what the reconcile steps share (pass.ts) */
  private readonly context: ReconcileContext;

  constructor(
    client: KubeClient,
    private readonly o: ControllerOptions,
    private readonly log: Logger,
    private readonly metrics: OperatorMetrics,
  ) {
    this.tokens = new AgentTokens(client);
    const ns = o.namespace;
    const selector = `${LABEL_APP}=${APP_TARGET}`;
    const owned = { namespace: ns, labelSelector: selector };
    this.targets = new Informer(
      client,
      { apiVersion: API_VERSION, kind: KIND, namespace: ns, schema: RawTargetSchema },
      log,
    );
    this.pods = new Informer(client, { apiVersion: "v1", kind: "Pod", schema: PodViewSchema, ...owned }, log);
    this.services = new Informer(
      client,
      { apiVersion: "v1", kind: "Service", schema: ServiceViewSchema, ...owned },
      log,
    );
    this.pvcs = new Informer(
      client,
      { apiVersion: "v1", kind: "PersistentVolumeClaim", schema: ObjectViewSchema, ...owned },
      log,
    );
    this.leases = new Informer(
      client,
      { apiVersion: "coordination.k8s.io/v1", kind: "Lease", schema: ObjectViewSchema, ...owned },
      log,
    );
    this.context = {
      client,
      options: o,
      metrics,
      pods: this.pods,
      services: this.services,
      pvcs: this.pvcs,
      leases: this.leases,
      agents: this.agents,
      tokens: this.tokens,
      applied: new ApplyCache(o.driftCheckMs ?? 60_000),
      pvLock: new KeyedLock(),
      memory: { secretsSeen: new Set(), generatedChapUsers: new Map(), splitBrainPosted: new Map() },
      capacity: new CapacityGrowthStep(client, this.tokens),
    };
    this.queue = new WorkQueue((key) => this.reconcileKey(key), {
      concurrency: o.workers ?? 2,
      onTake: (_key, waitedMs) => this.metrics.queueWait.observe(waitedMs / 1000),
      onError: (key, err, retryInMs) => this.log.warn({ target: key, err, retryInMs }, "reconcile failed"),
    });
    this.metrics.watchQueue(() => this.queue.length);
    this.targets.on((_e, t) => this.queue.add(`${t.metadata.namespace}/${t.metadata.name}`));
    const enqueueOwner = (
      _e: unknown,
      obj: { metadata: { namespace: string; labels?: Record<string, string> } },
    ) => {
      const target = obj.metadata.labels?.[LABEL_TARGET];
      if (target) this.queue.add(`${obj.metadata.namespace}/${target}`);
    };
    this.pods.on(enqueueOwner);
    this.services.on(enqueueOwner);
    this.pvcs.on(enqueueOwner);
    this.leases.on(enqueueOwner);
  }

  informers(): CacheLifecycle[] {
    return [this.targets, this.pods, this.services, this.pvcs, this.leases];
  }

  synced(): boolean {
    return this.informers().every((i) => i.hasSynced());
  }

  async startCaches(): Promise<void> {
    await Promise.all(this.informers().map((i) => i.start()));
    await Promise.all(this.informers().map((i) => i.waitForSync()));
  }

  /** Starts reconciling (the leader only); every known target is queued once. */
  startWorkers(): void {
    this.queue.start();
    for (const t of this.targets.list()) this.queue.add(`${t.metadata.namespace}/${t.metadata.name}`);
  }

  async stop(): Promise<void> {
    await this.queue.stop();
    await Promise.all(this.informers().map((i) => i.stop()));
  }

  private async reconcileKey(key: string): Promise<WorkResult> {
    const started = process.hrtime.bigint();
    const [namespace = "", name = ""] = key.split("/");
    // One form in every line about a target: target: "namespace/name".
    const log = this.log.child({ target: key });
    let ok = false;
    try {
      const result = await this.reconcile(namespace, name, log);
      ok = true;
      return result;
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.metrics.observeReconcile(key, seconds, ok);
      log.debug({ seconds, ok }, "reconcile pass");
    }
  }

  async reconcile(namespace: string, name: string, log: Logger): Promise<WorkResult> {
    const raw = this.targets.get(name, namespace);
    if (!raw) {
      this.metrics.forgetTarget(`${namespace}/${name}`);
      return {};
    }
    const pass = startPass(raw, log);
    for (const step of RECONCILE_STEPS) if ((await step(pass, this.context)) === "done") return {};
    return { requeueAfterMs: pass.facts.bothWorking ? this.o.steadyPollMs : this.o.activePollMs };
  }
}

export { FIELD_MANAGER, type KubeObject };
