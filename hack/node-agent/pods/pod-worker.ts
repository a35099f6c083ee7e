import { mkdir, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { KubeApiError, PATCH, isNotFound, type KubeClient } from "../../../operator/kit/kube-client.js";
import type { Container, Pod } from "../kube/schemas.js";
import { clusterDomain } from "../net/cluster-dns.js";
import { createPodNetwork, deletePodNetwork, podNetworkNames, type PodNetwork } from "../net/pod-network.js";
import { ContainerRunner } from "./container-runner.js";
import { containerEnv, expandVars } from "./env.js";
import { imagePlan, type SidecarBinaries } from "./image.js";
import { containerArgv, containerUser, type ImageRuntime } from "./image-config.js";
import { podStatus, type Condition, type PodView } from "./pod-status.js";
import { PodResources } from "./resources.js";
import { sandboxScript, type SandboxMount, type TopLevelEntry } from "./sandbox-script.js";
import { prepareVolumes, VolumeNotReady } from "./volumes.js";
import { agentFilesOwner, applyFsGroup } from "./volume-ownership.js";
import type { Logger } from "../../../target/log.js";

export interface WorkerDeps {
  client: KubeClient;
  log: Logger;
  runDir: string;
  appRoot: string;
  /**
   * The project's image, unpacked: its containers run from its root filesystem (topLevel: that
   * root's entries). Absent: they run from the host's directories with appRoot mounted as /app.
   */
  image?: { runtime: ImageRuntime; topLevel: TopLevelEntry[] };
  hostIP: string;
  /** Cluster IP of the cluster DNS Service (pods' nameserver). */
  dnsIP: string;
  topLevel: TopLevelEntry[];
  allocateIP: () => string;
  releaseIP: (ip: string) => void;
  serviceEnv: (namespace: string) => Record<string, string>;
  networkChanged: () => void;
  /** The CSI sidecar images this node runs from binaries built from their Go modules. */
  sidecars: SidecarBinaries;
}

const nowIso = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Plays kubelet for one pod: sandbox, volumes, containers, status, graceful termination. */
export class PodWorker {
  private net: PodNetwork | undefined;
  private podIP: string | undefined;
  private init: ContainerRunner[] = [];
  private containers: ContainerRunner[] = [];
  private initDone = false;
  private readonly startTime = nowIso();
  private conditions = new Map<string, Condition>();
  private lastPublished = "";
  private publishTimer: NodeJS.Timeout | undefined;
  private terminating: Promise<void> | undefined;
  private stopped = false;
  private readonly dir: string;
  readonly log: Logger;

  constructor(
    private pod: Pod,
    private readonly deps: WorkerDeps,
  ) {
    this.dir = path.join(deps.runDir, "pods", pod.metadata.uid);
    this.log = deps.log.child({ pod: `${pod.metadata.namespace}/${pod.metadata.name}` });
  }

  get uid(): string {
    return this.pod.metadata.uid;
  }
  get ip(): string | undefined {
    return this.podIP;
  }
  get network(): PodNetwork | undefined {
    return this.net;
  }
  get logDir(): string {
    const m = this.pod.metadata;
    return path.join(this.deps.runDir, "logs", "pods", `${m.namespace}_${m.name}_${m.uid}`);
  }
  pids(): number[] {
    return [...this.init, ...this.containers].flatMap((c) => (c.pid ? [c.pid] : []));
  }

  update(pod: Pod): void {
    this.pod = pod;
    if (pod.metadata.deletionTimestamp && !this.terminating) {
      const grace = pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30;
      void this.terminate(grace, true);
    }
  }

  async start(): Promise<void> {
    try {
      await this.run();
    } catch (err) {
      if (!this.stopped) this.log.error({ err: String(err) }, "pod start failed");
    }
  }

  private async run(): Promise<void> {
    const spec = this.pod.spec;
    const prior = new Map((this.pod.status?.containerStatuses ?? []).map((s) => [s.name, s.restartCount]));
    // A pod restarted after a node failure continues its restart counts, as after a reboot.
    const restartsBefore = (name: string) => (prior.has(name) ? (prior.get(name) ?? 0) + 1 : 0);
    const policy = spec.restartPolicy ?? "Always";
    const make = (c: Container, initContainer: boolean) =>
      new ContainerRunner(
        c,
        initContainer ? 0 : restartsBefore(c.name),
        initContainer ? (policy === "Always" ? "OnFailure" : policy) : policy,
        {
          script: () => this.writeScript(c),
          logDir: path.join(this.logDir, c.name),
          netns: () => this.net?.netns,
          podIP: () => this.podIP ?? "",
        },
        () => this.schedulePublish(),
        this.log,
      );
    this.init = (spec.initContainers ?? []).map((c) => make(c, true));
    this.containers = spec.containers.map((c) => make(c, false));
    this.initDone = this.init.length === 0;

    await mkdir(this.dir, { recursive: true });
    if (spec.hostNetwork) {
      this.podIP = this.deps.hostIP;
    } else {
      const ip = this.deps.allocateIP();
      this.net = await createPodNetwork(this.uid, ip).catch((err: unknown) => {
        this.deps.releaseIP(ip);
        throw err;
      });
      this.podIP = ip;
      this.deps.networkChanged();
      // Deleted or killed while the sandbox was being created: do not leave it behind.
      if (this.stopped || this.terminating) {
        await this.teardown();
        return;
      }
    }
    this.schedulePublish();

    for (const r of this.init) {
      if (!(await this.startContainer(r))) return;
      await r.whenFinal();
      if (this.stopped) return;
      if (r.exitCode !== 0) {
        this.schedulePublish();
        return;
      }
    }
    this.initDone = true;
    for (const r of this.containers) await this.startContainer(r);
    this.schedulePublish();
  }

  /** Starts a container once its image and volumes are usable; false when the pod is stopping. */
  private async startContainer(r: ContainerRunner): Promise<boolean> {
    const plan = imagePlan(r.spec.image, this.deps.sidecars);
    if (plan.kind === "unavailable") {
      // As a kubelet reports an image it cannot pull: ErrImagePull, then ImagePullBackOff.
      r.setWaiting("ErrImagePull", plan.message);
      this.log.warn(
        { container: r.spec.name, image: r.spec.image, message: plan.message },
        "image not runnable here",
      );
      await sleep(2000);
      if (!this.stopped)
        r.setWaiting(
          "ImagePullBackOff",
          `Back-off pulling image "${r.spec.image}": ErrImagePull: ${plan.message}`,
        );
      return false;
    }
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await r.start();
        return true;
      } catch (err) {
        const reason = err instanceof VolumeNotReady ? "ContainerCreating" : "CreateContainerConfigError";
        r.setWaiting(reason, String(err instanceof Error ? err.message : err));
        if (attempt % 10 === 0)
          this.log.info({ container: r.spec.name, err: String(err) }, "container not startable yet");
        await sleep(Math.min(1000 * 2 ** Math.min(attempt, 3), 5000));
      }
    }
    return false;
  }

  private async writeScript(c: Container): Promise<string> {
    const ns = this.pod.metadata.namespace ?? "default";
    const resources = new PodResources(this.deps.client, ns);
    const podIP = this.podIP ?? "";
    // Fetch what the environment refers to, then compute it with the data present.
    for (const e of c.env ?? []) {
      if (e.valueFrom?.configMapKeyRef?.name) await resources.configMap(e.valueFrom.configMapKeyRef.name);
      if (e.valueFrom?.secretKeyRef?.name) await resources.secret(e.valueFrom.secretKeyRef.name);
    }
    for (const e of c.envFrom ?? []) {
      if (e.configMapRef) await resources.configMap(e.configMapRef.name);
      if (e.secretRef) await resources.secret(e.secretRef.name);
    }
    const plan = imagePlan(c.image, this.deps.sidecars);
    const pause = plan.kind === "pause";
    const image = plan.kind === "project" ? this.deps.image : undefined;
    const all = [...(this.pod.spec.initContainers ?? []), ...this.pod.spec.containers];
    const podImage = all.some((x) => imagePlan(x.image, this.deps.sidecars).kind === "project")
      ? this.deps.image
      : undefined;
    const final = containerEnv(c, {
      pod: this.pod,
      podIP,
      hostIP: this.deps.hostIP,
      configMaps: resources.configMaps,
      secrets: resources.secrets,
      serviceEnv: this.deps.serviceEnv(ns),
      ...(image ? { imageEnv: image.runtime.env } : {}),
    });
    if (final.error) throw new Error(final.error);
    for (const w of final.warnings) this.log.warn({ container: c.name }, w);
    let command: string[];
    if (pause) command = ["/bin/sleep", "infinity"];
    else if (image) command = containerArgv(image.runtime, c.command, c.args);
    else {
      // A sidecar binary is its image's entrypoint; a container command replaces it, as anywhere.
      const entry = c.command?.length ? c.command : plan.kind === "binary" ? [plan.path] : [];
      command = entry.length ? [...entry, ...(c.args ?? [])] : [];
    }
    if (!command.length)
      throw new Error(`container "${c.name}" has no command; the local node agent needs one`);
    const argv = command.map((a) => expandVars(a, final.env));
    const user = image ? containerUser(this.pod, c, image.runtime.user) : undefined;
    // A runtime sets HOME from the image's passwd; the image's user 65532 has none, hence "/".
    if (user && final.env.HOME === undefined) final.env.HOME = user.uid === 0 ? "/root" : "/";

    const volumes = await prepareVolumes({
      client: this.deps.client,
      pod: this.pod,
      podIP,
      hostIP: this.deps.hostIP,
      resources,
      dir: path.join(this.dir, "volumes"),
      // Decided per pod: a sidecar's start rewrites the files a container of the image reads.
      ...(podImage ? { owner: agentFilesOwner(this.pod, podImage.runtime.user) } : {}),
    });
    if (podImage) await applyFsGroup(this.pod, volumes);
    const mounts: SandboxMount[] = image
      ? []
      : [{ source: this.deps.appRoot, target: "/app", readOnly: true, file: false }];
    const hosts = path.join(this.dir, "etc-hosts");
    await writeFile(
      hosts,
      `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${podIP}\t${this.pod.metadata.name}\n`,
    );
    mounts.push({ source: hosts, target: "/etc/hosts", readOnly: false, file: true });
    // Cluster DNS only: names outside the cluster do not resolve, so no query leaves the host.
    const resolv = path.join(this.dir, "resolv.conf");
    await writeFile(
      resolv,
      `search ${ns}.svc.${clusterDomain} svc.${clusterDomain} ${clusterDomain}\nnameserver ${this.deps.dnsIP}\noptions ndots:5\n`,
    );
    mounts.push({ source: resolv, target: "/etc/resolv.conf", readOnly: false, file: true });
    for (const m of c.volumeMounts ?? []) {
      const base = volumes.get(m.name);
      if (base === undefined) throw new Error(`volumeMount "${m.name}" refers to no volume`);
      const source = m.subPath ? path.join(base, m.subPath) : base;
      if (m.subPath) await mkdir(source, { recursive: true }).catch(() => undefined);
      const file = (await stat(source)).isFile();
      mounts.push({ source, target: m.mountPath, readOnly: m.readOnly ?? false, file });
    }
    const script = sandboxScript({
      root: path.join(this.dir, "root", c.name),
      scratch: path.join(this.dir, "scratch", c.name),
      hostname: this.pod.spec.hostname ?? this.pod.metadata.name,
      topLevel: image ? image.topLevel : this.deps.topLevel,
      mounts,
      workingDir: c.workingDir ?? image?.runtime.workingDir ?? "/",
      env: final.env,
      argv,
      ...(user ? { user } : {}),
    });
    const file = path.join(this.dir, `${c.name}.sh`);
    await writeFile(file, script, { mode: 0o700 });
    return file;
  }

  private view(): PodView {
    return {
      sandboxReady: this.podIP !== undefined,
      initDone: this.initDone,
      init: this.init.map((c) => c.view()),
      containers: this.containers.map((c) => c.view()),
      ...(this.podIP ? { podIP: this.podIP } : {}),
      hostIP: this.deps.hostIP,
      startTime: this.startTime,
    };
  }

  private schedulePublish(): void {
    if (this.stopped || this.publishTimer) return;
    this.publishTimer = setTimeout(() => {
      this.publishTimer = undefined;
      void this.publish();
    }, 100);
  }

  private async publish(): Promise<void> {
    if (this.stopped) return;
    const status = podStatus(this.view(), this.uid, this.conditions, nowIso());
    this.conditions = new Map(status.conditions.map((c) => [c.type, c]));
    const body = JSON.stringify(status);
    if (body === this.lastPublished) return;
    const m = this.pod.metadata;
    try {
      // Address lists are replaced, not merged: a pod restarted after a node failure has a new IP.
      const patch = {
        status: {
          ...status,
          hostIPs: [...status.hostIPs, { $patch: "replace" }],
          ...(status.podIPs ? { podIPs: [...status.podIPs, { $patch: "replace" }] } : {}),
        },
      };
      await this.deps.client.request("PATCH", `/api/v1/namespaces/${m.namespace}/pods/${m.name}/status`, {
        body: patch,
        contentType: PATCH.strategic,
      });
      this.lastPublished = body;
    } catch (err) {
      if (isNotFound(err)) return;
      this.log.warn({ err: String(err) }, "pod status update failed; retrying");
      setTimeout(() => this.schedulePublish(), 1000);
    }
  }

  /**
   * Graceful termination: SIGTERM, wait the grace period, SIGKILL; then release the network and,
   * when the pod object still exists, finalize it (delete with grace 0) as the kubelet does.
   */
  terminate(graceSeconds: number, finalize: boolean): Promise<void> {
    this.terminating ??= (async () => {
      this.log.info({ graceSeconds }, "terminating pod");
      await Promise.all([...this.init, ...this.containers].map((c) => c.stop(graceSeconds * 1000)));
      await this.publish().catch(() => undefined);
      this.stopped = true;
      await this.teardown();
      if (finalize) await finalizePod(this.deps.client, this.pod, this.log);
    })();
    return this.terminating;
  }

  /**
   * Agent shutdown: stop the processes gracefully but report nothing, so the pods are started
   * again by the next agent (as containers survive a kubelet restart in spirit).
   */
  async shutdown(graceSeconds: number): Promise<void> {
    this.stopped = true;
    if (this.publishTimer) clearTimeout(this.publishTimer);
    await Promise.all([...this.init, ...this.containers].map((c) => c.stop(graceSeconds * 1000)));
    await this.teardown();
  }

  /** Node failure: kill everything at once; nothing is reported to the API server. */
  async kill(): Promise<void> {
    this.stopped = true;
    if (this.publishTimer) clearTimeout(this.publishTimer);
    await Promise.all([...this.init, ...this.containers].map((c) => c.kill()));
    await this.teardown();
  }

  private async teardown(): Promise<void> {
    if (this.net) {
      await deletePodNetwork(this.net);
      this.deps.releaseIP(this.net.ip);
      this.net = undefined;
      this.deps.networkChanged();
    } else {
      await deletePodNetwork(podNetworkNames(this.uid));
    }
    // Volumes of other kinds live elsewhere (PV directories, host paths); only our own are removed.
    await rm(this.dir, { recursive: true, force: true, maxRetries: 3 }).catch((err) =>
      this.log.warn({ err: String(err) }, "could not remove pod directory"),
    );
  }
}

/** Deletes a pod object with grace 0, only if it is still the same pod. */
export async function finalizePod(client: KubeClient, pod: Pod, log: Logger): Promise<void> {
  const m = pod.metadata;
  try {
    await client.request("DELETE", `/api/v1/namespaces/${m.namespace}/pods/${m.name}`, {
      body: { apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds: 0, preconditions: { uid: m.uid } },
    });
    log.info("pod finalized");
  } catch (err) {
    if (err instanceof KubeApiError && (err.code === 404 || err.code === 409)) return;
    log.warn({ err: String(err) }, "pod finalize failed");
  }
}
