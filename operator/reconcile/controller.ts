import type { Logger } from "../../target/log.js";
import type { HASanTargetStatus } from "../api/status.js";
import type { ResourceRequirements } from "../api/spec.js";
import { API_VERSION, FINALIZER, HASanTargetSchema, KIND, type HASanTarget } from "../api/target.js";
import type { OperatorMetrics } from "../http/metrics.js";
import { ResilientInformer, type CacheLifecycle } from "../kit/informer.js";
import { isNotFound, type KubeClient } from "../kit/kube-client.js";
import { WorkQueue, type WorkResult } from "../kit/work-queue.js";
import { AgentStatusCache, resolveSplitBrain, type AgentRead } from "../status/agent-client.js";
import { AgentTokens } from "../status/agent-token.js";
import {
  authDisabledEvent,
  conditionsFrom,
  nodeTransitions,
  stampConditions,
  statusEqual,
  wasEverSynchronized,
} from "../status/conditions.js";
import { recordEvent } from "../status/events.js";
import type { ObservedNode, ObservedPair } from "../status/observed.js";
import {
  agentUrl,
  observeNode,
  shouldReadAgent,
  type AgentAddressMode,
  type PodView,
  type ServiceView,
} from "../status/observe.js";
import { pairFacts, partnerOf } from "../status/pair-facts.js";
import { evictionDecision } from "../webhook/eviction-decision.js";
import { applyAll, driftPath } from "./apply.js";
import { CapacityGrowthStep } from "./capacity-step.js";
import { heldPvcExpansions, runningLunSizes } from "./capacity-growth.js";
import { AGENT_TOKEN_SECRET } from "./agent-token-secret.js";
import { authStatus, chapSecretName, chapSource } from "./auth.js";
import { GENERATED_CHAP_SECRET, chapUsersOf } from "./chap-secret.js";
import { ApplyCache } from "./apply-cache.js";
import {
  desiredChildren,
  iqnOf,
  persistentVolumeName,
  type KubeObject,
  type ObservedForChildren,
} from "./desired-children.js";
import { addFinalizer, finalize, removeFinalizer } from "./finalizer.js";
import { madeOpenBeforeChapDefault, type PodArgsView } from "./auth.js";
import {
  ANNOTATION_CHAP_DEFAULT,
  APP_TARGET,
  FIELD_MANAGER,
  LABEL_APP,
  LABEL_TARGET,
  NODE_NAMES,
  childName,
  type NodeName,
} from "./names.js";
import { createdOnceChildren, ensureGeneratedSecrets } from "./generated-secrets.js";
import { ensurePeerSecret, peerSecretSource } from "./peer-secret.js";
import { podAction, protocolUpgradeReplaces } from "./pod-action.js";
import { pruneChildren } from "./prune.js";
import { KeyedLock } from "../kit/keyed-lock.js";
import { targetImageProblem } from "./image-policy.js";
import type { NetworkPolicyOptions } from "./network-policies.js";
import { syncExportedPv } from "./pv-export.js";

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

interface RawTarget {
  apiVersion: string;
  kind: string;
  metadata: HASanTarget["metadata"];
  spec?: unknown;
  status?: HASanTargetStatus;
}

interface SecretView {
  data?: Record<string, string>;
}

/** The HASanTarget controller: caches, a keyed queue and one idempotent reconcile pass per key. */
export class HASanTargetController {
  readonly targets: ResilientInformer<RawTarget>;
  readonly pods: ResilientInformer<PodView>;
  readonly services: ResilientInformer<ServiceView>;
  readonly pvcs: ResilientInformer<PodView>;
  /** witness Leases: a target takes its Lease when it loses the partner, so a change there is news */
  readonly leases: ResilientInformer<PodView>;
  readonly queue: WorkQueue;
  readonly agents = new AgentStatusCache();
  /** each pair's agent token, read from its Secret and cached by target uid */
  readonly tokens: AgentTokens;
  private readonly splitBrainPosted = new Map<string, number>();
  private readonly capacity: CapacityGrowthStep;
  private readonly applied: ApplyCache;
  /**
   * Targets whose created-once Secrets (peer, CHAP, agent token) were seen to exist (by uid): a
   * fact, never a value, so it cannot win over the cluster's. Forgotten on the periodic pass, which
   * checks again.
   */
  /** exported PVs are read and written under their name's lock (pv-export.ts) */
  private readonly pvLock = new KeyedLock();
  private readonly secretsSeen = new Set<string>();
  /**
   * CHAP user names read from a generated CHAP Secret (by target uid): that Secret is never
   * rewritten, so it is read again only on periodic passes (a user's Secret is read every pass).
   */
  private readonly generatedChapUsers = new Map<string, NonNullable<ObservedForChildren["chap"]>>();

