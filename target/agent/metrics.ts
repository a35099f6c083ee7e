/**
 * A small Prometheus text-format registry: counters, gauges and one histogram kind.
 * Enough for the target's agent without pulling in a client library.
 */

type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  return keys.map((k) => `${k}="${escapeLabel(labels[k] ?? "")}"`).join(",");
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

abstract class Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge" | "histogram",
  ) {}
  abstract lines(): string[];
  header(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
  }
}

export class Counter extends Metric {
  private values = new Map<string, number>();
  constructor(name: string, help: string) {
    super(name, help, "counter");
  }
  inc(labels: Labels = {}, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  /** One labelled series, its key computed once (for per-command hot paths). */
  bind(labels: Labels): { inc(by?: number): void } {
    const k = labelKey(labels);
    return { inc: (by = 1) => this.values.set(k, (this.values.get(k) ?? 0) + by) };
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  lines(): string[] {
    return [...this.values].map(([k, v]) => `${this.name}${k ? `{${k}}` : ""} ${v}`);
  }
}

/** A counter whose value is read at scrape time from a source that only grows (e.g. a byte total). */
export class CounterFunc extends Metric {
  constructor(
    name: string,
    help: string,
    private readonly collect: () => number,
  ) {
    super(name, help, "counter");
  }
  lines(): string[] {
    return [`${this.name} ${this.collect()}`];
  }
}

export class Gauge extends Metric {
  private values = new Map<string, number>();
  constructor(
    name: string,
    help: string,
    private readonly collect?: () => { labels: Labels; value: number }[],
  ) {
    super(name, help, "gauge");
  }
  set(labels: Labels, value: number): void {
    this.values.set(labelKey(labels), value);
  }
  lines(): string[] {
    if (this.collect) {
      return this.collect().map(({ labels, value }) => {
        const k = labelKey(labels);
        return `${this.name}${k ? `{${k}}` : ""} ${value}`;
      });
    }
    return [...this.values].map(([k, v]) => `${this.name}${k ? `{${k}}` : ""} ${v}`);
  }
}

export class Histogram extends Metric {
  private series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(
    name: string,
    help: string,
    readonly buckets: number[],
  ) {
    super(name, help, "histogram");
  }
  observe(labels: Labels, value: number): void {
    this.observeIn(this.seriesOf(labelKey(labels)), value);
  }
  /** One labelled series, its key computed once (for per-command hot paths). */
  bind(labels: Labels): { observe(value: number): void } {
    const k = labelKey(labels);
    return { observe: (v) => this.observeIn(this.seriesOf(k), v) };
  }
  private seriesOf(k: string) {
    let s = this.series.get(k);
    if (!s) {
      s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    return s;
  }
  private observeIn(s: { counts: number[]; sum: number; count: number }, value: number): void {
    // Buckets are cumulative in the exposition format; store per-bucket and add up when rendering.
    let i = 0;
    while (i < this.buckets.length && value > (this.buckets[i] ?? Infinity)) i++;
    if (i < s.counts.length) s.counts[i] = (s.counts[i] ?? 0) + 1;
    s.sum += value;
    s.count++;
  }
  lines(): string[] {
    const out: string[] = [];
    for (const [k, s] of this.series) {
      let cumulative = 0;
      const prefix = k ? `${k},` : "";
      this.buckets.forEach((b, i) => {
        cumulative += s.counts[i] ?? 0;
        out.push(`${this.name}_bucket{${prefix}le="${b}"} ${cumulative}`);
      });
      out.push(`${this.name}_bucket{${prefix}le="+Inf"} ${s.count}`);
      out.push(`${this.name}_sum${k ? `{${k}}` : ""} ${s.sum}`);
      out.push(`${this.name}_count${k ? `{${k}}` : ""} ${s.count}`);
    }
    return out;
  }
}

export class Registry {
  private metrics: Metric[] = [];
  register<M extends Metric>(m: M): M {
    this.metrics.push(m);
    return m;
  }
  render(): string {
    return this.metrics.flatMap((m) => [...m.header(), ...m.lines()]).join("\n") + "\n";
  }
}
