import { mkdir, rm, writeFile, chmod, open } from "node:fs/promises";
import path from "node:path";
import type { KubeClient } from "../../../operator/kit/kube-client.js";
import {
  PersistentVolume,
  PersistentVolumeClaim,
  TokenRequestStatus,
  type Pod,
  type Volume,
} from "../kube/schemas.js";
import { fieldValue, type DataMap } from "./env.js";
import { chownTree } from "./volume-ownership.js";
import type { PodResources } from "./resources.js";

export class VolumeNotReady extends Error {}

export interface VolumeContext {
  client: KubeClient;
  pod: Pod;
  podIP: string;
  hostIP: string;
  resources: PodResources;
  /** Per-pod directory for volumes the agent materialises. */
  dir: string;
  /** Owner of the files the agent writes (a non-root pod's user); absent: root. */
  owner?: { uid: number; gid: number };
}

/** Host directory (or file) backing each of the pod's volumes, writing content where needed. */
export async function prepareVolumes(ctx: VolumeContext): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const v of ctx.pod.spec.volumes ?? []) out.set(v.name, await prepareVolume(ctx, v));
  return out;
}

async function prepareVolume(ctx: VolumeContext, v: Volume): Promise<string> {
  const own = path.join(ctx.dir, v.name);
  if (v.emptyDir) {
    await mkdir(own, { recursive: true });
    // World-writable, as a kubelet makes it: containers of the pod may run as different users.
    await chmod(own, 0o777);
    return own;
  }
  if (v.hostPath) {
    const p = v.hostPath.path;
    if (v.hostPath.type === "DirectoryOrCreate") await mkdir(p, { recursive: true });
    if (v.hostPath.type === "FileOrCreate") {
      await mkdir(path.dirname(p), { recursive: true });
      await (await open(p, "a")).close();
    }
    return p;
  }
  if (v.persistentVolumeClaim) return claimPath(ctx, v.persistentVolumeClaim.claimName);
  const files = new Map<string, { data: Buffer; mode: number }>();
  if (v.secret) {
    const data = await ctx.resources.secret(v.secret.secretName);
    if (!data && !v.secret.optional) throw new VolumeNotReady(`secret "${v.secret.secretName}" not found`);
    addItems(files, data, v.secret.items, v.secret.defaultMode ?? 0o644);
  } else if (v.configMap) {
    const data = await ctx.resources.configMap(v.configMap.name);
    if (!data && !v.configMap.optional) throw new VolumeNotReady(`configmap "${v.configMap.name}" not found`);
    addItems(files, data, v.configMap.items, v.configMap.defaultMode ?? 0o644);
  } else if (v.downwardAPI) {
    addDownward(files, ctx, v.downwardAPI.items ?? [], 0o644);
  } else if (v.projected) {
    const mode = v.projected.defaultMode ?? 0o644;
    for (const s of v.projected.sources ?? []) {
      if (s.serviceAccountToken) {
        const token = await requestToken(
          ctx,
          s.serviceAccountToken.audience,
          s.serviceAccountToken.expirationSeconds,
        );
        files.set(s.serviceAccountToken.path, { data: Buffer.from(token), mode: 0o600 });
      } else if (s.configMap) {
        const data = await ctx.resources.configMap(s.configMap.name);
        if (!data && !s.configMap.optional)
          throw new VolumeNotReady(`configmap "${s.configMap.name}" not found`);
        addItems(files, data, s.configMap.items, mode);
      } else if (s.secret) {
        const data = await ctx.resources.secret(s.secret.name);
        if (!data && !s.secret.optional) throw new VolumeNotReady(`secret "${s.secret.name}" not found`);
        addItems(files, data, s.secret.items, mode);
      } else if (s.downwardAPI) {
        addDownward(files, ctx, s.downwardAPI.items ?? [], mode);
      }
    }
  } else {
    throw new VolumeNotReady(`volume "${v.name}": type not supported by the local node agent`);
  }
  await writeFiles(own, files, ctx.owner);
  return own;
}

