// Makes a pod's volumes usable by containers that do not run as root, as a kubelet does: fsGroup
// owns writable volumes (emptyDir, persistent volumes) group-writable, and the files the node
// writes itself (secrets, config maps, projected tokens: volumes.ts) belong to the pod's user,
// like the token a kubelet writes for the pod's runAsUser. hostPath volumes are left as they are.
import { chmod, lchown, lstat, readdir } from "node:fs/promises";
import path from "node:path";
import type { Pod, Volume } from "../kube/schemas.js";
import type { ImageUser } from "./image-config.js";

/** Owner of the files the node writes into the pod's volumes; undefined when that is root. */
export function agentFilesOwner(pod: Pod, image: ImageUser): { uid: number; gid: number } | undefined {
  const sc = pod.spec.securityContext;
  const uid = sc?.runAsUser ?? image.uid;
  return uid === 0 ? undefined : { uid, gid: sc?.fsGroup ?? 0 };
}

const groupWritable = (v: Volume) => v.emptyDir !== undefined || v.persistentVolumeClaim !== undefined;

async function walk(dir: string, fn: (p: string, isDir: boolean) => Promise<void>): Promise<void> {
  await fn(dir, true);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await walk(p, fn);
    else if (!e.isSymbolicLink()) await fn(p, false);
  }
}

export async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await walk(dir, (p) => lchown(p, uid, gid));
}

/** fsGroup: emptyDir and persistent volumes become group-owned and group-writable (setgid dirs). */
export async function applyFsGroup(pod: Pod, volumes: Map<string, string>): Promise<void> {
  const fsGroup = pod.spec.securityContext?.fsGroup;
  if (fsGroup === undefined) return;
  for (const v of pod.spec.volumes ?? []) {
    const dir = volumes.get(v.name);
    if (dir === undefined || !groupWritable(v)) continue;
    const st = await lstat(dir).catch(() => undefined);
    // fsGroupChangePolicy OnRootMismatch: a volume whose root already has the group was done.
    if (!st?.isDirectory() || (st.gid === fsGroup && (st.mode & 0o2070) === 0o2070)) continue;
    await walk(dir, async (p, isDir) => {
      const s = await lstat(p);
      await lchown(p, s.uid, fsGroup);
      await chmod(p, (s.mode & 0o7777) | (isDir ? 0o2070 : 0o060));
    });
  }
}
