import { spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { run, spawnLogged, stopProcess, waitFor } from "./processes.js";
import { repoRoot } from "./target-process.js";

/**
 * lazyfs (hack/lazyfs): a FUSE passthrough of a directory that holds file data writes in the daemon's
 * memory until the file is fsynced, so a power cut can be simulated honestly: SIGKILL the daemon and
 * detach the mount, and the directory holds exactly what was fsynced (metadata such as creates,
 * renames and truncates is persisted at once). close(2), sync(2) and syncfs(2) persist nothing.
 */
const buildScript = join(repoRoot, "hack/lazyfs/build.sh");
const FSTYPE = "fuse.lazyfs";

let binary: Promise<string> | undefined;

/** The lazyfs binary: hack/lazyfs/build.sh builds it into the cache when missing (once per process). */
export function lazyFsBinary(): Promise<string> {
  binary ??= (async () => {
    const r = await run("bash", [buildScript], { timeoutMs: 600_000 });
    const path = r.stdout.trim().split("\n").pop() ?? "";
    if (r.code !== 0 || !path) throw new Error(`${buildScript} failed (exit ${r.code}): ${r.stderr}`);
    return path;
  })();
  binary.catch(() => (binary = undefined));
  return binary;
}

interface MountEntry {
  mountPoint: string;
  fsType: string;
}

/** This process's mounts, from /proc/self/mountinfo. */
function mounts(): MountEntry[] {
  const unescape = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => {
      const f = line.split(" ");
      const sep = f.indexOf("-", 6);
      return { mountPoint: unescape(f[4] ?? ""), fsType: f[sep + 1] ?? "" };
    });
}

/** Whether a lazyfs (live or dead) is mounted at `mountPoint`. */
export function isLazyFsMounted(mountPoint: string): boolean {
  return mounts().some((m) => m.mountPoint === mountPoint && m.fsType === FSTYPE);
}

/** Lazily unmounts a mount point; resolves once it is gone from the mount table. */
async function detach(mountPoint: string): Promise<void> {
  if (!isLazyFsMounted(mountPoint)) return;
  const r = await run("umount", ["-l", mountPoint], { timeoutMs: 10_000 });
  if (r.code !== 0 && isLazyFsMounted(mountPoint)) {
    throw new Error(`umount -l ${mountPoint} failed (exit ${r.code}): ${r.stderr}`);
  }
  await waitFor(`${mountPoint} unmounted`, async () => !isLazyFsMounted(mountPoint), 10_000, 20);
}

/**
 * Lazily unmounts every lazyfs mounted at or under `dir`, deepest first, such as those a failed test
 * left behind; returns their mount points. A daemon still serving one exits once it is unmounted.
 */
export async function unmountLazyFsUnder(dir: string): Promise<string[]> {
  const root = realpathSync(dir);
  const found = mounts()
    .filter((m) => m.fsType === FSTYPE && (m.mountPoint === root || m.mountPoint.startsWith(`${root}/`)))
    .map((m) => m.mountPoint)
    .sort((a, b) => b.length - a.length);
  for (const m of found) await detach(m);
  return found;
}

/** Mounts that are up in this process; the exit hook takes them down if a test forgot to. */
const live = new Set<LazyFs>();
let exitHook = false;

function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.once("exit", () => {
    for (const fs of live) {
      fs.killNow();
      spawnSync("umount", ["-l", fs.mountPoint]);
    }
  });
}

export interface LazyFsOptions {
  /** Persist the buffered writes on a clean unmount (default: dropped, as at a power cut). */
  syncOnExit?: boolean;
  /** Log every FUSE request to the log file. */
  debug?: boolean;
  /** The daemon's stderr; default `<mountPoint>.lazyfs.log` beside the mount point. */
  logFile?: string;
}

export class LazyFs {
  private child: ChildProcess | undefined;

  private constructor(
    readonly backingDir: string,
    readonly mountPoint: string,
    readonly logFile: string,
    private readonly binary: string,
    private readonly options: LazyFsOptions,
  ) {}

