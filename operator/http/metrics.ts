/**
 * The operator's metrics, on prom-client (its own registry, so several operators in one test
 * process do not share series): reconcile results and durations, the work queue, status writes,
 * eviction reviews, Kubernetes API requests, leadership, every pair's node states and phase, and
 * the process itself (CPU, memory, event loop lag, handles).
 *
 * Per-pair series carry `namespace` and `target` (the HASanTarget's name), the labels the target
 * pods' own metrics get from the PodMonitor, so a query can join the two.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { NODE_STATES, PHASES } from "../api/status.js";

/** "namespace/name" → the two labels. */
function pairLabels(key: string): { namespace: string; target: string } {
  const i = key.indexOf("/");
  return { namespace: key.slice(0, i), target: key.slice(i + 1) };
}

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({
    name: "hasan_operator_reconciles_total",
    help: "Reconcile passes by result",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: "hasan_operator_reconcile_duration_seconds",
    help: "Duration of one reconcile pass of one HASanTarget",
    labelNames: ["result"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: "hasan_operator_reconcile_errors_total",
    help: "Failed reconcile passes, by HASanTarget",
    labelNames: ["namespace", "target"] as const,
    registers: [this.registry],
  });
  readonly queueWait = new Histogram({
    name: "hasan_operator_workqueue_wait_seconds",
    help: "Time a HASanTarget waited in the work queue before a worker took it",
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60],
    registers: [this.registry],
  });
  private queueLength: () => number = () => 0;
  readonly queueDepth = new Gauge({
    name: "hasan_operator_workqueue_depth",
    help: "HASanTargets waiting in the work queue",
    registers: [this.registry],
    collect: () => {
      this.queueDepth.set(this.queueLength());
    },
  });
  readonly statusWrites = new Counter({
    name: "hasan_operator_status_writes_total",
    help: "Status updates written",
    registers: [this.registry],
  });
  readonly nodeState = new Gauge({
    name: "hasan_target_node_state",
    help: "1 for the current state of each node of each HASanTarget, as the operator observes it",
    labelNames: ["namespace", "target", "node", "state"] as const,
    registers: [this.registry],
  });
  readonly phase = new Gauge({
    name: "hasan_target_phase",
    help: "1 for the current phase of each HASanTarget",
    labelNames: ["namespace", "target", "phase"] as const,
    registers: [this.registry],
  });
  readonly evictions = new Counter({
    name: "hasan_operator_eviction_reviews_total",
    help: "Eviction reviews by decision",
    labelNames: ["allowed"] as const,
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: "hasan_operator_leader",
    help: "1 while this replica is the leader",
    registers: [this.registry],
  });
  readonly apiRequests = new Counter({
    name: "hasan_operator_api_requests_total",
    help: "Requests to the Kubernetes API by method, resource and response code (watch streams excluded)",
    labelNames: ["method", "resource", "code"] as const,
    registers: [this.registry],
  });

  constructor(o: { processMetrics?: boolean } = {}) {
    this.leader.set(0);
    if (o.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** The work queue's length, read at scrape time. */
  watchQueue(length: () => number): void {
    this.queueLength = length;
  }

  observeReconcile(key: string, seconds: number, ok: boolean): void {
    const result = ok ? "success" : "error";
    this.reconciles.inc({ result });
    this.reconcileDuration.observe({ result }, seconds);
    // Zero-valued series from the first pass on, so rate() and increase() see the first error.
    this.reconcileErrors.inc(pairLabels(key), ok ? 0 : 1);
    if (ok) this.reconciles.inc({ result: "error" }, 0);
  }

  setNodeStates(key: string, states: Record<string, string>): void {
    const l = pairLabels(key);
    for (const [node, state] of Object.entries(states)) {
      for (const s of NODE_STATES) this.nodeState.set({ ...l, node, state: s }, s === state ? 1 : 0);
    }
  }

  setPhase(key: string, phase: string): void {
    const l = pairLabels(key);
    for (const p of PHASES) this.phase.set({ ...l, phase: p }, p === phase ? 1 : 0);
  }

  /** A deleted HASanTarget leaves no series behind. */
  forgetTarget(key: string): void {
    // prom-client removes series by their exact labels: every one this class can have set.
    const l = pairLabels(key);
    for (const node of ["a", "b"])
      for (const state of NODE_STATES) this.nodeState.remove({ ...l, node, state });
    for (const phase of PHASES) this.phase.remove({ ...l, phase });
    this.reconcileErrors.remove(l);
  }

  async render(): Promise<string> {
    return await this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
