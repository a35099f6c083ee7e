import { accessTypeOf, capabilityProblem } from "../capabilities.js";
import { failedPrecondition, invalidArgument } from "../errors.js";
import type { NodePublishVolumeRequest } from "../messages.js";
import { isMountPoint, must, type NodeDeps } from "./deps.js";
import { multipathDevice } from "./iscsi.js";

/** A bind mount, made read-only by a remount when asked (a single "bind,ro" is ignored by older kernels). */
async function bind(d: NodeDeps, source: string, target: string, readonly: boolean, flags: string[]) {
  await must(d, "mount", ["--bind", source, target]);
  const extra = [...(readonly ? ["ro"] : []), ...flags.filter((f) => f !== "bind" && f !== "ro")];
  if (extra.length) await must(d, "mount", ["-o", ["remount", "bind", ...extra].join(","), target]);
}

/**
 * NodePublishVolume: a bind mount of the staging path at target_path (Filesystem), or of the
 * multipath device onto a file at target_path (Block). Already mounted: nothing to do.
 */
export async function publishVolume(d: NodeDeps, r: NodePublishVolumeRequest): Promise<object> {
  const cap = r.volume_capability;
  const problem = capabilityProblem(cap);
  if (problem) throw invalidArgument(problem);
  const v = await d.staging.read(r.volume_id);
  if (!v) throw failedPrecondition(`volume ${r.volume_id} is not staged on this node`);
  const type = accessTypeOf(cap);
  if (v.accessType !== type)
    throw failedPrecondition(`volume ${r.volume_id} is staged as ${v.accessType}, not ${type}`);
  if ((await d.fs.kind(r.target_path)) !== undefined && (await isMountPoint(d, r.target_path))) return {};
  const flags = cap.mount?.mount_flags ?? [];
  if (type === "block") {
    const dev = multipathDevice(v.wwid);
    if ((await d.fs.kind(dev)) === undefined)
      throw failedPrecondition(`device ${dev} is gone; stage the volume again`);
    await d.fs.touch(r.target_path);
    await bind(d, dev, r.target_path, r.readonly, []);
    return {};
  }
  if (!(await isMountPoint(d, r.staging_target_path)))
    throw failedPrecondition(`staging path ${r.staging_target_path} is not mounted; stage the volume again`);
  await d.fs.mkdirp(r.target_path);
  await bind(d, r.staging_target_path, r.target_path, r.readonly, flags);
  return {};
}

/** NodeUnpublishVolume: unmount target_path if mounted, then remove it. */
export async function unpublishVolume(
  d: NodeDeps,
  r: { volume_id: string; target_path: string },
): Promise<object> {
  if ((await d.fs.kind(r.target_path)) === undefined) return {};
  if (await isMountPoint(d, r.target_path)) await must(d, "umount", [r.target_path]);
  await d.fs.remove(r.target_path);
  return {};
}
