// The chart's monitoring objects, rendered with `helm template`: the alerts pass `promtool test
// rules`, every dashboard query parses as PromQL, every metric they name is one the operator or a
// target exports, and the PodMonitor finds the target pods' metrics port with the labels the
// queries join on.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { parseOperatorArgs, networkPolicyOptions } from "../../../operator/config.js";
import { OperatorMetrics } from "../../../operator/http/metrics.js";
import { desiredChildren } from "../../../operator/reconcile/desired-children.js";
import { TargetMetrics } from "../../../target/agent/target-metrics.js";
import { renderChart } from "../../support/chart-render.js";
import { dashboardQueries } from "../../support/dashboard-queries.js";
import { sampleStatus } from "../agent-sample.js";
import { target } from "../operator/fixtures.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
const ALL = [
  "metrics.serviceMonitor.enabled=true",
  "metrics.podMonitor.enabled=true",
  "metrics.prometheusRule.enabled=true",
  "metrics.dashboards.enabled=true",
];

const Obj = z.looseObject({
  kind: z.string(),
  metadata: z.looseObject({ name: z.string(), labels: z.record(z.string(), z.string()).optional() }),
});
function objects(set: string[]) {
  return renderChart(set)
    .filter((o) => o !== null)
    .map((o) => Obj.parse(o));
}
function one(set: string[], kind: string) {
  const found = objects(set).filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0]!;
}

