/**
 * Clears the dirty bits of activity extents that went idle, but only once their data is durable
 * on both nodes. A mirrored write is acknowledged when both page caches hold it; a power loss
 * of either node before its next flush would bring the old data back on that node, and a bit
 * cleared before then would leave the two copies silently different (the resync skips clean
 * regions). So the node that sequences writes clears an idle extent's bits only after a flush
 * of its own copy and a flush on the partner that both started after the extent's last write
 * completed; an extent written again meanwhile stays active. Alone, only this node's flush is
 * needed (written regions stay out of sync anyway; the rest of the extent was never written).
 *
 * Only the sequencer's bits matter: it marks an extent durable before any write to it leaves,
 * so after a crash or power loss of either node (or both) the union of both bitmaps, taken at
 * the next handshake, covers every region whose copies may differ.
 */
import type { PairCore } from "./pair-core.js";
import { Priority } from "./peer-connection.js";
import type { IdleExtent } from "./active-extents.js";

export class BitmapSettler {
  private running = false;
  /** completed settle rounds (regions cleared), for tests and status */
  settledRegions = 0;

  constructor(
    private readonly core: PairCore,
    /** an extent idle this long is settled */
    private readonly idleMs: number,
  ) {}

  /** Starts a settle round when extents are idle and none is running (housekeeping calls it). */
  tick(now: number): void {
    const core = this.core;
    if (this.running || core.closed) return;
    const situation = core.machine.situation;
    const alone = core.mode() === "alone";
    if (!alone && situation !== "Working" && situation !== "SyncSource") return;
    const idle = core.hot.idle(now, this.idleMs);
    if (idle.length === 0) return;
    this.running = true;
    void this.settle(idle, alone)
      .catch((e: Error) =>
        core.log.warn({ err: e.message }, "cannot settle idle extents; their bits stay set"),
      )
      .finally(() => {
        this.running = false;
      });
  }

  private async settle(idle: IdleExtent[], alone: boolean): Promise<void> {
    // Inside the I/O gate, like any request over the link: never while a handshake runs, whose
    // partner drops a link that carries a flush before its own side of the handshake is done.
    const release = this.core.gate.tryEnter();
    if (!release) return;
    try {
      await this.settleEntered(idle, alone);
    } finally {
      release();
    }
  }

  private async settleEntered(idle: IdleExtent[], alone: boolean): Promise<void> {
    const core = this.core;
    const conn = alone ? null : (core.link?.conn ?? null);
    if (!alone && !conn) return;
    // Both flushes start after every candidate's last write completed (they are idle).
    await Promise.all([
      core.local.flush(),
      conn ? conn.request("flush", {}, undefined, Priority.control) : Promise.resolve(),
    ]);
    // A link lost meanwhile marked every active extent out of sync: nothing to clear.
    if (conn && core.link?.conn !== conn) return;
    if (!conn && core.mode() !== "alone") return;
    let cleared = 0;
    for (const x of idle) {
      const regions = core.hot.forgetIfIdleSince(x);
      if (!regions) continue;
      for (const r of regions) {
        if (core.outOfSync.test(r)) continue;
        core.store.clearLazy(r);
        cleared++;
      }
    }
    this.settledRegions += cleared;
    if (cleared > 0) await core.store.flush();
  }
}
