// Shared setup of the operator integration tests: the real local cluster, the CRD, a namespace of
// the test's own and the operator as a host process scoped to that namespace.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { ensureCluster, type Cluster } from "../support/cluster.js";
import { freePort, spawnLogged, stopProcess, waitFor } from "../support/processes.js";
import { hasanTargetCrd } from "../../operator/api/crd.js";
import { API_VERSION, KIND } from "../../operator/api/target.js";
import { KubeClient, isNotFound } from "../../operator/kit/kube-client.js";
import type { HASanTargetStatus } from "../../operator/api/status.js";

export interface TargetObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; uid: string; resourceVersion: string; generation?: number };
  spec: Record<string, unknown>;
  status?: HASanTargetStatus;
}

export interface Child {
  metadata: {
    name: string;
    uid: string;
    resourceVersion: string;
    labels?: Record<string, string>;
    ownerReferences?: { uid: string; controller?: boolean; kind: string }[];
    deletionTimestamp?: string;
  };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

export interface OperatorProcess {
  child: ChildProcess;
  port: number;
  logFile: string;
  identity: string;
}

export async function metricValue(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith(name))
    .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
}

export class OperatorHarness {
  private operator: ChildProcess | undefined;
  private operators: OperatorProcess[] = [];
  metricsPort = 0;
  readonly logDir = mkdtempSync(join(tmpdir(), "hasan-operator-it-"));
  private logIndex = 0;

  private constructor(
    readonly cluster: Cluster,
    readonly client: KubeClient,
    readonly namespace: string,
  ) {}

  static async create(prefix: string): Promise<OperatorHarness> {
    const cluster = await ensureCluster();
    const client = KubeClient.fromOptions({ kubeconfig: cluster.kubeconfig });
    await installCrd(client);
    const namespace = `${prefix}-${randomBytes(3).toString("hex")}`;
    await client.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
    return new OperatorHarness(cluster, client, namespace);
  }

  get logFile(): string {
    return join(this.logDir, `operator-${this.logIndex}.log`);
  }

  /** Starts an operator scoped to the test namespace; the newest one is the harness's default. */
  async startOperator(extra: string[] = []): Promise<OperatorProcess> {
    this.logIndex++;
    const port = await freePort();
    const logFile = this.logFile;
    const child = spawnLogged(
      "node",
      [
        "dist/operator/main.js",
        "--kubeconfig",
        this.cluster.kubeconfig,
        "--namespace",
        this.namespace,
        "--metrics-addr",
        `127.0.0.1:${port}`,
        "--identity",
        `it-${this.logIndex}`,
        ...extra,
      ],
      logFile,
    );
    const p: OperatorProcess = { child, port, logFile, identity: `it-${this.logIndex}` };
    this.operators.push(p);
    this.metricsPort = port;
    this.operator = child;
    await waitFor(
      "operator /readyz",
      async () => {
        if (child.exitCode !== null)
          throw new Error(`operator exited: ${readFileSync(logFile, "utf8").slice(-2000)}`);
        return (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok;
      },
      60_000,
      200,
    );
    return p;
  }

  async stopOperator(p?: OperatorProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const targets = p ? [p] : this.operators;
    for (const o of targets) await stopProcess(o.child, signal);
    this.operators = this.operators.filter((o) => !targets.includes(o));
    if (!p || this.operator === p.child) this.operator = undefined;
  }

  operatorLog(): string {
    return this.operators
      .map((o) => {
        try {
          return `[${o.identity}]\n${readFileSync(o.logFile, "utf8")}`;
        } catch {
          return "";
        }
      })
      .join("\n");
  }

  /** Wraps a test body so a failure prints the operator's log tail (then fails as before). */
  async guard(body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } catch (e) {
      process.stderr.write(`--- operator log (tail) ---\n${this.operatorLog().slice(-6000)}\n---\n`);
      throw e;
    }
  }

  metric(name: string): Promise<number> {
    return metricValue(this.metricsPort, name);
  }

  target(name: string): Promise<TargetObject | undefined> {
    return this.client.getOrUndefined<TargetObject>(API_VERSION, KIND, this.namespace, name);
  }

  /** `kubectl wait` until the target's Synchronized condition is True; fails the test otherwise. */
  async waitSynchronized(name: string, timeoutSeconds = 240): Promise<void> {
    const r = await this.cluster.kubectl(
      [
        "wait",
        "--for=condition=Synchronized",
        `hst/${name}`,
        "-n",
        this.namespace,
        `--timeout=${timeoutSeconds}s`,
      ],
      { timeoutMs: (timeoutSeconds + 20) * 1000 },
    );
    assert.equal(r.code, 0, `kubectl wait: ${r.stderr}`);
  }

