import type { Filesystem } from "../capabilities.js";
import { notFound, internal } from "../errors.js";
import { isMountPoint, mountedFsType, must, type NodeDeps } from "./deps.js";
import { ISCSI_ERR, growCommand, multipathDevice, rescan } from "./iscsi.js";

async function sizeOf(d: NodeDeps, dev: string): Promise<bigint> {
  const r = await must(d, "blockdev", ["--getsize64", dev]);
  const text = r.stdout.trim();
  if (!/^\d+$/.test(text)) throw internal(`blockdev --getsize64 ${dev} printed ${JSON.stringify(text)}`);
  return BigInt(text);
}

/**
 * NodeExpandVolume: rescan every session (each path learns the LUN's new size), resize the
 * multipath map, then grow the filesystem online (Filesystem volumes). Running it again finds
 * nothing left to grow.
 */
export async function expandVolume(
  d: NodeDeps,
  r: { volume_id: string; volume_path: string },
): Promise<object> {
  const v = await d.staging.read(r.volume_id);
  if (!v) throw notFound(`volume ${r.volume_id} is not staged on this node`);
  if ((await d.fs.kind(r.volume_path)) === undefined)
    throw notFound(`volume path ${r.volume_path} does not exist`);
  for (const portal of v.portals) await must(d, "iscsiadm", rescan(v.iqn, portal), [ISCSI_ERR.NO_OBJS_FOUND]);
  const dev = multipathDevice(v.wwid);
  await must(d, "multipathd", ["resize", "map", v.wwid]);
  if (v.accessType === "mount") {
    if (!(await isMountPoint(d, r.volume_path)))
      throw notFound(`volume path ${r.volume_path} is not mounted`);
    const fsType = ((await mountedFsType(d, r.volume_path)) ?? v.fsType) as Filesystem;
    if (fsType !== "ext4" && fsType !== "xfs") throw internal(`cannot grow a ${fsType} filesystem`);
    const [cmd, args] = growCommand(fsType, dev, r.volume_path);
    await must(d, cmd, args);
  }
  return { capacity_bytes: (await sizeOf(d, dev)).toString() };
}

/** NodeGetVolumeStats: bytes and inodes of a mounted filesystem, or the size of a block volume. */
export async function volumeStats(
  d: NodeDeps,
  r: { volume_id: string; volume_path: string },
): Promise<object> {
  const kind = await d.fs.kind(r.volume_path);
  if (kind === undefined) throw notFound(`volume path ${r.volume_path} does not exist`);
  if (kind === "block" || kind === "file") {
    // A block volume's target is a file with the device bind-mounted on it.
    const total = await sizeOf(d, r.volume_path);
    return { usage: [{ unit: "BYTES", total: total.toString() }] };
  }
  const s = await d.fs.statfs(r.volume_path);
  return {
    usage: [
      {
        unit: "BYTES",
        total: s.totalBytes.toString(),
        available: s.availableBytes.toString(),
        used: s.usedBytes.toString(),
      },
      {
        unit: "INODES",
        total: s.totalInodes.toString(),
        available: s.freeInodes.toString(),
        used: s.usedInodes.toString(),
      },
    ],
  };
}
