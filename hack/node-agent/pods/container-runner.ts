import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Container, Probe } from "../kube/schemas.js";
import { ContainerProcess } from "./process.js";
import { probeOnce, ProbeState } from "./probe.js";
import type { ContainerState, ContainerView } from "./pod-status.js";
import { backoffMs, exitDetails, shouldRestart } from "./restart-policy.js";
import type { Logger } from "../../../target/log.js";

export interface LaunchSpec {
  /** Writes the sandbox script for this start and returns its path. */
  script: () => Promise<string>;
  logDir: string;
  netns: () => string | undefined;
  podIP: () => string;
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

/**
 * Supervises one container: starts its process, restarts it per policy with back-off, runs its
 * startup, liveness and readiness probes, and exposes the view the pod status is built from.
 */
export class ContainerRunner {
  private proc: ContainerProcess | undefined;
  private state: ContainerState = { waiting: { reason: "ContainerCreating" } };
  private lastState: ContainerState | undefined;
  private startedAtMs = 0;
  private timers: NodeJS.Timeout[] = [];
  private readiness: ProbeState | undefined;
  private startup: ProbeState | undefined;
  private startedFlag = false;
  private stopping = false;
  private final = false;
  private exitWaiters: (() => void)[] = [];

  constructor(
    readonly spec: Container,
    private restartCount: number,
    private readonly policy: string,
    private readonly launch: LaunchSpec,
    private readonly onChange: () => void,
    private readonly log: Logger,
  ) {}

  get pid(): number | undefined {
    return this.proc?.running ? this.proc.pid : undefined;
  }

  setWaiting(reason: string, message?: string): void {
    this.state = { waiting: message ? { reason, message } : { reason } };
    this.onChange();
  }

  view(): ContainerView {
    const running = "running" in this.state;
    const ready = running && this.startedFlag && (this.readiness ? this.readiness.result : true);
    return {
      name: this.spec.name,
      image: this.spec.image,
      state: this.state,
      ...(this.lastState ? { lastState: this.lastState } : {}),
      restartCount: this.restartCount,
      ready,
      started: running && this.startedFlag,
      final: this.final,
    };
  }

  /** Resolves when the container has terminated for good (used for init containers). */
  whenFinal(): Promise<void> {
    return this.final ? Promise.resolve() : new Promise((r) => this.exitWaiters.push(r));
  }

  get exitCode(): number | undefined {
    return "terminated" in this.state ? this.state.terminated.exitCode : undefined;
  }

  async start(): Promise<void> {
    if (this.stopping) return;
    const logDir = this.launch.logDir;
    await mkdir(logDir, { recursive: true });
    const script = await this.launch.script();
    // Stopped while the script was being prepared (pod deleted, node failed).
    if (this.stopping) return;
    const logFile = path.join(logDir, `${this.restartCount}.log`);
    await writeFile(logFile, "", { flag: "a" });
    const proc = new ContainerProcess(script, logFile, this.launch.netns());
    this.proc = proc;
    this.startedAtMs = Date.now();
    this.state = { running: { startedAt: now() } };
    this.readiness = this.spec.readinessProbe ? new ProbeState(this.spec.readinessProbe, false) : undefined;
    this.startup = this.spec.startupProbe ? new ProbeState(this.spec.startupProbe, false) : undefined;
    this.startedFlag = !this.startup;
    this.log.info(
      { container: this.spec.name, pid: proc.pid, restartCount: this.restartCount },
      "container started",
    );
    this.onChange();
    this.startProbes(proc);
    void proc.exited.then((info) => this.onExit(proc, info.code, info.signal));
  }

