// The chart's monitoring against a real Prometheus on the local cluster: the operator installed with
// Helm, a Working pair with I/O through both portals, and Debian's Prometheus on the host scraping
// the operator and both target pods through scrape configs built from the chart's rendered
// ServiceMonitor and PodMonitor, over targets discovered from the cluster as Kubernetes discovery
// would (test/support/prometheus-monitors.ts and kubernetes-discovery.ts say what is not emulated),
// with the PrometheusRule's groups as its rule file. Every dashboard query and variable, and every
// alert, must find the series it reads, with the labels it groups and joins on.
//
// No fault is injected: every series the dashboard and the alerts read exists on a Working pair.
// The node states are exported for every state (1 for the current one, 0 for the others), so
// `state="Synchronizing"` has series; out-of-sync and resynced bytes are exported from the target's
// start. A panel that needed a resync to have series at all would fail here.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { loadAllYaml } from "@kubernetes/client-node";
import { z } from "zod";
import { ensureCluster, type Cluster } from "../support/cluster.js";
import { dashboardQueries, dashboardVariables } from "../support/dashboard-queries.js";
import {
  PodMonitor,
  ServiceMonitor,
  podMonitorScrapeConfigs,
  serviceMonitorScrapeConfigs,
} from "../support/prometheus-monitors.js";
import { writeDiscoveryFiles } from "../support/kubernetes-discovery.js";
import { startPrometheus, type PrometheusServer } from "../support/prometheus-server.js";
import { groupingLabels, metricSelectors, setOperands, withoutComparison } from "../support/promql-parts.js";
import { waitFor } from "../support/processes.js";
import { qemuIoOk } from "../support/qemu.js";
import {
  removeInstall,
  chartDir,
  condition,
  crdOwnership,
  dumpDiagnostics,
  getJson,
  helmOk,
  localClusterValues,
  repoRoot,
  waitForTarget,
} from "./install-support.js";

const id = randomBytes(3).toString("hex");
const ns = `monitoring-${id}`;
const operatorNs = `monitoring-${id}-system`;
const release = `hasan-mon-${id}`;
const name = "vol";
const chapUser = "monitoring";
const chapPassword = randomBytes(12).toString("hex");
// Short scrape and evaluation intervals so rate() has samples within a minute; the monitors are
// rendered with them, as a user would set them.
const interval = "5s";

const installValues = [
  "--set",
  `operator.watchNamespace=${ns}`,
  "--set",
  "operator.statusPollActiveMs=500",
  ...localClusterValues,
];
// The cluster has no monitoring.coreos.com API: the monitors and rules are rendered, not installed.
const monitoringValues = [
  "metrics.serviceMonitor.enabled=true",
  `metrics.serviceMonitor.interval=${interval}`,
  "metrics.podMonitor.enabled=true",
  `metrics.podMonitor.interval=${interval}`,
  "metrics.prometheusRule.enabled=true",
].flatMap((s) => ["--set", s]);

const PrometheusRule = z.object({
  kind: z.literal("PrometheusRule"),
  spec: z.object({
    groups: z.array(
      z.object({ name: z.string(), rules: z.array(z.looseObject({ alert: z.string(), expr: z.string() })) }),
    ),
  }),
});

const PvJson = z.object({
  spec: z.object({
    iscsi: z.object({
      targetPortal: z.string(),
      portals: z.array(z.string()).optional(),
      iqn: z.string(),
      lun: z.int(),
    }),
  }),
});

/**
 * What is wrong with one query, or nothing. Each operand of its and/or/unless, with a final
 * comparison with a number removed, must return series carrying every label it groups or joins on
 * (a condition that is false today still has to read series that exist); each metric selector
 * must match series. `whole` also asks the query itself for series (dashboard panels draw it).
 */
