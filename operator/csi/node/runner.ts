import { execFile } from "node:child_process";

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs one host command (iscsiadm, multipath, multipathd, blkid, mkfs.*, mount, umount, findmnt,
 * resize2fs, xfs_growfs, blockdev). A non-zero exit is a result, not an exception: the callers
 * know which exit codes mean "already done".
 */
export interface CommandRunner {
  run(cmd: string, args: string[]): Promise<CommandResult>;
}

/**
 * Where the node tools run: `direct` (this container's or host's own programs) or `nsenter`: in the
 * host's mount, network and IPC namespaces (needs hostPID and privilege), so the node plugin uses
 * exactly the host's iscsiadm, multipath and mkfs, the versions that match its iscsid and
 * multipathd, and its mounts are the host's.
 */
export type HostCommands = "direct" | "nsenter";

/** The program and arguments that run `cmd args` as `mode` says. */
export function hostCommand(mode: HostCommands, cmd: string, args: string[]): [string, string[]] {
  return mode === "nsenter"
    ? ["nsenter", ["--target", "1", "--mount", "--net", "--ipc", "--", cmd, ...args]]
    : [cmd, args];
}

/** The real runner. A missing program answers exit code 127 as a shell would. */
export class ExecRunner implements CommandRunner {
  constructor(
    private readonly timeoutMs = 120_000,
    private readonly mode: HostCommands = "direct",
  ) {}

  run(command: string, commandArgs: string[]): Promise<CommandResult> {
    const [cmd, args] = hostCommand(this.mode, command, commandArgs);
    return new Promise((resolve) => {
      execFile(cmd, args, { timeout: this.timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
        const code = !e ? 0 : typeof e.code === "number" ? e.code : e.code === "ENOENT" ? 127 : 1;
        resolve({ code, stdout: String(stdout), stderr: String(stderr || (e && !stderr ? e.message : "")) });
      });
    });
  }
}