  constructor(
    private readonly client: KubeClient,
    private readonly o: ControllerOptions,
    private readonly log: Logger,
    private readonly metrics: OperatorMetrics,
  ) {
    this.applied = new ApplyCache(o.driftCheckMs ?? 60_000);
    this.tokens = new AgentTokens(client);
    this.capacity = new CapacityGrowthStep(client, this.tokens);
    const ns = o.namespace;
    const selector = `${LABEL_APP}=${APP_TARGET}`;
    this.targets = new ResilientInformer(client, { apiVersion: API_VERSION, kind: KIND, namespace: ns }, log);
    this.pods = new ResilientInformer(
      client,
      { apiVersion: "v1", kind: "Pod", namespace: ns, labelSelector: selector },
      log,
    );
    this.services = new ResilientInformer(
      client,
      { apiVersion: "v1", kind: "Service", namespace: ns, labelSelector: selector },
      log,
    );
    this.pvcs = new ResilientInformer(
      client,
      { apiVersion: "v1", kind: "PersistentVolumeClaim", namespace: ns, labelSelector: selector },
      log,
    );
    this.leases = new ResilientInformer(
      client,
      { apiVersion: "coordination.k8s.io/v1", kind: "Lease", namespace: ns, labelSelector: selector },
      log,
    );
    this.queue = new WorkQueue((key) => this.reconcileKey(key), {
      concurrency: o.workers ?? 2,
      onError: (key, err, retryInMs) =>
        this.log.warn({ target: key, err: String(err), retryInMs }, "reconcile failed"),
    });
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
    const log = this.log.child({ namespace, target: name }); // pino already uses "name" for the logger
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
    if (raw.metadata.deletionTimestamp) {
      this.applied.forget(raw.metadata.uid);
      this.secretsSeen.delete(raw.metadata.uid);
      this.generatedChapUsers.delete(raw.metadata.uid);
      this.tokens.forget(raw.metadata.uid);
    }
    const parsed = HASanTargetSchema.safeParse(raw);
    if (raw.metadata.deletionTimestamp) {
      if ((raw.metadata.finalizers ?? []).includes(FINALIZER)) {
        const t = parsed.success ? parsed.data : (raw as HASanTarget);
        const done = await finalize(this.client, t);
        await removeFinalizer(this.client, t);
        log.info({ done }, "cleaned up after deletion");
      }
      return {};
    }
    if (!parsed.success) {
      const issues = parsed.error.issues
        .map((i) => `spec.${i.path.slice(1).join(".")}: ${i.message}`)
        .join("; ");
      await this.writeStatus(raw as HASanTarget, this.unknownPair(raw, issues), undefined, log);
      return {};
    }
    const t = parsed.data as HASanTarget;
    if (!(t.metadata.finalizers ?? []).includes(FINALIZER)) {
      await addFinalizer(this.client, t);
      return {}; // the update comes back through the informer
    }

    // Observe.
    const serviceIPs: Partial<Record<NodeName, string>> = {};
    const pods: Partial<Record<NodeName, PodView>> = {};
    for (const n of NODE_NAMES) {
      const ip = this.services.get(childName.service(t.metadata, n), namespace)?.spec?.clusterIP;
      if (ip && ip !== "None") serviceIPs[n] = ip;
      const pod = this.pods.get(childName.pod(t.metadata, n), namespace);
      if (pod) pods[n] = pod;
    }
    // The informer holds whole pods; PodView names only what status needs.
    if (madeOpenBeforeChapDefault(t, Object.values(pods) as PodArgsView[])) {
      await this.client.mergePatch(API_VERSION, KIND, namespace, name, {
        metadata: { annotations: { [ANNOTATION_CHAP_DEFAULT]: "Disabled" } },
      });
      log.warn("target made before CHAP was the default: kept without CHAP (status.auth.keptOpen)");
      return {}; // the update comes back through the informer
    }
    const reads = await Promise.all(
      NODE_NAMES.map(async (n): Promise<AgentRead | undefined> => {
        const url = agentUrl(this.o.agentAddress, pods[n], serviceIPs[n]);
        if (!url || !shouldReadAgent(pods[n])) return undefined;
        return await this.tokens.readStatus(
          this.agents,
          t.metadata,
          url,
          Math.min(500, this.o.activePollMs / 2),
        );
      }),
    );
    const nodes = NODE_NAMES.map((n, i) => observeNode(n, pods[n], serviceIPs[n], reads[i])) as [
      ObservedNode,
      ObservedNode,
    ];
    const facts = pairFacts(nodes);
    const owner = t.metadata.uid;
    const generation = t.metadata.generation ?? 0;
    const periodic = this.applied.periodicDue(owner, generation);
    // The created-once Secrets first: the CHAP user name comes from the generated Secret.
    const peerSecretError = await this.ensureSecrets(t, periodic, log);
    let specError: string | undefined;
    let chap: ObservedForChildren["chap"];
    try {
      chap = await this.readChap(t, periodic);
    } catch (e) {
      specError = (e as Error).message;
    }
    // A refused image creates or replaces no pod; pods already running stay.
    const imageError = targetImageProblem(t, this.o.allowedTargetImages ?? [this.o.image]);
    specError = joinErrors(specError, imageError);

    // Apply.
    const desired = desiredChildren(
      t,
      { serviceIPs, chap, bothWorking: facts.bothWorking, lunSizes: runningLunSizes(pods) },
      { image: this.o.image, networkPolicies: this.o.networkPolicies, resources: this.o.targetResources },
    );
    // The exported PV goes its own way (pv-export.ts): applied only when it is ours. PVC expansions
    // too (capacity-step.ts): a refused one is reported, and stops no other child.
    const expansions = heldPvcExpansions(desired, (n) => this.pvcs.get(n, namespace));
    const generic = (d: KubeObject) =>
      d.kind !== "Pod" && d.kind !== "PersistentVolume" && !expansions.has(d);
    const watched: Record<string, { get(name: string, namespace?: string): unknown }> = {
      Service: this.services,
      PersistentVolumeClaim: this.pvcs,
      Lease: this.leases,
    };
    const missing = (o: KubeObject) => {
      const inf = watched[o.kind];
      return !!inf && !inf.get(o.metadata.name, o.metadata.namespace);
    };
    if (periodic) {
      // Drift correction for kinds the operator does not watch: read each child and re-apply only
      // what someone changed, so a steady state makes no writes.
      for (const d of desired.filter(generic)) {
        const live = await this.client
          .getOrUndefined(d.apiVersion, d.kind, d.metadata.namespace, d.metadata.name)
          .catch(() => undefined);
        const at = live === undefined ? "(missing)" : driftPath(d, live);
        if (at === undefined && this.applied.changedSinceApplied(owner, d)) {
          // The spec changed this child: applyAll sends it (a dropped field shows in no read back).
        } else if (at !== undefined) {
          log[live === undefined ? "debug" : "info"](
            { kind: d.kind, child: d.metadata.name, at },
            "child drifted or missing; re-applying",
          );
          this.applied.forget(owner, d);
        } else this.applied.recordApplied(owner, d);
      }
    }
    let applyError = joinErrors(
      peerSecretError,
      await applyAll(this.client, desired.filter(generic), { owner, applied: this.applied, missing }),
    );
    const pv = desired.find((d) => d.kind === "PersistentVolume");
    const pvSync = pv
      ? await syncExportedPv(this.client, t, pv, {
          owner,
          applied: this.applied,
          periodic,
          lock: this.pvLock,
        })
      : undefined;
    if (pvSync?.outcome === "foreign") specError = joinErrors(specError, pvSync.specError);
    if (pvSync?.outcome === "failed") applyError = joinErrors(applyError, pvSync.applyError);
    const ever = facts.bothWorking || wasEverSynchronized(t.status?.conditions);
    for (const d of imageError ? [] : desired.filter((x) => x.kind === "Pod")) {
      const node = d.metadata.labels?.["hasan.dev/node"] as NodeName;
      const existing = pods[node];
      const mayDisrupt =
        evictionDecision(
          {
            name: d.metadata.name,
            namespace,
            labels: d.metadata.labels ?? {},
            phase: existing?.status?.phase,
          },
          { nodes, everSynchronized: ever },
        ).allowed ||
        (facts.serving.length === 0 && !ever) ||
        protocolUpgradeReplaces(
          d,
          existing,
          desired.find((x) => x.kind === "Pod" && x.metadata.labels?.["hasan.dev/node"] === partnerOf(node)),
          pods[partnerOf(node)],
          nodes.find((x) => x.name === partnerOf(node))?.agent?.replication?.peer.authError?.kind,
        );
      const action = podAction(d, existing, mayDisrupt);
      if (action.kind === "create" && peerSecretError) {
        log.debug({ pod: d.metadata.name }, "pod waits for its generated Secrets");
      } else if (action.kind === "create") {
        applyError = (await applyAll(this.client, [d])) ?? applyError;
        log.info({ pod: d.metadata.name }, "created target pod");
      } else if (action.kind === "replace") {
        await this.client.delete("v1", "Pod", namespace, d.metadata.name);
        log.info({ pod: d.metadata.name, why: action.why }, "replacing target pod");
        break; // one node at a time
      } else if (action.kind === "wait") {
        log.debug({ pod: d.metadata.name, why: action.why }, "pod waits");
      }
    }
    if (periodic) {
      const pruned = await pruneChildren(this.client, t, [...desired, ...createdOnceChildren(t)]);
      if (pruned.length) log.info({ pruned }, "pruned children no longer desired");
      if (!applyError) this.applied.recordPeriodic(owner, generation);
    }

    await this.resolveSplitBrain(t, nodes, log);
    // ---- capacity growth (capacity-step.ts)
    const capacity = await this.capacity.run({
      t,
      nodes,
      expansions,
      livePvc: (n) => this.pvcs.get(n, namespace),
      agentUrl: (n) => agentUrl(this.o.agentAddress, pods[n], serviceIPs[n]),
      log,
    });
    // ----

    // Status.
    const secret = peerSecretSource(t);
    const pair: ObservedPair = {
      generation: t.metadata.generation ?? 0,
      nodes,
      specError,
      applyError,
      peerSecret: { name: secret.name, generated: secret.kind === "generated" },
    };
    if (t.spec.splitBrainResolution) pair.splitBrainDiscard = t.spec.splitBrainResolution.discard;
    pair.capacity = capacity;
    pair.auth = authStatus(t);
    const pvOurs = pvSync !== undefined && pvSync.outcome !== "foreign";
    await this.writeStatus(t, pair, pvOurs ? persistentVolumeName(t) : undefined, log);
    this.metrics.setNodeStates(`${namespace}/${name}`, facts.states);
    return { requeueAfterMs: facts.bothWorking ? this.o.steadyPollMs : this.o.activePollMs };
  }

