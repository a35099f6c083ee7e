/**
 * The resync of one link, on either end: the source sends every out-of-sync region and then
 * tells the target it is done; the target applies regions as they come and, at the end, takes
 * the source's generation. Either end then goes to Working. The copying itself is in resync.ts.
 */
import type { MessageOf } from "./protocol.js";
import { afterResyncAsSource, afterResyncAsTarget } from "./generation-transitions.js";
import type { PairCore } from "./pair-core.js";
import type { Link } from "./pair-state.js";
import { PeerLostError, Priority } from "./peer-connection.js";
import { ResyncReceiver, sendOutOfSyncRegions } from "./resync.js";
import type { TokenBucket } from "./token-bucket.js";

export class ResyncSession {
  private readonly receiver: ResyncReceiver;

  constructor(
    private readonly core: PairCore,
    private readonly bucket: TokenBucket | null,
    /** called when this node reached Working at the end of a resync it sent */
    private readonly inSync: () => void,
  ) {
    this.receiver = new ResyncReceiver({
      regionSize: core.regionSize,
      // The LUN may have grown since this session was made.
      get sizeBytes() {
        return core.sizeBytes;
      },
      local: core.local,
      outOfSync: core.outOfSync,
      store: core.store,
    });
  }

  private isCurrent(link: Link, role: Link["role"]): boolean {
    const now = this.core.link;
    return now !== null && now.conn === link.conn && now.role === role;
  }

  /** The source's side: copies every out-of-sync region, then reports the end. */
  async runAsSource(link: Link): Promise<void> {
    const core = this.core;
    try {
      // A region's bit is cleared once the target holds it durably; the copy sent must be
      // durable here too (writes made alone may still sit in the page cache). Regions written
      // from now on are active extents, which keep their bits until settled (bitmap-settler.ts).
      await core.local.flush();
      const done = await sendOutOfSyncRegions({
        regionSize: core.regionSize,
        sizeBytes: core.sizeBytes,
        local: core.local,
        outOfSync: core.outOfSync,
        store: core.store,
        rangeLock: core.rangeLock,
        bucket: this.bucket,
        isHot: (r) => core.hot.has(r),
        active: () => this.isCurrent(link, "source"),
        send: async (offset, data) => {
          await link.conn.request("resyncChunk", { offset }, data, Priority.resync);
        },
        copied: (bytes) => core.countResynced(bytes),
      });
      if (!done) return;
      await link.conn.request("resyncDone", { current: core.gen.current }, undefined, Priority.control);
      if (!this.isCurrent(link, "source")) return;
      await core.setGeneration(afterResyncAsSource(core.gen));
      if (!this.isCurrent(link, "source")) return;
      core.resyncProgress = null;
      core.machine.transition("Working", `in sync with the partner; node ${core.node} sequences writes`, {
        link: { ...link, role: "none" },
      });
      this.inSync();
    } catch (e) {
      if (e instanceof PeerLostError) return;
      core.log.error({ err: (e as Error).message }, "resync failed; dropping the link to start over");
      link.conn.close(`resync failed: ${(e as Error).message}`);
    }
  }

  /** The target's side: one region (of a resync, or of a verify's repair). */
  async receiveChunk(m: MessageOf<"resyncChunk"> | MessageOf<"verifyRepair">): Promise<void> {
    const bytes = await this.receiver.receive(m.body.offset, m.data);
    this.core.countResynced(bytes);
  }

  /** The target's side: the source sent everything; this copy now holds the source's generation. */
  async finishAsTarget(link: Link, current: string): Promise<void> {
    const core = this.core;
    if (!core.outOfSync.isEmpty()) throw new Error("resync done while regions are still missing");
    await core.local.flush();
    await core.setGeneration(afterResyncAsTarget(core.gen, current));
    core.store.image.clearAll();
    await core.store.flush();
    if (!this.isCurrent(link, "target")) return;
    core.resyncProgress = null;
    core.machine.transition("Working", `in sync with the partner; node ${link.sequencer} sequences writes`, {
      link: { ...link, role: "none" },
    });
  }
}
