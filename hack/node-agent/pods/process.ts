import { spawn } from "node:child_process";
import { openSync, closeSync } from "node:fs";

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * One container process: a sandbox script run inside the pod's network namespace (when it has
 * one) and a fresh mount + UTS namespace. The process leads its own process group, so stopping
 * it reaches everything it started.
 */
export class ContainerProcess {
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  private done = false;

  constructor(script: string, logFile: string, netns: string | undefined) {
    const fd = openSync(logFile, "a");
    const unshare = ["unshare", "--mount", "--uts", "--propagation", "private", "--", "/bin/sh", script];
    const argv = netns ? ["nsenter", `--net=/run/netns/${netns}`, "--", ...unshare] : unshare;
    const child = spawn(argv[0] ?? "nsenter", argv.slice(1), {
      detached: true,
      stdio: ["ignore", fd, fd],
      env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
    });
    closeSync(fd);
    if (child.pid === undefined) throw new Error(`could not start ${argv[0]}`);
    this.pid = child.pid;
    this.exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        this.done = true;
        resolve({ code, signal });
      });
      child.on("error", () => {
        this.done = true;
        resolve({ code: 128, signal: null });
      });
    });
  }

  get running(): boolean {
    return !this.done;
  }

  signal(sig: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, sig);
    } catch {
      // the group is gone
    }
  }

  /** SIGTERM the group, SIGKILL after graceMs; resolves when the leader has exited. */
  async stop(graceMs: number): Promise<ExitInfo> {
    if (this.done) return this.exited;
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), graceMs);
    const info = await this.exited;
    clearTimeout(timer);
    // Children that outlived the leader go too.
    this.signal("SIGKILL");
    return info;
  }

  kill(): Promise<ExitInfo> {
    this.signal("SIGKILL");
    return this.exited;
  }
}
