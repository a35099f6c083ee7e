import { accessTypeOf, capabilityProblem, DEFAULT_FILESYSTEM, type Filesystem } from "../capabilities.js";
import { CsiError, Code, failedPrecondition, invalidArgument, unavailable } from "../errors.js";
import type { NodeStageVolumeRequest } from "../messages.js";
import { describe, isMountPoint, must, type NodeDeps } from "./deps.js";
import type { StagedVolume } from "./host.js";
import {
  ISCSI_ERR,
  deleteRecord,
  login,
  logout,
  mkfsCommand,
  multipathDevice,
  newRecord,
  parseSessions,
  recordSettings,
  showRecord,
  type Chap,
} from "./iscsi.js";
import { chapFromSecrets, parseVolumeContext } from "./volume-context.js";

/** How often the multipath device is looked for, and how often multipath is asked to make it. */
const DEVICE_POLL_MS = 500;
const MULTIPATH_NUDGE_MS = 5000;

async function sessions(d: NodeDeps) {
  const r = await must(d, "iscsiadm", ["-m", "session"], [ISCSI_ERR.NO_OBJS_FOUND]);
  return r.code === 0 ? parseSessions(r.stdout) : [];
}

/**
 * Logs in to every portal that has no session yet, each with a node record of its own. One portal
 * failing is not fatal (its node may be down: the pair serves from the other); all failing is.
 */
async function loginAll(d: NodeDeps, v: StagedVolume, chap: Chap | undefined, secretName?: string) {
  const have = (await sessions(d)).filter((s) => s.iqn === v.iqn).map((s) => s.portal);
  const failures: { portal: string; code: number; text: string }[] = [];
  for (const portal of v.portals) {
    if (have.includes(portal)) continue;
    const exists = await d.runner.run("iscsiadm", showRecord(v.iqn, portal));
    if (exists.code !== 0) await must(d, "iscsiadm", newRecord(v.iqn, portal));
    for (const args of recordSettings(v.iqn, portal, chap)) await must(d, "iscsiadm", args);
    const r = await d.runner.run("iscsiadm", login(v.iqn, portal));
    if (r.code === 0 || r.code === ISCSI_ERR.SESS_EXISTS) {
      have.push(portal);
      continue;
    }
    // The command line holds no secret: recordSettings put them into the record, not into login.
    failures.push({ portal, code: r.code, text: describe("iscsiadm", login(v.iqn, portal), r) });
    d.log.warn({ volume: v.volumeId, portal, code: r.code }, "iSCSI login failed");
  }
  if (have.length > 0) return;
  const auth = failures.find((f) => f.code === ISCSI_ERR.LOGIN_AUTH_FAILED);
  if (auth)
    throw failedPrecondition(
      `CHAP authentication failed at ${auth.portal}: check the node-stage Secret${secretName ? ` (${secretName})` : ""}`,
    );
  throw unavailable(`no portal of ${v.iqn} accepted a login: ${failures.map((f) => f.text).join("; ")}`);
}

/** Waits for dm-multipath to assemble the LUN's map (named by WWID), nudging multipath meanwhile. */
async function waitForDevice(d: NodeDeps, wwid: string): Promise<string> {
  const dev = multipathDevice(wwid);
  let waited = 0;
  while ((await d.fs.kind(dev)) === undefined) {
    if (waited >= d.deviceWaitMs)
      throw unavailable(`multipath device ${dev} did not appear within ${d.deviceWaitMs} ms after login`);
    // With find_multipaths smart a map appears once both paths are there; asking for the WWID
    // also makes one while a single path is up (the partner node is down).
    if (waited > 0 && waited % MULTIPATH_NUDGE_MS === 0) await d.runner.run("multipath", [wwid]);
    await d.sleep(DEVICE_POLL_MS);
    waited += DEVICE_POLL_MS;
  }
  return dev;
}