  async applyTarget(name: string, spec: Record<string, unknown>): Promise<TargetObject> {
    return await this.client.apply<TargetObject>(
      {
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name, namespace: this.namespace },
        spec,
      } as TargetObject,
      "integration-test",
    );
  }

  child(apiVersion: string, kind: string, name: string, clusterScoped = false): Promise<Child | undefined> {
    return this.client.getOrUndefined<Child>(
      apiVersion,
      kind,
      clusterScoped ? undefined : this.namespace,
      name,
    );
  }

  /**
   * The CHAP credentials initiators use for a target, read as a client does: status.auth names the
   * Secret (generated <name>-chap unless spec.auth.chapSecretRef), which holds
   * node.session.auth.username and node.session.auth.password.
   */
  async chapCredentials(name: string): Promise<{ user: string; secret: string; secretName: string }> {
    const t = await this.waitFor("status.auth names the CHAP Secret", async () =>
      (await this.target(name))?.status?.auth?.chapSecretName ? await this.target(name) : undefined,
    );
    const secretName = t.status!.auth!.chapSecretName!;
    const s = await this.waitFor(`Secret ${secretName}`, () => this.child("v1", "Secret", secretName));
    const get = (k: string) => Buffer.from(s.data?.[k] ?? "", "base64").toString("utf8");
    return { user: get("node.session.auth.username"), secret: get("node.session.auth.password"), secretName };
  }

  /** The pair's agent token (Secret <name>-agent, key token), as the operator sends it. */
  async agentToken(name: string): Promise<string> {
    const s = await this.waitFor(`Secret ${name}-agent`, () => this.child("v1", "Secret", `${name}-agent`));
    return Buffer.from(s.data?.token ?? "", "base64").toString("utf8");
  }

  waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
    return waitFor(what, check, timeoutMs, 250);
  }

  /** Deletes every HASanTarget (the operator must run for finalizers), then the namespace. */
  async cleanup(): Promise<void> {
    try {
      const list = await this.client.list<TargetObject>(API_VERSION, KIND, this.namespace);
      for (const t of list.items)
        await this.client.delete(API_VERSION, KIND, this.namespace, t.metadata.name);
      await waitFor(
        "HASanTargets to be finalized",
        async () => (await this.client.list(API_VERSION, KIND, this.namespace)).items.length === 0,
        120_000,
        500,
      ).catch(async () => {
        // Operator gone or stuck: drop finalizers so the namespace can go.
        const left = await this.client.list<TargetObject>(API_VERSION, KIND, this.namespace);
        for (const t of left.items) {
          await this.client
            .mergePatch(API_VERSION, KIND, this.namespace, t.metadata.name, {
              metadata: { finalizers: null },
            })
            .catch(() => undefined);
        }
      });
    } finally {
      await this.stopOperator();
      const pvs = await this.client.list<Child>("v1", "PersistentVolume", undefined, {
        labelSelector: `hasan.dev/namespace=${this.namespace}`,
      });
      for (const pv of pvs.items)
        await this.client.delete("v1", "PersistentVolume", undefined, pv.metadata.name);
      await this.client.delete("v1", "Namespace", undefined, this.namespace);
      this.client.close();
      rmSync(this.logDir, { recursive: true, force: true });
    }
  }
}

export async function installCrd(client: KubeClient): Promise<void> {
  const crd = hasanTargetCrd() as { apiVersion: string; kind: string; metadata: { name: string } };
  await client.apply(crd, "hasan-operator");
  await waitFor(
    "CRD established",
    async () => {
      const c = await client.get<{ status?: { conditions?: { type: string; status: string }[] } }>(
        crd.apiVersion,
        crd.kind,
        undefined,
        crd.metadata.name,
      );
      return c.status?.conditions?.some((x) => x.type === "Established" && x.status === "True");
    },
    60_000,
    200,
  );
  // Discovery of the new resource can lag behind Established by a moment.
  await waitFor(
    "HASanTarget list",
    async () => {
      try {
        await client.list(API_VERSION, KIND, "default");
        return true;
      } catch (e) {
        if (isNotFound(e)) return false;
        throw e;
      }
    },
    30_000,
    200,
  );
}
