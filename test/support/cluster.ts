// The local Kubernetes cluster for end-to-end tests: brings it up once (or reuses the running
// one) and offers kubectl, helm and fault injection (node failure, cut links between pods).
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { PodInfo } from "../../hack/node-agent/control/api.js";

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface PodRef {
  namespace: string;
  name: string;
}

export interface Cluster {
  kubeconfig: string;
  kubernetesVersion: string;
  /** Path of the kubectl binary (for commands a test runs in the background, such as a drain). */
  kubectlBinary: string;
  runDir: string;
  /** Runs kubectl against the cluster; never throws for a non-zero exit. */
  kubectl(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<RunResult>;
  /** Like kubectl, but throws (with stderr) on failure and returns stdout. */
  kubectlOk(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<string>;
  helm(args: string[], opts?: { timeoutMs?: number }): Promise<RunResult>;
  /** Heartbeats stop and the node's processes are SIGKILLed; the controllers mark it NotReady. */
  failNode(name: string): Promise<void>;
  /** Heartbeats resume and the node's pods are started again. */
  restoreNode(name: string): Promise<void>;
  /** Drops all traffic between two pods (both directions). */
  cutLink(a: PodRef, b: PodRef): Promise<void>;
  restoreLink(a: PodRef, b: PodRef): Promise<void>;
  /** Latest run's output of each container of the pod (or of one container). */
  podLogs(namespace: string, pod: string, container?: string): Promise<string>;
  /** Where the node agent runs the pod: node, IP, network namespace, process ids. */
  podInfo(namespace: string, pod: string): Promise<PodInfo>;
  /** Runs a command on the host inside the pod's network namespace. */
  execInPodNetwork(namespace: string, pod: string, cmd: string[]): Promise<RunResult>;
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const clusterDir = path.join(repoRoot, "hack/cluster");

const Paths = z.object({
  kubeconfig: z.string(),
  kubectl: z.string(),
  helm: z.string(),
  runDir: z.string(),
  agentPort: z.number(),
  kubernetesVersion: z.string(),
});

export function run(
  cmd: string,
  args: string[],
  opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, env: opts.env ?? process.env },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ stdout: String(stdout), stderr: String(stderr), code });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Runs cluster-up (streaming its progress to stderr); it reuses a running cluster. */
function clusterUp(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(clusterDir, "up.sh"), [], { stdio: ["ignore", "ignore", "inherit"] });
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`hack/cluster/up.sh exited ${code}`)),
    );
  });
}

let cached: Promise<Cluster> | undefined;

export function ensureCluster(): Promise<Cluster> {
  cached ??= connect();
  return cached;
}

async function connect(): Promise<Cluster> {
  await clusterUp();
  const out = await run(path.join(clusterDir, "paths.sh"), []);
  if (out.code !== 0) throw new Error(`paths.sh failed: ${out.stderr}`);
  const p = Paths.parse(JSON.parse(out.stdout));
  const agent = `http://127.0.0.1:${p.agentPort}`;

  const call = async (method: string, route: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(agent + route, {
      method,
      headers: { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json: unknown = await res.json();
    if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const kubectl = (args: string[], opts: { input?: string; timeoutMs?: number } = {}) =>
    run(p.kubectl, ["--kubeconfig", p.kubeconfig, ...args], opts);

  const cluster: Cluster = {
    kubeconfig: p.kubeconfig,
    kubernetesVersion: p.kubernetesVersion,
    kubectlBinary: p.kubectl,
    runDir: p.runDir,
    kubectl,
    async kubectlOk(args, opts) {
      const r = await kubectl(args, opts);
      if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: exit ${r.code}: ${r.stderr}`);
      return r.stdout;
    },
    helm: (args, opts = {}) =>
      run(p.helm, args, { ...opts, env: { ...process.env, KUBECONFIG: p.kubeconfig } }),
    async failNode(name) {
      await call("POST", `/nodes/${encodeURIComponent(name)}/fail`);
    },
    async restoreNode(name) {
      await call("POST", `/nodes/${encodeURIComponent(name)}/restore`);
    },
    async cutLink(a, b) {
      await call("POST", "/links/cut", { a, b });
    },
    async restoreLink(a, b) {
      await call("POST", "/links/restore", { a, b });
    },
    podLogs: (namespace, pod, container) => readPodLogs(p.runDir, namespace, pod, container),
    async podInfo(namespace, pod) {
      return PodInfo.parse(
        await call("GET", `/pods/${encodeURIComponent(namespace)}/${encodeURIComponent(pod)}`),
      );
    },
    async execInPodNetwork(namespace, pod, cmd) {
      const info = PodInfo.parse(await call("GET", `/pods/${namespace}/${pod}`));
      if (!info.netns) throw new Error(`pod ${namespace}/${pod} uses the host network`);
      return run("ip", ["netns", "exec", info.netns, ...cmd]);
    },
  };
  return cluster;
}

async function readPodLogs(
  runDir: string,
  namespace: string,
  pod: string,
  container?: string,
): Promise<string> {
  const base = path.join(runDir, "logs", "pods");
  const prefix = `${namespace}_${pod}_`;
  const dirs = (await readdir(base).catch(() => [] as string[])).filter((d) => d.startsWith(prefix));
  if (dirs.length === 0) throw new Error(`no logs for pod ${namespace}/${pod}`);
  const withTimes = await Promise.all(
    dirs.map(async (d) => ({ d, t: (await stat(path.join(base, d))).mtimeMs })),
  );
  const newest = withTimes.sort((x, y) => y.t - x.t)[0]?.d ?? "";
  let out = "";
  for (const c of await readdir(path.join(base, newest))) {
    if (container && c !== container) continue;
    const runs = (await readdir(path.join(base, newest, c))).map((f) => Number(f.replace(/\.log$/, "")));
    const last = Math.max(...runs);
    out += await readFile(path.join(base, newest, c, `${last}.log`), "utf8");
  }
  return out;
}

/** A `kubectl drain` running in the background: its combined output so far and its end. */
export interface Drain {
  readonly process: ChildProcess;
  /** stdout and stderr so far (kubectl prints a line per refused eviction, retried every 5 s) */
  output(): string;
  exited: Promise<{ code: number; at: number }>;
}

/** Drains `node` of the pods of one HASanTarget (label hasan.dev/target), in the background. */
export function startDrain(c: Cluster, node: string, target: string, timeout = "300s"): Drain {
  const child = spawn(
    c.kubectlBinary,
    [
      "--kubeconfig",
      c.kubeconfig,
      "drain",
      node,
      `--pod-selector=hasan.dev/target=${target}`,
      "--ignore-daemonsets",
      "--delete-emptydir-data",
      `--timeout=${timeout}`,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (output += d));
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (output += d));
  const exited = new Promise<{ code: number; at: number }>((resolve) =>
    child.on("close", (code) => resolve({ code: code ?? 1, at: Date.now() })),
  );
  return { process: child, output: () => output, exited };
}
