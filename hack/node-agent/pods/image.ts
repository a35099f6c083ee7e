// Which images this node can run: the project's own image is this repository's build, the pause
// image a sleep, and the CSI sidecars the binaries hack/csi/tools.sh builds from their Go modules.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";

/** Repository part of an image reference, without tag or digest. */
export function imageRepository(image: string): string {
  const noDigest = image.split("@")[0] ?? image;
  const lastSlash = noDigest.lastIndexOf("/");
  const colon = noDigest.lastIndexOf(":");
  return colon > lastSlash ? noDigest.slice(0, colon) : noDigest;
}

/** Tag of an image reference ("latest" when none; undefined for a digest-only reference). */
export function imageTag(image: string): string | undefined {
  if (image.includes("@")) return undefined;
  const lastSlash = image.lastIndexOf("/");
  const colon = image.lastIndexOf(":");
  return colon > lastSlash ? image.slice(colon + 1) : "latest";
}

/** The pause image runs as a built-in pause process (sleep), e.g. for placeholder pods. */
export function isPauseImage(image: string): boolean {
  const repo = imageRepository(image);
  return repo === "pause" || repo.endsWith("/pause");
}

export function isProjectImage(image: string): boolean {
  const repo = imageRepository(image);
  return repo === "hasan" || repo.endsWith("/hasan");
}

/** The CSI sidecars built from Go modules, by the last part of their image repository. */
export interface SidecarBinaries {
  /** Directory hack/csi/tools.sh builds into (it may not exist yet). */
  dir: string;
  /** Pinned version per binary name (csi-provisioner, csi-resizer). */
  versions: Record<string, string>;
}

/** How a container's image runs here, or why it cannot (reported like an image that cannot be pulled). */
export type ImagePlan =
  | { kind: "project" }
  | { kind: "pause" }
  | { kind: "binary"; path: string }
  | { kind: "unavailable"; message: string };

export function imagePlan(image: string, sidecars: SidecarBinaries): ImagePlan {
  if (isProjectImage(image)) return { kind: "project" };
  if (isPauseImage(image)) return { kind: "pause" };
  const repo = imageRepository(image);
  const name = repo.slice(repo.lastIndexOf("/") + 1);
  const pinned = sidecars.versions[name];
  if (pinned === undefined) {
    return {
      kind: "unavailable",
      message:
        `the local node agent runs only this repository's image (…/hasan:<tag>), pause images and ` +
        `${Object.keys(sidecars.versions)
          .map((n) => `…/${n}:${sidecars.versions[n]}`)
          .join(", ")} built from their Go modules, not "${image}"`,
    };
  }
  const tag = imageTag(image);
  if (tag !== pinned) {
    return {
      kind: "unavailable",
      message: `${name} is built from its Go module at ${pinned} only (hack/csi/versions.sh), not "${image}"`,
    };
  }
  const binary = path.join(sidecars.dir, name);
  if (!existsSync(binary))
    return { kind: "unavailable", message: `${binary} is missing: make csi-tools builds it` };
  return { kind: "binary", path: binary };
}

/**
 * The sidecars' pinned versions and build directory, as hack/csi/tools.sh names it
 * ($HASAN_CACHE/tools/csi-provisioner-<v>-resizer-<v>-test-<v>).
 */
export function sidecarBinaries(appRoot: string, env: NodeJS.ProcessEnv = process.env): SidecarBinaries {
  const file = path.join(appRoot, "hack/csi/versions.sh");
  const vars: Record<string, string> = {};
  if (existsSync(file)) {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const m = /^([A-Z_]+)=(\S+)$/.exec(line.trim());
      if (m?.[1] && m[2]) vars[m[1]] = m[2];
    }
  }
  const provisioner = vars.CSI_PROVISIONER_VERSION ?? "";
  const resizer = vars.CSI_RESIZER_VERSION ?? "";
  const test = vars.CSI_TEST_VERSION ?? "";
  const cache = env.HASAN_CACHE ?? path.join(homedir(), ".cache/hasan");
  return {
    dir: path.join(cache, "tools", `csi-provisioner-${provisioner}-resizer-${resizer}-test-${test}`),
    versions: provisioner && resizer ? { "csi-provisioner": provisioner, "csi-resizer": resizer } : {},
  };
}
