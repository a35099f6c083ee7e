import { CsiError, Code } from "../errors.js";
import type { VolumeLocks } from "../locks.js";
import type { NodeDeps } from "./deps.js";
import type { StagedVolume } from "./host.js";
import { ISCSI_ERR, login, parseSessions, showRecord } from "./iscsi.js";

/** How often the node service looks for staged volumes with a portal that has no session. */
export const SESSION_REPAIR_MS = 30_000;

/**
 * Logs in again to the portals of staged volumes that have no session: a portal whose node was
 * down when the volume was staged (staging goes on with the other one), or a session someone
 * logged out. iscsid retries only the sessions it has, and kubelet stages a volume once, so
 * without this such a volume would keep a single path until it is staged again. The node record
 * staging made (with its CHAP settings) is used as it is; a portal without one is left alone.
 * Volumes busy with a call are skipped until the next round. Returns the portals logged in to.
 */
export async function repairSessions(d: NodeDeps, locks: VolumeLocks): Promise<string[]> {
  const repaired: string[] = [];
  for (const staged of await d.staging.list()) {
    try {
      repaired.push(...(await locks.runBackground(staged.volumeId, () => reconnect(d, staged.volumeId))));
    } catch (e) {
      if (e instanceof CsiError && e.code === Code.ABORTED) continue;
      d.log.warn({ volume: staged.volumeId, err: (e as Error).message }, "session repair failed");
    }
  }
  return repaired;
}

async function reconnect(d: NodeDeps, volumeId: string): Promise<string[]> {
  // Read again under the lock: an unstage may have finished meanwhile.
  const v: StagedVolume | undefined = await d.staging.read(volumeId);
  if (!v) return [];
  const list = await d.runner.run("iscsiadm", ["-m", "session"]);
  if (list.code !== 0 && list.code !== ISCSI_ERR.NO_OBJS_FOUND) return [];
  const have = new Set(
    (list.code === 0 ? parseSessions(list.stdout) : []).filter((s) => s.iqn === v.iqn).map((s) => s.portal),
  );
  const done: string[] = [];
  for (const portal of v.portals) {
    if (have.has(portal)) continue;
    if ((await d.runner.run("iscsiadm", showRecord(v.iqn, portal))).code !== 0) continue;
    const r = await d.runner.run("iscsiadm", login(v.iqn, portal));
    if (r.code === 0 || r.code === ISCSI_ERR.SESS_EXISTS) {
      d.log.info({ volume: v.volumeId, portal }, "logged in again to a portal without a session");
      done.push(portal);
    } else d.log.debug({ volume: v.volumeId, portal, code: r.code }, "portal still refuses a login");
  }
  return done;
}
