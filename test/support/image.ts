// The hasan image as users get it: built by hack/image/build.sh into an OCI archive, loaded from
// that archive into podman's storage, and run with podman.
import { readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { run } from "./processes.js";
import { repoRoot } from "./target-process.js";

export const imageName = (version: string) => `ghcr.io/hasan-dev/hasan:${version}`;

export function packageVersion(): string {
  return z
    .object({ version: z.string() })
    .parse(JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8"))).version;
}

/** Runs hack/image/build.sh (cached base and node_modules) and returns the archive's absolute path. */
export async function buildImageArchive(): Promise<{ archive: string; log: string }> {
  // A cold cache builds the Debian base with mmdebstrap and installs node_modules: minutes.
  const r = await run(path.join(repoRoot, "hack/image/build.sh"), [], { timeoutMs: 900_000 });
  const log = r.stdout + r.stderr;
  if (r.code !== 0) throw new Error(`hack/image/build.sh failed (${r.code}): ${log}`);
  const last = r.stdout.trim().split("\n").at(-1) ?? "";
  return { archive: path.resolve(repoRoot, last), log };
}

/** Loads the archive into podman's storage; returns the image ID. */
export async function loadImageArchive(archive: string): Promise<string> {
  const r = await run("podman", ["pull", "--quiet", `oci-archive:${archive}`], { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`podman pull oci-archive:${archive} failed: ${r.stdout}${r.stderr}`);
  return r.stdout.trim().split("\n").at(-1) ?? "";
}

/** This process's open-files limit, which the container keeps. */
function openFilesLimit(): number {
  const line = readFileSync("/proc/self/limits", "utf8")
    .split("\n")
    .find((l) => l.startsWith("Max open files"));
  const soft = Number(line?.split(/\s+/)[3]);
  return Number.isFinite(soft) && soft > 0 ? soft : 1024;
}

/**
 * `podman run` flags for the host network. runc, not crun: crun refuses the hybrid cgroup
 * hierarchy (v1 controllers plus a cgroup2 mount) of the machines tests run on. Explicit limits:
 * podman's defaults for root (1048576 open files) are more than a process without
 * CAP_SYS_RESOURCE may set there.
 */
export function podmanRunFlags(name: string): string[] {
  const nofile = openFilesLimit();
  return [
    "run",
    "--rm",
    "--name",
    name,
    "--runtime",
    "runc",
    "--network",
    "host",
    "--ulimit",
    `nofile=${nofile}:${nofile}`,
    "--ulimit",
    "nproc=32768:32768",
  ];
}

/** Runs a command in the image to completion. */
export async function runInImage(image: string, name: string, command: string[], timeoutMs = 120_000) {
  return await run("podman", [...podmanRunFlags(name), image, ...command], { timeoutMs });
}

/** Removes a container by name if it is still there (a test that failed midway). */
export async function removeContainer(name: string): Promise<void> {
  await run("podman", ["rm", "--force", "--time", "5", name], { timeoutMs: 60_000 });
}
