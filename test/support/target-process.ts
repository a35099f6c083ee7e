import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { TargetStatusSchema, type TargetStatus } from "../../target/agent/status-schema.js";
import { freePort, spawnLogged, stopProcess, waitFor } from "./processes.js";

export const repoRoot = resolve(fileURLToPath(import.meta.url), "../../../..");
export const targetMain = join(repoRoot, "dist/target/main.js");

export interface TargetHandle {
  readonly iqn: string;
  readonly host: string;
  readonly port: number;
  readonly agentPort: number;
  readonly dataFile: string;
  readonly logFile: string;
  readonly args: string[];
  /** the agent's --agent-token-file content, when it runs with one */
  readonly agentToken?: string;
  process: ChildProcess;
  url(lun?: number, credentials?: { user: string; secret: string }): string;
  status(): Promise<TargetStatus>;
  /** SIGTERM (graceful) or SIGKILL, then wait for exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the same command line again (same data file, ports). */
  restart(): Promise<void>;
  log(): string;
}

export interface StartTargetOptions {
  iqn?: string;
  size?: string;
  /** Holds the log, and the LUN file unless `dataDir` is given; a new temporary directory by default. */
  dir?: string;
  /** Where the LUN file (and the unit state beside it) lives, when not in `dir`. */
  dataDir?: string;
  host?: string;
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** file names in `dir` (default lun0.img and target.log) */
  dataName?: string;
  logName?: string;
  /** runs the agent with --agent-token-file holding this token; status() then sends it */
  agentToken?: string;
}

/** Starts `dist/target/main.js serve` on loopback and waits until its agent reports ready. */
export async function startTarget(o: StartTargetOptions = {}): Promise<TargetHandle> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), "hasan-target-"));
  const host = o.host ?? "127.0.0.1";
  const port = await freePort(host);
  const agentPort = await freePort(host);
  const iqn = o.iqn ?? `iqn.2026-11.dev.hasan:test-${port}`;
  const dataFile = join(o.dataDir ?? dir, o.dataName ?? "lun0.img");
  const logFile = join(dir, o.logName ?? "target.log");
  const tokenArgs: string[] = [];
  if (o.agentToken !== undefined) {
    const tokenFile = join(dir, "agent.token");
    writeFileSync(tokenFile, `${o.agentToken}\n`);
    tokenArgs.push("--agent-token-file", tokenFile);
  }
  const args = [
    targetMain,
    "serve",
    "--data",
    dataFile,
    "--size",
    o.size ?? "256Mi",
    "--iqn",
    iqn,
    "--listen",
    `${host}:${port}`,
    "--agent-listen",
    `${host}:${agentPort}`,
    ...tokenArgs,
    ...(o.extraArgs ?? []),
  ];
  const env = o.env ?? { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? "16" };
  const handle: TargetHandle = {
    iqn,
    host,
    port,
    agentPort,
    dataFile,
    logFile,
    args,
    ...(o.agentToken !== undefined ? { agentToken: o.agentToken } : {}),
    process: spawnLogged(process.execPath, args, logFile, env),
    url(lun = 0, credentials) {
      const cred = credentials
        ? `${encodeURIComponent(credentials.user)}%${encodeURIComponent(credentials.secret)}@`
        : "";
      return `iscsi://${cred}${host}:${port}/${iqn}/${lun}`;
    },
    async status() {
      const headers: Record<string, string> =
        o.agentToken === undefined ? {} : { authorization: `Bearer ${o.agentToken}` };
      const r = await fetch(`http://${host}:${agentPort}/status`, { headers });
      return TargetStatusSchema.parse(await r.json());
    },
    async stop(signal = "SIGTERM") {
      await stopProcess(handle.process, signal);
    },
    async restart() {
      await stopProcess(handle.process);
      handle.process = spawnLogged(process.execPath, args, logFile, env);
      await waitReady(handle);
    },
    log() {
      return readFileSync(logFile, "utf8");
    },
  };
  await waitReady(handle);
  return handle;
}

async function waitReady(h: TargetHandle): Promise<void> {
  await waitFor(
    `target ${h.iqn} ready (log: ${h.logFile})`,
    async () => {
      if (h.process.exitCode !== null)
        throw new Error(`target exited with ${h.process.exitCode}: ${h.log()}`);
      const r = await fetch(`http://${h.host}:${h.agentPort}/readyz`);
      return r.status === 200;
    },
    30_000,
    50,
  );
}
