/**
 * The exclusive lock a target holds on its data file for the life of the process, so that a
 * second target started on the same data file (and so on the same metadata files) refuses to
 * start instead of sharing them.
 *
 * It is a flock(2) lock on `<data file>.lock` (metadata-files.ts). Node has no flock(2), so the
 * target opens the lock file itself and has util-linux `flock --nonblock 3` lock that very open
 * file description, passed to it as its fd 3: a flock lock belongs to the open file
 * description, so it stays held by the target's descriptor after the one-shot `flock` exits,
 * and the kernel drops it when the target's last descriptor closes, however the target ends
 * (exit, SIGKILL, OOM kill; a power loss leaves no lock at all). libuv opens files close-on-exec,
 * so no child of the target (fallocate, ...) inherits the descriptor and outlives it with the
 * lock. The lock file is never removed (removing it would let a third process lock a new file
 * while a second still waits on the old one); it carries the holder's pid, host name and
 * start time for the message of a refused start.
 *
 * On a FUSE filesystem that does not implement flock (most, e.g. bindfs by default), the kernel
 * handles the lock locally: it excludes every process of this host that reaches the file
 * through the same mount, but not a process using another mount of the same files nor another
 * host. A FUSE filesystem that implements flock (FUSE_FLOCK_LOCKS, e.g. bindfs
 * --enable-lock-forwarding) gives its own semantics, released when the holder's file is
 * closed, as at its death.
 */
import { spawn } from "node:child_process";
import { close, constants as fsc, ftruncate, fsync, open, read, write } from "node:fs";
import { hostname } from "node:os";
import { promisify } from "node:util";
import { z } from "zod";
import type { Logger } from "../log.js";

const openFd = promisify(open);
const closeFd = promisify(close);
const truncateFd = promisify(ftruncate);
const syncFd = promisify(fsync);
const readFd = promisify(read);
const writeFd = promisify(write);

/** `flock --conflict-exit-code`: an exit status flock does not use for its own errors. */
const CONFLICT = 75;

export const LockHolderSchema = z.object({
  pid: z.number().int().positive(),
  host: z.string(),
  startedAt: z.string(),
  data: z.string(),
});
export type LockHolder = z.infer<typeof LockHolderSchema>;

/** Another process holds the lock: the data file is in use. */
export class DataFileLockedError extends Error {
  override name = "DataFileLockedError";
  constructor(
    readonly lockFile: string,
    readonly data: string,
    readonly holder: LockHolder | null,
  ) {
    super(
      `${data} is in use: its lock ${lockFile} is held by ${
        holder ? `pid ${holder.pid} on host ${holder.host} (started ${holder.startedAt})` : "another process"
      }; refusing to start a second target on it`,
    );
  }
}

export interface DataLock {
  readonly lockFile: string;
  /** Drops the lock (closes the descriptor); the process's exit does the same. */
  release(): Promise<void>;
}

export interface LockOptions {
  /** the flock(1) program (default: `flock` from PATH) */
  flockCommand?: string;
  logger?: Logger;
}

/**
 * Takes the exclusive lock `lockFile` for `data` without waiting, or throws
 * DataFileLockedError naming the holder when another process has it.
 */
export async function lockDataFile(lockFile: string, data: string, o: LockOptions = {}): Promise<DataLock> {
  const fd = await openFd(lockFile, fsc.O_RDWR | fsc.O_CREAT, 0o644).catch((e: NodeJS.ErrnoException) => {
    throw new Error(`cannot open the lock file ${lockFile} of ${data}: ${e.message}`);
  });
  try {
    const outcome = await runFlock(o.flockCommand ?? "flock", fd);
    if (outcome === "conflict") throw new DataFileLockedError(lockFile, data, await readHolder(fd));
    const holder: LockHolder = {
      pid: process.pid,
      host: hostname(),
      startedAt: new Date().toISOString(),
      data,
    };
    const text = Buffer.from(JSON.stringify(holder) + "\n");
    await truncateFd(fd, 0);
    await writeFd(fd, text, 0, text.length, 0);
    await syncFd(fd).catch(() => undefined);
  } catch (e) {
    await closeFd(fd).catch(() => undefined);
    throw e;
  }
  o.logger?.info({ lockFile, data }, "data file locked");
  let released = false;
  return {
    lockFile,
    async release() {
      if (released) return;
      released = true;
      await closeFd(fd);
    },
  };
}

function runFlock(command: string, fd: number): Promise<"locked" | "conflict"> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      command,
      ["--exclusive", "--nonblock", "--conflict-exit-code", String(CONFLICT), "3"],
      { stdio: ["ignore", "ignore", "pipe", fd] },
    );
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.once("error", (e: NodeJS.ErrnoException) => {
      reject(
        new Error(
          e.code === "ENOENT"
            ? `cannot lock the data file: the flock program (util-linux) is not installed`
            : `cannot run flock: ${e.message}`,
        ),
      );
    });
    child.once("close", (code, signal) => {
      if (code === 0) resolve("locked");
      else if (code === CONFLICT) resolve("conflict");
      else {
        reject(
          new Error(
            `cannot lock the data file: flock exited with ${code ?? signal}${stderr ? `: ${stderr.trim()}` : ""}`,
          ),
        );
      }
    });
  });
}

/** The holder recorded in the lock file, or null (not written yet, or not ours). */
async function readHolder(fd: number): Promise<LockHolder | null> {
  try {
    const buf = Buffer.alloc(4096);
    const { bytesRead } = await readFd(fd, buf, 0, buf.length, 0);
    const parsed = LockHolderSchema.safeParse(JSON.parse(buf.subarray(0, bytesRead).toString("utf8")));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