  private unknownPair(raw: RawTarget, specError: string): ObservedPair {
    return {
      generation: raw.metadata.generation ?? 0,
      nodes: [{ name: "a" }, { name: "b" }],
      specError,
    };
  }

  /** The CHAP user names from the Secret the pods use (the user's or the generated one); none without CHAP. */
  private async readChap(t: HASanTarget, periodic: boolean): Promise<ObservedForChildren["chap"]> {
    const name = chapSecretName(t);
    const uid = t.metadata.uid;
    const generated = chapSource(t).kind === "generated";
    if (!generated || periodic) this.generatedChapUsers.delete(uid);
    if (!name) return undefined;
    const cached = this.generatedChapUsers.get(uid);
    if (cached) return cached;
    const secret = await this.client.getOrUndefined<SecretView>("v1", "Secret", t.metadata.namespace, name);
    if (!secret) {
      throw new Error(
        t.spec.auth?.chapSecretRef
          ? `spec.auth.chapSecretRef: secret ${name} not found`
          : `generated CHAP secret ${name} not created yet`,
      );
    }
    const users = chapUsersOf(t, secret.data);
    if (generated) this.generatedChapUsers.set(uid, users);
    return users;
  }

  /**
   * Makes sure the Secrets the pods mount exist, never replacing a value (created-once-secret.ts):
   * the peer Secret (or the user's), the generated CHAP Secret and the agent token. Checked each
   * pass until seen, then on periodic passes. Returns the problems for the status, if any.
   */
  private async ensureSecrets(t: HASanTarget, periodic: boolean, log: Logger): Promise<string | undefined> {
    const uid = t.metadata.uid;
    if (this.secretsSeen.has(uid) && !periodic) return undefined;
    const errors: string[] = [];
    try {
      const r = await ensurePeerSecret(this.client, t);
      if (r.outcome === "created") log.info({ secret: r.name }, "created the peer Secret");
      if (r.outcome === "lostRace")
        log.info({ secret: r.name }, "peer Secret created by someone else first; using it");
    } catch (e) {
      errors.push(`peer Secret: ${(e as Error).message}`);
    }
    const others = await ensureGeneratedSecrets(this.client, t, [GENERATED_CHAP_SECRET, AGENT_TOKEN_SECRET]);
    for (const r of others.ensured) {
      if (r.outcome === "created") log.info({ secret: r.name }, `created the ${r.what}`);
      if (r.outcome === "lostRace")
        log.info({ secret: r.name }, `${r.what} created by someone else first; using it`);
    }
    errors.push(...others.errors);
    if (errors.length) {
      this.secretsSeen.delete(uid);
      return errors.join("; ");
    }
    this.secretsSeen.add(uid);
    return undefined;
  }