function addItems(
  files: Map<string, { data: Buffer; mode: number }>,
  data: DataMap | undefined,
  items: { key: string; path: string; mode?: number | undefined }[] | undefined,
  mode: number,
): void {
  if (!data) return;
  if (items?.length) {
    for (const it of items) {
      const d = data[it.key];
      if (d) files.set(it.path, { data: d, mode: it.mode ?? mode });
    }
  } else {
    for (const [k, d] of Object.entries(data)) files.set(k, { data: d, mode });
  }
}

function addDownward(
  files: Map<string, { data: Buffer; mode: number }>,
  ctx: VolumeContext,
  items: { path: string; fieldRef?: { fieldPath: string } | undefined; mode?: number | undefined }[],
  mode: number,
): void {
  for (const it of items) {
    if (!it.fieldRef) continue;
    const fp = it.fieldRef.fieldPath;
    let value = fieldValue(ctx.pod, ctx.podIP, ctx.hostIP, fp);
    if (fp === "metadata.labels" || fp === "metadata.annotations") {
      const m = fp === "metadata.labels" ? ctx.pod.metadata.labels : ctx.pod.metadata.annotations;
      value = Object.entries(m ?? {})
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join("\n");
    }
    if (value !== undefined) files.set(it.path, { data: Buffer.from(value), mode: it.mode ?? mode });
  }
}

/** Replaces the directory's content with exactly these files. */
async function writeFiles(
  dir: string,
  files: Map<string, { data: Buffer; mode: number }>,
  owner: { uid: number; gid: number } | undefined,
): Promise<void> {
  const tmp = `${dir}.new`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  for (const [rel, f] of files) {
    const target = path.join(tmp, path.normalize(rel).replace(/^(\.\.(\/|$))+/, ""));
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, f.data);
    await chmod(target, f.mode);
  }
  // Keep the same directory (it may be bind-mounted into a running pod): copy over in place.
  await mkdir(dir, { recursive: true });
  const { cp } = await import("node:fs/promises");
  await cp(tmp, dir, { recursive: true, force: true });
  await rm(tmp, { recursive: true, force: true });
  // cp replaces each file, so ownership is set again after every write.
  if (owner) await chownTree(dir, owner.uid, owner.gid);
}

async function requestToken(
  ctx: VolumeContext,
  audience: string | undefined,
  expiration: number | undefined,
) {
  const ns = ctx.pod.metadata.namespace ?? "default";
  const sa = ctx.pod.spec.serviceAccountName ?? "default";
  const res = await ctx.client.parsed(
    TokenRequestStatus,
    "POST",
    `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`,
    {
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: {
          audiences: audience ? [audience] : [],
          expirationSeconds: expiration ?? 3607,
          boundObjectRef: {
            apiVersion: "v1",
            kind: "Pod",
            name: ctx.pod.metadata.name,
            uid: ctx.pod.metadata.uid,
          },
        },
      },
    },
  );
  return res.status.token;
}

async function claimPath(ctx: VolumeContext, claim: string): Promise<string> {
  const ns = ctx.pod.metadata.namespace ?? "default";
  const pvc = await ctx.client.getParsed(
    PersistentVolumeClaim,
    `/api/v1/namespaces/${ns}/persistentvolumeclaims/${claim}`,
  );
  if (!pvc) throw new VolumeNotReady(`persistentvolumeclaim "${claim}" not found`);
  const pvName = pvc.spec.volumeName;
  if (!pvName || pvc.status?.phase !== "Bound")
    throw new VolumeNotReady(`persistentvolumeclaim "${claim}" is not bound`);
  const pv = await ctx.client.getParsed(PersistentVolume, `/api/v1/persistentvolumes/${pvName}`);
  const p = pv?.spec.local?.path ?? pv?.spec.hostPath?.path;
  const csiDriver = pv?.spec.csi?.driver;
  if (!p && csiDriver)
    throw new VolumeNotReady(
      `MountVolume.SetUp failed for persistentvolume "${pvName}": the local node agent has no node plugin ` +
        `for CSI driver "${csiDriver}" (it mounts local and hostPath volumes only)`,
    );
  if (!p) throw new VolumeNotReady(`persistentvolume "${pvName}" has no local or hostPath source`);
  await mkdir(p, { recursive: true });
  return p;
}
