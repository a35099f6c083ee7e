import { execFile } from "node:child_process";

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a command without a shell; never throws for a non-zero exit. */
export function run(cmd: string, args: string[], input?: string, timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ stdout: String(stdout), stderr: String(stderr), code });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Runs a command and throws with its stderr when it fails. */
export async function mustRun(cmd: string, args: string[], input?: string): Promise<string> {
  const r = await run(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}