async function problems(p: PrometheusServer, expr: string, whole: boolean): Promise<string[]> {
  const out: string[] = [];
  if (whole && (await p.query(expr)).length === 0) out.push("returns nothing");
  for (const operand of setOperands(expr)) {
    const e = withoutComparison(operand.expr);
    const series = await p.query(e);
    if (series.length === 0) {
      out.push(`operand returns nothing: ${e}`);
      continue;
    }
    for (const label of new Set([...groupingLabels(operand.expr), ...operand.joinLabels])) {
      if (series.some((s) => !s.metric[label])) out.push(`operand lacks label ${label}: ${e}`);
    }
  }
  for (const selector of metricSelectors(expr)) {
    if ((await p.query(selector)).length === 0) out.push(`selector matches nothing: ${selector}`);
  }
  return out;
}

describe("monitoring: dashboard and alerts against a real Prometheus", () => {
  let c: Cluster;
  let prometheus: PrometheusServer | undefined;
  let ok = false;
  let installed = false;
  let restoreCrd = async () => {};

  before(async () => {
    c = await ensureCluster();
  });

  after(async () => {
    if (!ok && prometheus)
      process.stderr.write(`--- prometheus log ---\n${(await prometheus.log()).slice(-8000)}\n`);
    await prometheus?.stop();
    if (!ok && c) await dumpDiagnostics(c, operatorNs, [ns]).catch((e: unknown) => console.error(e));
    if (!c) return;
    await removeInstall(c, { release, operatorNs, ns, target: name, installed }, restoreCrd);
  });

  it(
    "every dashboard query and variable, and every alert, reads series that exist",
    { timeout: 1_200_000 },
    async (t) => {
      const step = (s: string) => t.diagnostic(`${new Date().toISOString()} ${s}`);

      const crd = await crdOwnership(c, release, operatorNs);
      restoreCrd = crd.restore;
      await c.kubectlOk(["create", "namespace", ns]);
      step(`helm install ${release}`);
      installed = true;
      await helmOk(c, [
        "install",
        release,
        chartDir,
        "-n",
        operatorNs,
        "--create-namespace",
        ...installValues,
        ...crd.flags,
        "--wait",
        "--timeout",
        "5m",
      ]);

      // The monitoring objects of this release as the chart renders them with these values.
      const rendered = loadAllYaml(
        await helmOk(c, [
          "template",
          release,
          chartDir,
          "-n",
          operatorNs,
          "--kube-version",
          c.kubernetesVersion,
          ...installValues,
          ...monitoringValues,
          "--show-only",
          "templates/metrics.yaml",
        ]),
      ) as unknown[];
      const ofKind = <T>(schema: z.ZodType<T>, kind: string): T => {
        const found = rendered.filter((o) => z.object({ kind: z.literal(kind) }).safeParse(o).success);
        assert.equal(found.length, 1, `the chart renders one ${kind}`);
        return schema.parse(found[0]);
      };
      const serviceMonitor = ofKind(ServiceMonitor, "ServiceMonitor");
      const podMonitor = ofKind(PodMonitor, "PodMonitor");
      const rules = ofKind(PrometheusRule, "PrometheusRule");

      step("starting Prometheus");
      prometheus = await startPrometheus({
        scrapeConfigs: (files) => [
          ...serviceMonitorScrapeConfigs(serviceMonitor, files.endpointslice),
          ...podMonitorScrapeConfigs(podMonitor, files.pod),
        ],
        ruleGroups: rules.spec,
        evaluationInterval: interval,
      });
      const p = prometheus;

      // A pair with CHAP, exported as a PV; I/O through both portals so the command series move.
      await c.kubectlOk([
        "-n",
        ns,
        "create",
        "secret",
        "generic",
        "vol-chap",
        "--type=kubernetes.io/iscsi-chap",
        `--from-literal=node.session.auth.username=${chapUser}`,
        `--from-literal=node.session.auth.password=${chapPassword}`,
      ]);
      await c.kubectlOk(["-n", ns, "apply", "-f", "-"], {
        input: JSON.stringify({
          apiVersion: "hasan.dev/v1alpha1",
          kind: "HASanTarget",
          metadata: { name },
          spec: {
            capacity: "64Mi",
            auth: { chapSecretRef: { name: "vol-chap" } },
            export: { persistentVolume: { reclaimPolicy: "Delete" } },
          },
        }),
      });
      step("waiting for both nodes Working");
      const ready = await waitForTarget(
        c,
        ns,
        name,
        "Synchronized",
        (x) => condition(x, "Synchronized") === "True",
      );
      const pvName = ready.status?.persistentVolumeName;
      assert.ok(pvName, "status names the exported PV");
      const pv = await getJson(c, PvJson, ["get", "pv", pvName]);
      const url = (portal: string) =>
        `iscsi://${chapUser}%${chapPassword}@${portal}/${pv.spec.iscsi.iqn}/${pv.spec.iscsi.lun}`;
      const [portalA, portalB] = [pv.spec.iscsi.targetPortal, pv.spec.iscsi.portals?.[0]];
      assert.ok(portalB, "the PV lists the second portal");
      step("I/O through both portals");
      await qemuIoOk(url(portalA), ["write -P 0x5a 0 4M", "read -P 0x5a 0 4M"]);
      await qemuIoOk(url(portalB), ["read -P 0x5a 0 4M", "write -P 0x6b 4M 4M"]);

      // Two operator replicas and both target pods, found through discovery and scraped.
      step("waiting for 4 healthy scrape targets");
      const targets = await waitFor(
        "the operator's 2 and the pair's 2 scrape targets up",
        async () => {
          await writeDiscoveryFiles((args) => c.kubectlOk(args), p.discoveryFiles);
          const all = await p.targets();
          return all.length === 4 && all.every((x) => x.health === "up") ? all : undefined;
        },
        180_000,
        3000,
      ).catch(async (e: unknown) => {
        throw new Error(`${String(e)}\n${JSON.stringify(await p.targets(), null, 2)}`);
      });
      const pairTargets = targets.filter((x) => x.scrapePool.startsWith("podMonitor/"));
      assert.deepEqual(
        pairTargets.map((x) => [x.labels.namespace, x.labels.target, x.labels.node, x.labels.pod]).sort(),
        [
          [ns, name, "a", `${name}-a`],
          [ns, name, "b", `${name}-b`],
        ],
        "the PodMonitor's relabelings give each target pod's series namespace, target and node",
      );

      // Every query of the dashboard (variables expanded as Grafana does for "All"), every
      // variable's label_values(), every alert. Series appear within a few scrapes: poll, then
      // report everything still missing.
      const dashboard = readFileSync(path.join(repoRoot, "charts/hasan/monitoring/dashboard.json"), "utf8");
      const checks = [
        ...dashboardQueries(dashboard).map((q) => ({
          where: `panel "${q.title}"`,
          expr: q.expr,
          whole: true,
        })),
        ...rules.spec.groups.flatMap((g) =>
          g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr, whole: false })),
        ),
      ];
      const variables = dashboardVariables(dashboard);
      assert.ok(
        checks.length > 20 && variables.length === 2,
        "the dashboard's and alerts' queries are all here",
      );
      const missing = async (): Promise<string[]> => {
        const out: string[] = [];
        for (const ch of checks) {
          for (const why of await problems(p, ch.expr, ch.whole))
            out.push(`${ch.where}: ${why}\n    ${ch.expr}`);
        }
        for (const v of variables) {
          const series = await p.query(v.selector);
          if (!series.some((s) => s.metric[v.label])) {
            out.push(`variable $${v.name}: label_values(${v.selector}, ${v.label}) lists nothing`);
          }
        }
        for (const r of await p.rules()) {
          if (r.health !== "ok") out.push(`rule ${r.name}: health ${r.health} ${r.lastError ?? ""}`);
        }
        return out;
      };
      step(`checking ${checks.length} queries and ${variables.length} variables`);
      let last: string[] = [];
      await waitFor(
        "every query to return series",
        async () => {
          last = await missing();
          return last.length === 0;
        },
        120_000,
        5000,
      ).catch(() => undefined);
      assert.equal(last.length, 0, `queries without series:\n${last.join("\n")}`);
      ok = true;
    },
  );
});
