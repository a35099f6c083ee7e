// The project's image as the node runs it: its unpacked root filesystem and the OCI image config
// (Env, Entrypoint, Cmd, WorkingDir, User), applied to a container as a kubelet and its runtime do.
import { readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import type { Container, Pod } from "../kube/schemas.js";

/** The part of an OCI image configuration (image-spec config.json) a container start uses. */
export const OciImageConfig = z.looseObject({
  config: z
    .looseObject({
      User: z.string().optional(),
      Env: z.array(z.string()).nullish(),
      Entrypoint: z.array(z.string()).nullish(),
      Cmd: z.array(z.string()).nullish(),
      WorkingDir: z.string().optional(),
    })
    .optional(),
});
export type OciImageConfig = z.infer<typeof OciImageConfig>;

export interface ImageUser {
  uid: number;
  gid: number;
}

/** What the node needs of the project's image: where its root is and how it runs. */
export interface ImageRuntime {
  rootfs: string;
  env: Record<string, string>;
  entrypoint: string[];
  cmd: string[];
  workingDir: string;
  user: ImageUser;
}

/** Numeric USER of an image ("", "0", "65532", "65532:65532"); names would need the image's passwd. */
export function parseImageUser(user: string | undefined): ImageUser {
  const spec = user ?? "";
  if (spec === "" || spec === "root") return { uid: 0, gid: 0 };
  const m = /^(\d+)(?::(\d+))?$/.exec(spec);
  if (!m?.[1]) throw new Error(`image user "${spec}" is not numeric (uid or uid:gid)`);
  const uid = Number(m[1]);
  return { uid, gid: m[2] !== undefined ? Number(m[2]) : uid };
}

export function imageRuntime(rootfs: string, config: OciImageConfig): ImageRuntime {
  const c = config.config ?? {};
  const env: Record<string, string> = {};
  for (const kv of c.Env ?? []) {
    const eq = kv.indexOf("=");
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return {
    rootfs,
    env,
    entrypoint: c.Entrypoint ?? [],
    cmd: c.Cmd ?? [],
    workingDir: c.WorkingDir || "/",
    user: parseImageUser(c.User),
  };
}

/**
 * The bundle hack/cluster/image-rootfs.sh unpacks: rootfs/ (the image's layers) and
 * image-config.json (the image's OCI config).
 */
export function loadImageBundle(dir: string): ImageRuntime {
  const raw: unknown = JSON.parse(readFileSync(path.join(dir, "image-config.json"), "utf8"));
  return imageRuntime(path.join(dir, "rootfs"), OciImageConfig.parse(raw));
}

/**
 * Kubernetes' rule: command replaces the Entrypoint (and drops Cmd), args replace Cmd.
 */
export function containerArgv(image: ImageRuntime, command?: string[], args?: string[]): string[] {
  if (command?.length) return [...command, ...(args ?? [])];
  return [...image.entrypoint, ...(args?.length ? args : image.cmd)];
}

/** A container's process identity: uid, primary gid and supplementary groups. */
export interface ProcessUser extends ImageUser {
  groups: number[];
}

/**
 * runAsUser/runAsGroup of the container, else of the pod, else the image's USER; supplementary
 * groups are the pod's fsGroup and supplementalGroups.
 */
export function containerUser(pod: Pod, c: Container, image: ImageUser): ProcessUser {
  const podSc = pod.spec.securityContext;
  const sc = c.securityContext;
  const uid = sc?.runAsUser ?? podSc?.runAsUser ?? image.uid;
  const gid =
    sc?.runAsGroup ??
    podSc?.runAsGroup ??
    // The image's group belongs to the image's user; another uid gets group 0, as in a runtime.
    (uid === image.uid ? image.gid : 0);
  const groups = [
    ...(podSc?.fsGroup !== undefined ? [podSc.fsGroup] : []),
    ...(podSc?.supplementalGroups ?? []),
  ].filter((g, i, all) => g !== gid && all.indexOf(g) === i);
  return { uid, gid, groups };
}