  /**
   * Mounts a lazyfs of `backingDir` at `mountPoint` (both created when missing) and resolves once the
   * daemon reported ready and the mount is in the mount table.
   */
  static async mount(backingDir: string, mountPoint: string, options: LazyFsOptions = {}): Promise<LazyFs> {
    mkdirSync(backingDir, { recursive: true });
    mkdirSync(mountPoint, { recursive: true });
    const mnt = realpathSync(mountPoint);
    const logFile = options.logFile ?? join(dirname(mnt), `${basename(mnt)}.lazyfs.log`);
    const fs = new LazyFs(realpathSync(backingDir), mnt, logFile, await lazyFsBinary(), options);
    await fs.start();
    return fs;
  }

  /** Whether the daemon is running (the file system is up). */
  get mounted(): boolean {
    return this.child !== undefined;
  }

  /**
   * Power cut: SIGKILL the daemon, so everything it buffered is lost, and detach the dead mount.
   * Stop the processes that use the mount first: their I/O fails from here on (ENOTCONN).
   */
  async powerCut(): Promise<void> {
    const child = this.requireChild();
    await stopProcess(child, "SIGKILL");
    this.child = undefined;
    await detach(this.mountPoint);
    live.delete(this);
  }

  /** The machine after the reboot: a new daemon on the same directories. */
  async remount(): Promise<void> {
    if (this.child) throw new Error(`lazyfs at ${this.mountPoint} is still mounted`);
    await this.start();
  }

  /**
   * Clean unmount (SIGTERM). Buffered writes are dropped unless the mount was made with
   * `syncOnExit`. Harmless when already down.
   */
  async unmount(): Promise<void> {
    if (this.child) await stopProcess(this.child, "SIGTERM", 10_000);
    this.child = undefined;
    await detach(this.mountPoint);
    live.delete(this);
  }

  /** The daemon's log. */
  log(): string {
    try {
      return readFileSync(this.logFile, "utf8");
    } catch {
      return "";
    }
  }

  /** @internal SIGKILL without waiting, for the exit hook. */
  killNow(): void {
    this.child?.kill("SIGKILL");
  }

  private requireChild(): ChildProcess {
    if (!this.child) throw new Error(`lazyfs at ${this.mountPoint} is not mounted`);
    return this.child;
  }

  private async start(): Promise<void> {
    if (isLazyFsMounted(this.mountPoint)) {
      // Left by a daemon that died: a live one would answer stat.
      try {
        statSync(this.mountPoint);
        throw new Error(`a lazyfs is already mounted at ${this.mountPoint}`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOTCONN") throw e;
        await detach(this.mountPoint);
      }
    }
    const args = ["--backing", this.backingDir, "--mount", this.mountPoint, "--die-with-parent"];
    if (this.options.syncOnExit) args.push("--sync-on-exit");
    if (this.options.debug) args.push("--debug");
    const child = spawnLogged(this.binary, args, this.logFile);
    this.child = child;
    installExitHook();
    live.add(this);
    try {
      await new Promise<void>((resolve, reject) => {
        let out = "";
        const done = (err?: Error) => {
          clearTimeout(timer);
          child.stdout?.off("data", onData);
          child.off("exit", onExit);
          if (err) reject(err);
          else resolve();
        };
        const onData = (d: Buffer) => {
          out += d.toString();
          if (out.split("\n").includes("ready")) done();
        };
        const onExit = (code: number | null, signal: string | null) =>
          done(new Error(`lazyfs exited (${code ?? signal}) before it was ready: ${this.log()}`));
        const timer = setTimeout(() => done(new Error(`lazyfs not ready after 30 s: ${this.log()}`)), 30_000);
        child.stdout?.on("data", onData);
        child.once("exit", onExit);
      });
      await waitFor(
        `lazyfs mounted at ${this.mountPoint}`,
        async () => isLazyFsMounted(this.mountPoint),
        10_000,
        20,
      );
    } catch (e) {
      await stopProcess(child, "SIGKILL");
      this.child = undefined;
      live.delete(this);
      await detach(this.mountPoint).catch(() => undefined);
      throw e;
    }
  }
}