/** Makes a filesystem on a blank device; refuses a device that holds another filesystem. */
async function ensureFilesystem(d: NodeDeps, dev: string, fsType: Filesystem): Promise<void> {
  const r = await must(d, "blkid", ["-p", "-s", "TYPE", "-o", "value", dev], [2]);
  const found = r.code === 0 ? r.stdout.trim() : "";
  if (found === fsType) return;
  if (found)
    throw failedPrecondition(`the volume holds a ${found} filesystem, not ${fsType}: not formatting it`);
  // blkid exit 2: no signature at all, a blank volume.
  const [cmd, args] = mkfsCommand(fsType, dev);
  await must(d, cmd, args);
}

/**
 * NodeStageVolume: node records and logins for every portal (CHAP from the stage secrets), the
 * multipath device by WWID, mkfs when blank and a mount at the staging path (Block: no mount).
 * What unstaging needs is written first, so a stage that fails half way can still be undone.
 */
export async function stageVolume(d: NodeDeps, r: NodeStageVolumeRequest): Promise<object> {
  const cap = r.volume_capability;
  const problem = capabilityProblem(cap);
  if (problem) throw invalidArgument(problem);
  const ctx = parseVolumeContext(r.volume_context);
  const chap = chapFromSecrets(r.secrets);
  const accessType = accessTypeOf(cap);
  const fsType = (cap.mount?.fs_type || ctx.fsType || DEFAULT_FILESYSTEM) as Filesystem;
  const v: StagedVolume = {
    volumeId: r.volume_id,
    iqn: ctx.iqn,
    portals: ctx.portals,
    wwid: ctx.wwid,
    accessType,
    ...(accessType === "mount" ? { fsType } : {}),
  };
  const before = await d.staging.read(r.volume_id);
  if (before && (before.accessType !== v.accessType || before.iqn !== v.iqn))
    throw new CsiError(
      Code.ALREADY_EXISTS,
      `volume ${r.volume_id} is already staged differently on this node`,
    );
  if (accessType === "mount" && before && (await isMountPoint(d, r.staging_target_path))) return {};
  await d.staging.write(v);
  await loginAll(d, v, chap, ctx.chapSecretName);
  const dev = await waitForDevice(d, v.wwid);
  if (accessType === "block") return {};
  await ensureFilesystem(d, dev, fsType);
  await d.fs.mkdirp(r.staging_target_path);
  if (await isMountPoint(d, r.staging_target_path)) return {};
  const flags = cap.mount?.mount_flags ?? [];
  await must(d, "mount", [
    "-t",
    fsType,
    ...(flags.length ? ["-o", flags.join(",")] : []),
    dev,
    r.staging_target_path,
  ]);
  return {};
}

/**
 * NodeUnstageVolume: unmount the staging path, flush and remove the multipath map, log out of
 * every portal and delete the node records. Each step is skipped when already done.
 */
export async function unstageVolume(
  d: NodeDeps,
  r: { volume_id: string; staging_target_path: string },
): Promise<object> {
  if (
    (await d.fs.kind(r.staging_target_path)) !== undefined &&
    (await isMountPoint(d, r.staging_target_path))
  )
    await must(d, "umount", [r.staging_target_path]);
  const v = await d.staging.read(r.volume_id);
  if (!v) return {};
  if ((await d.fs.kind(multipathDevice(v.wwid))) !== undefined) {
    const f = await d.runner.run("multipath", ["-f", v.wwid]);
    if (f.code !== 0)
      throw failedPrecondition(
        `the multipath map is still in use: ${describe("multipath", ["-f", v.wwid], f)}`,
      );
  }
  for (const portal of v.portals) {
    await must(d, "iscsiadm", logout(v.iqn, portal), [ISCSI_ERR.NO_OBJS_FOUND]);
    await must(d, "iscsiadm", deleteRecord(v.iqn, portal), [ISCSI_ERR.NO_OBJS_FOUND]);
  }
  await d.staging.delete(r.volume_id);
  return {};
}