  private async resolveSplitBrain(
    t: HASanTarget,
    nodes: readonly ObservedNode[],
    log: Logger,
  ): Promise<void> {
    const discard = t.spec.splitBrainResolution?.discard;
    if (!discard) return;
    const split = nodes.filter((n) => n.agent?.replication?.state === "SplitBrain");
    if (split.length === 0) return;
    const key = `${t.metadata.uid}/${discard}`;
    if (Date.now() - (this.splitBrainPosted.get(key) ?? 0) < 10_000) return;
    this.splitBrainPosted.set(key, Date.now());
    const target = split.find((n) => n.name === discard) ?? split[0]!;
    const pod = this.pods.get(childName.pod(t.metadata, target.name), t.metadata.namespace);
    const ip = this.services.get(childName.service(t.metadata, target.name), t.metadata.namespace)?.spec
      ?.clusterIP;
    const url = agentUrl(this.o.agentAddress, pod, ip);
    if (!url) return;
    try {
      const message = await this.tokens.call(t.metadata, (token) => resolveSplitBrain(url, discard, token));
      log.warn({ discard, message }, "split brain resolution sent");
      await recordEvent(
        this.client,
        t,
        "Warning",
        "SplitBrainResolution",
        `discarding node ${discard}: ${message}`,
        this.o.identity,
      );
    } catch (e) {
      log.error({ discard, err: String(e) }, "split brain resolution failed");
    }
  }

