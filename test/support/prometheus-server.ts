/**
 * Debian's Prometheus (`/usr/bin/prometheus`, hack/deps.sh) as a host process for tests: its own
 * temporary directory and free port, scrape configs reading their targets from files in that
 * directory (file_sd: test/support/kubernetes-discovery.ts fills them), rule groups, and typed reads
 * of its HTTP API (instant queries, active targets, rule health).
 */
import type { ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { z } from "zod";
import { freePort, run, spawnLogged, stopProcess, waitFor } from "./processes.js";

const Series = z.object({ metric: z.record(z.string(), z.string()) });
export type Series = z.infer<typeof Series>;

const QueryResponse = z.discriminatedUnion("status", [
  z.object({
    status: z.literal("success"),
    data: z.object({ resultType: z.string(), result: z.array(Series).or(z.unknown()) }),
  }),
  z.object({ status: z.literal("error"), errorType: z.string(), error: z.string() }),
]);

const TargetsResponse = z.object({
  data: z.object({
    activeTargets: z.array(
      z.object({
        scrapePool: z.string(),
        scrapeUrl: z.string(),
        health: z.string(),
        lastError: z.string(),
        labels: z.record(z.string(), z.string()),
      }),
    ),
  }),
});
export type ActiveTarget = z.infer<typeof TargetsResponse>["data"]["activeTargets"][number];

const RulesResponse = z.object({
  data: z.object({
    groups: z.array(
      z.object({
        name: z.string(),
        rules: z.array(z.object({ name: z.string(), health: z.string(), lastError: z.string().optional() })),
      }),
    ),
  }),
});

/** The file_sd files, one per Kubernetes discovery role. */
export interface DiscoveryFiles {
  pod: string;
  endpointslice: string;
}

export interface PrometheusServer {
  url: string;
  dir: string;
  discoveryFiles: DiscoveryFiles;
  /** Instant query; throws on a query error, returns the series of a vector result. */
  query(expr: string): Promise<Series[]>;
  targets(): Promise<ActiveTarget[]>;
  /** Every alerting/recording rule with its evaluation health. */
  rules(): Promise<{ group: string; name: string; health: string; lastError?: string | undefined }[]>;
  log(): Promise<string>;
  stop(): Promise<void>;
}

export async function startPrometheus(o: {
  scrapeConfigs: (files: DiscoveryFiles) => unknown[];
  ruleGroups: unknown;
  evaluationInterval: string;
}): Promise<PrometheusServer> {
  const dir = await mkdtemp(path.join(tmpdir(), "hasan-prometheus-"));
  const config = path.join(dir, "prometheus.json");
  const rules = path.join(dir, "rules.json");
  const discoveryFiles = {
    pod: path.join(dir, "sd-pod.json"),
    endpointslice: path.join(dir, "sd-endpointslice.json"),
  };
  for (const f of Object.values(discoveryFiles)) await writeFile(f, "[]");
  // JSON is YAML: Prometheus reads both files as they are written here.
  await writeFile(rules, JSON.stringify(o.ruleGroups, null, 2));
  await writeFile(
    config,
    JSON.stringify(
      {
        global: { evaluation_interval: o.evaluationInterval },
        rule_files: [rules],
        scrape_configs: o.scrapeConfigs(discoveryFiles),
      },
      null,
      2,
    ),
  );
  const check = await run("promtool", ["check", "config", config]);
  if (check.code !== 0) throw new Error(`promtool check config:\n${check.stdout}${check.stderr}`);

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFile = path.join(dir, "prometheus.log");
  const child: ChildProcess = spawnLogged(
    "prometheus",
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${path.join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=info",
    ],
    logFile,
  );
  const log = () => readFile(logFile, "utf8").catch(() => "");
  const get = async (route: string): Promise<unknown> => {
    const res = await fetch(url + route);
    return await res.json();
  };
  const stop = async () => {
    await stopProcess(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      "Prometheus ready",
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}:\n${await log()}`);
        return (await fetch(`${url}/-/ready`)).ok;
      },
      60_000,
      250,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    url,
    dir,
    discoveryFiles,
    async query(expr) {
      const r = QueryResponse.parse(await get(`/api/v1/query?query=${encodeURIComponent(expr)}`));
      if (r.status === "error") throw new Error(`${r.errorType}: ${r.error} in ${expr}`);
      if (r.data.resultType !== "vector") return [];
      return z.array(Series).parse(r.data.result);
    },
    async targets() {
      return TargetsResponse.parse(await get("/api/v1/targets?state=active")).data.activeTargets;
    },
    async rules() {
      return RulesResponse.parse(await get("/api/v1/rules")).data.groups.flatMap((g) =>
        g.rules.map((r) => ({ group: g.name, ...r })),
      );
    },
    log,
    stop,
  };
}
