import type { Logger } from "pino";
import { internal } from "../errors.js";
import type { NodeFs, StagingStore } from "./host.js";
import type { CommandResult, CommandRunner } from "./runner.js";

/** Everything the node operations touch, injected so tests can record it. */
export interface NodeDeps {
  runner: CommandRunner;
  fs: NodeFs;
  staging: StagingStore;
  sleep: (ms: number) => Promise<void>;
  /** Longest wait for the multipath device after login. */
  deviceWaitMs: number;
  log: Logger;
}

export function describe(cmd: string, args: string[], r: CommandResult): string {
  const out = (r.stderr || r.stdout).trim().split("\n").slice(-3).join(" | ");
  return `${cmd} ${args.join(" ")} exited ${r.code}${out ? `: ${out}` : ""}`;
}

/** Runs a command that must succeed (exit 0 or one of `ok`); anything else is INTERNAL with its output. */
export async function must(
  d: NodeDeps,
  cmd: string,
  args: string[],
  ok: number[] = [],
): Promise<CommandResult> {
  const r = await d.runner.run(cmd, args);
  if (r.code !== 0 && !ok.includes(r.code)) throw internal(describe(cmd, args, r));
  return r;
}

/** Whether something is mounted at exactly this path (findmnt: exit 0 yes, 1 no). */
export async function isMountPoint(d: NodeDeps, p: string): Promise<boolean> {
  const r = await must(d, "findmnt", ["-n", "-o", "TARGET", "--mountpoint", p], [1]);
  return r.code === 0;
}

/** The filesystem type mounted at a path, or undefined. */
export async function mountedFsType(d: NodeDeps, p: string): Promise<string | undefined> {
  const r = await must(d, "findmnt", ["-n", "-o", "FSTYPE", "--mountpoint", p], [1]);
  return r.code === 0 ? r.stdout.trim() || undefined : undefined;
}