  /** One status write per pass, and only when something other than transition times changed. */
  private async writeStatus(
    t: HASanTarget,
    pair: ObservedPair,
    pvName: string | undefined,
    log: Logger,
  ): Promise<void> {
    const previous = t.status;
    const computed = conditionsFrom(pair, previous?.conditions);
    const portals = pair.nodes.map((n) => n.portal).filter((p): p is string => !!p);
    const next: HASanTargetStatus = {
      observedGeneration: pair.generation,
      phase: computed.phase,
      conditions: stampConditions(computed.conditions, previous?.conditions, pair.generation, new Date()),
      nodes: computed.nodes,
    };
    if (t.spec && typeof t.spec === "object" && "capacity" in t.spec) next.iqn = iqnOf(t);
    if (portals.length) next.portals = portals;
    if (pvName) next.persistentVolumeName = pvName;
    if (computed.syncProgress) next.syncProgress = computed.syncProgress;
    if (pair.auth) next.auth = pair.auth;
    if (statusEqual(previous, next)) return;
    const patch: Record<string, unknown> = { ...next };
    for (const k of Object.keys(previous ?? {})) if (!(k in next)) patch[k] = null;
    // A merge patch merges nested objects: a member that went away must be removed explicitly.
    if (next.auth && previous?.auth)
      patch.auth = { ...next.auth, chapSecretName: next.auth.chapSecretName ?? null };
    try {
      await this.client.mergePatch(
        API_VERSION,
        KIND,
        t.metadata.namespace,
        t.metadata.name,
        { status: patch },
        "status",
      );
    } catch (e) {
      if (isNotFound(e)) return;
      throw e;
    }
    this.metrics.statusWrites.inc();
    const authEvent = authDisabledEvent(previous?.conditions, next.conditions ?? []);
    if (authEvent) {
      log.warn({ reason: authEvent.reason }, authEvent.message);
      await recordEvent(
        this.client,
        t,
        "Warning",
        authEvent.reason,
        authEvent.message,
        this.o.identity,
      ).catch((e: unknown) => log.warn({ err: String(e) }, "could not record event"));
    }
    for (const tr of nodeTransitions(previous?.nodes, next.nodes ?? [])) {
      const warn = ["Failed", "SplitBrain", "Unknown"].includes(tr.to);
      const message = `node ${tr.node}: ${tr.from} → ${tr.to}${tr.message ? ` (${tr.message})` : ""}`;
      log.info({ node: tr.node, from: tr.from, to: tr.to }, "node state changed");
      try {
        await recordEvent(
          this.client,
          t,
          warn ? "Warning" : "Normal",
          "NodeStateChanged",
          message,
          this.o.identity,
        );
      } catch (e) {
        log.warn({ err: String(e) }, "could not record event");
      }
    }
  }
}

function joinErrors(...errors: (string | undefined)[]): string | undefined {
  const set = errors.filter((e): e is string => !!e);
  return set.length ? set.join("; ") : undefined;
}

export { FIELD_MANAGER, type KubeObject };