function promtool(args: string[], cwd?: string): string {
  const r = spawnSync("promtool", args, { encoding: "utf8", cwd });
  assert.equal(r.error, undefined, "promtool (Debian package prometheus) must be installed: hack/deps.sh");
  assert.equal(r.status, 0, `promtool ${args.join(" ")}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const RuleGroups = z.object({
  groups: z.array(
    z.object({
      name: z.string(),
      rules: z.array(z.object({ alert: z.string(), expr: z.string(), for: z.string().optional() })),
    }),
  ),
});

/** Every metric family the operator and a pair target export, with histogram suffixes. */
async function exportedFamilies(): Promise<Set<string>> {
  const target = new TargetMetrics();
  // A node of a pair: its metrics include online verify's.
  target.watch(
    () => sampleStatus(target),
    () => ({ bytesChecked: 0, regionsMismatched: 0 }),
  );
  const text = `${await new OperatorMetrics().render()}\n${target.registry.render()}`;
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(m[1]!);
    if (m[2] === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(`${m[1]}${s}`);
  }
  return names;
}

describe("monitoring objects in the chart", () => {
  it("are off by default, each switchable on its own", () => {
    const kinds = objects([]).map((o) => o.kind);
    for (const k of ["PodMonitor", "PrometheusRule", "ServiceMonitor"]) assert.ok(!kinds.includes(k), k);
    assert.ok(!objects([]).some((o) => o.metadata.name.endsWith("-dashboard")));
    assert.deepEqual(
      objects(["metrics.podMonitor.enabled=true"])
        .map((o) => o.kind)
        .filter((k) => k.endsWith("Monitor") || k === "PrometheusRule"),
      ["PodMonitor"],
    );
  });

  it("the alerts render as a rules file promtool accepts, and pass promtool test rules", () => {
    const rule = one(ALL, "PrometheusRule") as unknown as { spec: unknown };
    const groups = RuleGroups.parse(rule.spec);
    assert.deepEqual(groups.groups.flatMap((g) => g.rules.map((r) => r.alert)).sort(), [
      "HASanNoNodeServing",
      "HASanOperatorDown",
      "HASanOperatorNotReconciling",
      "HASanPairDegraded",
      "HASanReconcileErrors",
      "HASanResyncStalled",
      "HASanSplitBrain",
      "HASanVerifyMismatch",
    ]);
    const dir = mkdtempSync(path.join(tmpdir(), "hasan-alerts-"));
    writeFileSync(path.join(dir, "rules.yaml"), JSON.stringify(rule.spec));
    promtool(["check", "rules", "rules.yaml"], dir);
    const tests = readFileSync(path.join(repoRoot, "test/unit/install/alerts.promtool.yaml"), "utf8");
    writeFileSync(path.join(dir, "tests.yaml"), `rule_files: [rules.yaml]\n${tests}`);
    const out = promtool(["test", "rules", "tests.yaml"], dir);
    assert.match(out, /SUCCESS/);
  });

  it("the alert durations follow the values", () => {
    const rule = one(
      [
        ...ALL,
        "metrics.prometheusRule.degradedFor=3m",
        "metrics.prometheusRule.resyncStalledFor=7m",
        "metrics.prometheusRule.operatorDownFor=4m",
      ],
      "PrometheusRule",
    ) as unknown as { spec: unknown };
    const rules = RuleGroups.parse(rule.spec).groups.flatMap((g) => g.rules);
    const forOf = (a: string) => rules.find((r) => r.alert === a)?.for;
    assert.equal(forOf("HASanPairDegraded"), "3m");
    assert.equal(forOf("HASanResyncStalled"), "7m");
    assert.equal(forOf("HASanOperatorDown"), "4m");
  });

  it("every dashboard query and alert expression parses as PromQL and names only exported metrics", async () => {
    const cm = one(ALL, "ConfigMap" as const) as unknown as {
      metadata: { labels: Record<string, string> };
      data: Record<string, string>;
    };
    assert.equal(cm.metadata.labels.grafana_dashboard, "1", "the dashboard sidecar's label");
    const queries = dashboardQueries(cm.data["hasan.json"] ?? "");
    const rule = one(ALL, "PrometheusRule") as unknown as { spec: unknown };
    const alerts = RuleGroups.parse(rule.spec).groups.flatMap((g) => g.rules);
    // promtool checks expressions of recording rules: one per query.
    const asRules = {
      groups: [
        {
          name: "dashboard",
          rules: [...queries, ...alerts.map((a) => ({ title: a.alert, expr: a.expr }))].map((q, i) => ({
            record: `hasan:query_${i}`,
            expr: q.expr,
          })),
        },
      ],
    };
    const dir = mkdtempSync(path.join(tmpdir(), "hasan-dashboard-"));
    writeFileSync(path.join(dir, "queries.yaml"), JSON.stringify(asRules));
    promtool(["check", "rules", "queries.yaml"], dir);
    const exported = await exportedFamilies();
    const keywords = new Set(["hasan_target", "hasan_operator"]);
    for (const q of [...queries, ...alerts.map((a) => ({ title: a.alert, expr: a.expr }))]) {
      for (const m of q.expr.matchAll(/\b(hasan_[a-z_]+|process_[a-z_]+)\b/g)) {
        if (keywords.has(m[1]!)) continue;
        assert.ok(exported.has(m[1]!), `${q.title}: ${m[1]} is not a metric hasan exports`);
      }
    }
  });

  it("the PodMonitor selects the target pods, scrapes their agent port and labels series with target and node", () => {
    const pm = one(["metrics.podMonitor.enabled=true"], "PodMonitor") as unknown as {
      spec: {
        selector: { matchLabels: Record<string, string> };
        namespaceSelector: { any?: boolean };
        podMetricsEndpoints: {
          port: string;
          path: string;
          relabelings: { sourceLabels: string[]; targetLabel: string }[];
        }[];
      };
    };
    const pod = desiredChildren(
      target(),
      { serviceIPs: { a: "10.96.0.1", b: "10.96.0.2" }, bothWorking: false, chap: { username: "data" } },
      { image: "img" },
    ).find((d) => d.kind === "Pod");
    assert.ok(pod);
    const labels = pod.metadata.labels ?? {};
    for (const [k, v] of Object.entries(pm.spec.selector.matchLabels)) assert.equal(labels[k], v, k);
    assert.equal(pm.spec.namespaceSelector.any, true, "every namespace when the operator watches all");
    const ep = pm.spec.podMetricsEndpoints[0]!;
    const containers = (pod as unknown as { spec: { containers: { ports?: { name: string }[] }[] } }).spec
      .containers;
    assert.ok(
      containers.some((c) => c.ports?.some((p) => p.name === ep.port)),
      `pod port ${ep.port}`,
    );
    assert.equal(ep.path, "/metrics");
    const meta = (l: string) => `__meta_kubernetes_pod_label_${l.replace(/[^a-zA-Z0-9_]/g, "_")}`;
    const relabeled = Object.fromEntries(ep.relabelings.map((r) => [r.targetLabel, r.sourceLabels[0]]));
    assert.equal(relabeled.target, meta("hasan.dev/target"));
    assert.equal(relabeled.node, meta("hasan.dev/node"));
    assert.ok(labels["hasan.dev/target"] && labels["hasan.dev/node"], "the pods carry both labels");
    const scoped = one(
      ["metrics.podMonitor.enabled=true", "operator.watchNamespace=san"],
      "PodMonitor",
    ) as unknown as {
      spec: { namespaceSelector: { matchNames?: string[] } };
    };
    assert.deepEqual(scoped.spec.namespaceSelector.matchNames, ["san"]);
  });

  it("with the PodMonitor on, the operator lets the scrapers through the pairs' NetworkPolicies", () => {
    const args = (set: string[]) => {
      const dep = objects(set).find(
        (o) => o.kind === "Deployment" && o.metadata.name === "hasan-operator",
      ) as unknown as {
        spec: { template: { spec: { containers: { args: string[] }[] } } };
      };
      return dep.spec.template.spec.containers[0]!.args;
    };
    assert.ok(!args([]).some((a) => a.startsWith("--metrics-scrapers")));
    const on = args(["metrics.podMonitor.enabled=true"]);
    const flag = on.find((a) => a.startsWith("--metrics-scrapers="));
    assert.ok(flag);
    const c = parseOperatorArgs([flag], {});
    assert.deepEqual(networkPolicyOptions(c)?.metricsScrapers, [{ namespaceSelector: {} }]);
    assert.ok(
      !args(["metrics.podMonitor.enabled=true", "networkPolicies.enabled=false"]).some((a) =>
        a.startsWith("--metrics-scrapers"),
      ),
    );
  });
});
