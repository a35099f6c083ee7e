// The standard labels (app.kubernetes.io/*, helm.sh/chart) on every object the chart renders and on
// every pod template, with every optional part on; selectors that their pods' labels satisfy; and
// no label key written twice (a rendered duplicate key fails the YAML parse in renderChart).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { CHART_RELEASE, renderChart } from "../../support/chart-render.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
const Chart = z.object({ name: z.string(), version: z.string(), appVersion: z.string() });

// Every optional object at once; the two webhook certificate modes and the two RBAC scopes render
// different objects, hence two sets.
const EVERYTHING = [
  "metrics.serviceMonitor.enabled=true",
  "metrics.podMonitor.enabled=true",
  "metrics.prometheusRule.enabled=true",
  "metrics.dashboards.enabled=true",
  "csi.node.enabled=true",
];
const RENDERS = [
  [...EVERYTHING, "webhook.certManager.enabled=true"],
  [...EVERYTHING, "operator.watchNamespace=san"],
];

const Labels = z.record(z.string(), z.string());
const Obj = z.looseObject({
  kind: z.string(),
  metadata: z.looseObject({ name: z.string(), labels: Labels.optional() }),
  spec: z
    .looseObject({
      selector: z.unknown().optional(),
      template: z.object({ metadata: z.object({ labels: Labels.optional() }) }).optional(),
    })
    .optional(),
});
type Obj = z.infer<typeof Obj>;

function rendered(set: string[]): Obj[] {
  return renderChart(set)
    .filter((o) => o !== null)
    .map((o) => Obj.parse(o));
}

describe("chart labels", () => {
  const chart = Chart.parse(
    Object.fromEntries(
      readFileSync(path.join(repoRoot, "charts/hasan/Chart.yaml"), "utf8")
        .split("\n")
        .map((l) => /^(name|version|appVersion):\s*"?([^"]*)"?$/.exec(l))
        .filter((m) => m !== null)
        .map((m) => [m[1]!, m[2]!]),
    ),
  );
  const expectFixed = {
    "app.kubernetes.io/instance": CHART_RELEASE,
    "app.kubernetes.io/part-of": "hasan",
    "app.kubernetes.io/version": chart.appVersion,
    "app.kubernetes.io/managed-by": "Helm",
    "helm.sh/chart": `${chart.name}-${chart.version}`,
  };

  const check = (where: string, labels: Record<string, string> | undefined) => {
    for (const [k, v] of Object.entries(expectFixed)) assert.equal(labels?.[k], v, `${where}: ${k}`);
    for (const k of ["app.kubernetes.io/name", "app.kubernetes.io/component"]) {
      assert.match(labels?.[k] ?? "", /^[a-z0-9][a-z0-9-]*$/, `${where}: ${k}`);
    }
  };

  it("every rendered object and pod template carries name, instance, version, managed-by, component, part-of and helm.sh/chart", () => {
    for (const set of RENDERS) {
      const objects = rendered(set);
      assert.ok(objects.length >= 25, `renders the whole chart with ${set.join(" ")}`);
      for (const o of objects) {
        check(`${o.kind} ${o.metadata.name}`, o.metadata.labels);
        if (o.spec?.template)
          check(`${o.kind} ${o.metadata.name} pod template`, o.spec.template.metadata.labels);
      }
      const kinds = new Set(objects.map((o) => o.kind));
      for (const k of [
        "Deployment",
        "DaemonSet",
        "CustomResourceDefinition",
        "PodMonitor",
        "Certificate",
        "CSIDriver",
      ]) {
        if (k === "Certificate" && !set.includes("webhook.certManager.enabled=true")) continue;
        assert.ok(kinds.has(k), `renders a ${k} with ${set.join(" ")}`);
      }
    }
  });

  it("workload selectors are unchanged and select their own pod templates", () => {
    const selectors: Record<string, Record<string, string>> = {};
    for (const o of rendered(RENDERS[0]!)) {
      if (!o.spec?.template) continue;
      const sel = z.object({ matchLabels: Labels }).parse(o.spec.selector).matchLabels;
      selectors[o.kind] = { ...selectors[o.kind], [o.metadata.name]: JSON.stringify(sel) };
      for (const [k, v] of Object.entries(sel)) {
        assert.equal(o.spec.template.metadata.labels?.[k], v, `${o.kind} ${o.metadata.name}: ${k}`);
      }
    }
    // Deployment and DaemonSet selectors are immutable: an upgrade must not change them.
    const sel = (name: string) =>
      JSON.stringify({ "app.kubernetes.io/name": name, "app.kubernetes.io/instance": "hasan" });
    assert.deepEqual(selectors, {
      Deployment: {
        "hasan-operator": sel("hasan-operator"),
        "hasan-csi-controller": sel("hasan-csi-controller"),
      },
      DaemonSet: { "hasan-csi-node": sel("hasan-csi-node") },
    });
  });

  it("the ServiceMonitor selects the metrics Service and not the webhook's", () => {
    const objects = rendered(RENDERS[0]!);
    const sm = objects.find((o) => o.kind === "ServiceMonitor");
    const selector = z.object({ matchLabels: Labels }).parse(sm?.spec?.selector).matchLabels;
    const selected = objects
      .filter((o) => o.kind === "Service")
      .filter((o) => Object.entries(selector).every(([k, v]) => o.metadata.labels?.[k] === v))
      .map((o) => o.metadata.name);
    assert.deepEqual(selected, ["hasan-metrics"]);
  });
});
