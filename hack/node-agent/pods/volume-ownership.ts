// Makes a pod's volumes usable by a container that does not run as root, as a kubelet does:
// fsGroup owns writable volumes (emptyDir, persistent volumes) group-writable, and the files the
// node writes itself (secrets, config maps, projected tokens) belong to the pod's user, like the
// token a kubelet writes for the pod's runAsUser. hostPath volumes are left as they are.
import { chmod, lchown, lstat, readdir } from "node:fs/promises";
import path from "node:path";
import type { Pod, Volume } from "../kube/schemas.js";
import type { ImageUser } from "./image-config.js";

export type OwnershipKind = "group-writable" | "pod-user" | "untouched";

export function ownershipKind(v: Volume): OwnershipKind {
  if (v.emptyDir || v.persistentVolumeClaim) return "group-writable";
  if (v.secret || v.configMap || v.projected || v.downwardAPI) return "pod-user";
  return "untouched";
}

async function walk(dir: string, fn: (p: string, isDir: boolean) => Promise<void>): Promise<void> {
  await fn(dir, true);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await walk(p, fn);
    else if (!e.isSymbolicLink()) await fn(p, false);
  }
}

export async function applyVolumeOwnership(
  pod: Pod,
  volumes: Map<string, string>,
  image: ImageUser,
): Promise<void> {
  const sc = pod.spec.securityContext;
  const uid = sc?.runAsUser ?? image.uid;
  const fsGroup = sc?.fsGroup;
  for (const v of pod.spec.volumes ?? []) {
    const dir = volumes.get(v.name);
    if (dir === undefined) continue;
    const st = await lstat(dir).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    const kind = ownershipKind(v);
    if (kind === "group-writable" && fsGroup !== undefined) {
      // fsGroupChangePolicy OnRootMismatch: a volume whose root already has the group was done.
      if (st.gid === fsGroup && (st.mode & 0o2070) === 0o2070) continue;
      await walk(dir, async (p, isDir) => {
        const s = await lstat(p);
        await lchown(p, s.uid, fsGroup);
        await chmod(p, (s.mode & 0o7777) | (isDir ? 0o2070 : 0o060));
      });
    } else if (kind === "pod-user" && uid !== 0) {
      await walk(dir, (p) => lchown(p, uid, fsGroup ?? 0));
    }
  }
}
