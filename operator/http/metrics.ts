/** A minimal Prometheus text-format registry for the operator's own metrics. */
type Labels = Record<string, string>;

function labelText(l: Labels): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

class Family {
  readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge",
  ) {}
  private entry(l: Labels) {
    const key = labelText(l);
    let e = this.values.get(key);
    if (!e) {
      e = { labels: l, value: 0 };
      this.values.set(key, e);
    }
    return e;
  }
  inc(l: Labels = {}, by = 1): void {
    this.entry(l).value += by;
  }
  set(l: Labels, v: number): void {
    this.entry(l).value = v;
  }
  removeWhere(pred: (l: Labels) => boolean): void {
    for (const [k, e] of this.values) if (pred(e.labels)) this.values.delete(k);
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const e of this.values.values()) lines.push(`${this.name}${labelText(e.labels)} ${e.value}`);
    return lines.join("\n");
  }
}

const NODE_STATES = ["Working", "Failed", "Synchronizing", "Pending", "SplitBrain", "Unknown"];

export class OperatorMetrics {
  readonly reconciles = new Family(
    "hasan_operator_reconciles_total",
    "Reconcile passes by result",
    "counter",
  );
  readonly reconcileSeconds = new Family(
    "hasan_operator_reconcile_seconds_total",
    "Time spent reconciling, in seconds",
    "counter",
  );
  readonly reconcileErrors = new Family(
    "hasan_operator_reconcile_errors_total",
    "Failed reconcile passes",
    "counter",
  );
  readonly statusWrites = new Family(
    "hasan_operator_status_writes_total",
    "Status updates written",
    "counter",
  );
  readonly nodeState = new Family(
    "hasan_target_node_state",
    "1 for the current state of each node of each HASanTarget",
    "gauge",
  );
  readonly evictions = new Family(
    "hasan_operator_eviction_reviews_total",
    "Eviction reviews by decision",
    "counter",
  );
  readonly leader = new Family("hasan_operator_leader", "1 while this replica is the leader", "gauge");
  readonly apiRequests = new Family(
    "hasan_operator_api_requests_total",
    "Requests to the Kubernetes API by method, resource and response code (watch streams excluded)",
    "counter",
  );

  observeReconcile(target: string, seconds: number, ok: boolean): void {
    this.reconciles.inc({ result: ok ? "success" : "error" });
    this.reconcileSeconds.inc({}, seconds);
    if (!ok) this.reconcileErrors.inc({ target });
  }

  setNodeStates(target: string, states: Record<string, string>): void {
    for (const [node, state] of Object.entries(states)) {
      for (const s of NODE_STATES) this.nodeState.set({ target, node, state: s }, s === state ? 1 : 0);
    }
  }

  forgetTarget(target: string): void {
    this.nodeState.removeWhere((l) => l.target === target);
  }

  render(): string {
    return (
      [
        this.reconciles,
        this.reconcileSeconds,
        this.reconcileErrors,
        this.statusWrites,
        this.nodeState,
        this.evictions,
        this.leader,
        this.apiRequests,
      ]
        .map((f) => f.render())
        .join("\n") + "\n"
    );
  }
}