  private onExit(proc: ContainerProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (proc !== this.proc) return;
    this.clearTimers();
    const { exitCode, reason } = exitDetails(code, signal);
    const startedAt = "running" in this.state ? this.state.running.startedAt : now();
    this.state = {
      terminated: {
        exitCode,
        reason,
        startedAt,
        finishedAt: now(),
        ...(signal ? { signal: exitCode - 128 } : {}),
      },
    };
    this.log.info({ container: this.spec.name, exitCode, signal }, "container exited");
    const ranMs = Date.now() - this.startedAtMs;
    if (!this.stopping && shouldRestart(this.policy, exitCode)) {
      const delay = backoffMs(this.restartCount + 1, ranMs);
      this.lastState = this.state;
      this.restartCount++;
      if (delay > 0) {
        this.state = {
          waiting: {
            reason: "CrashLoopBackOff",
            message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${this.spec.name}`,
          },
        };
      }
      this.timers.push(setTimeout(() => void this.start().catch((err) => this.failStart(err)), delay));
    } else {
      this.final = true;
      for (const w of this.exitWaiters.splice(0)) w();
    }
    this.onChange();
  }

  failStart(err: unknown): void {
    this.log.error({ container: this.spec.name, err: String(err) }, "container start failed");
    this.setWaiting("RunContainerError", String(err));
  }

  private startProbes(proc: ContainerProcess): void {
    const schedule = (probe: Probe, fn: () => Promise<void>) => {
      const period = (probe.periodSeconds ?? 10) * 1000;
      const tick = async () => {
        if (proc !== this.proc || !proc.running) return;
        await fn();
        if (proc === this.proc && proc.running) this.timers.push(setTimeout(() => void tick(), period));
      };
      this.timers.push(setTimeout(() => void tick(), (probe.initialDelaySeconds ?? 0) * 1000));
    };
    const { startupProbe, readinessProbe, livenessProbe } = this.spec;
    if (startupProbe && this.startup) {
      const st = this.startup;
      schedule(startupProbe, async () => {
        if (this.startedFlag) return;
        const r = await probeOnce(startupProbe, this.spec, this.launch.podIP(), proc.pid);
        st.record(r);
        if (st.result) {
          this.startedFlag = true;
          this.onChange();
        } else if (st.failures >= (startupProbe.failureThreshold ?? 3)) {
          this.log.warn(
            { container: this.spec.name, message: st.lastMessage },
            "startup probe failed; restarting",
          );
          void this.restartAfterProbeFailure(proc);
        }
      });
    }
    if (readinessProbe && this.readiness) {
      const rd = this.readiness;
      schedule(readinessProbe, async () => {
        if (!this.startedFlag) return;
        if (rd.record(await probeOnce(readinessProbe, this.spec, this.launch.podIP(), proc.pid)))
          this.onChange();
      });
    }
    if (livenessProbe) {
      const lv = new ProbeState(livenessProbe, true);
      schedule(livenessProbe, async () => {
        if (!this.startedFlag) return;
        lv.record(await probeOnce(livenessProbe, this.spec, this.launch.podIP(), proc.pid));
        if (!lv.result) {
          this.log.warn(
            { container: this.spec.name, message: lv.lastMessage },
            "liveness probe failed; restarting",
          );
          void this.restartAfterProbeFailure(proc);
        }
      });
    }
  }

  private async restartAfterProbeFailure(proc: ContainerProcess): Promise<void> {
    if (proc !== this.proc) return;
    await proc.stop(30_000);
  }

  private clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }

  /** Graceful stop: no more restarts; SIGTERM, then SIGKILL after graceMs. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.clearTimers();
    if (this.proc?.running) await this.proc.stop(graceMs);
    if (!("terminated" in this.state)) {
      this.state = { terminated: { exitCode: 0, reason: "Completed", startedAt: now(), finishedAt: now() } };
    }
    this.final = true;
    for (const w of this.exitWaiters.splice(0)) w();
  }

  /** Node failure: everything dies at once, nothing is reported. */
  async kill(): Promise<void> {
    this.stopping = true;
    this.clearTimers();
    if (this.proc?.running) await this.proc.kill();
  }
}
