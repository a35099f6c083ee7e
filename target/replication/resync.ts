/**
 * Copying out-of-sync regions from the resync source to the target.
 *
 * Sender: walks the bitmap, at most RESYNC_IN_FLIGHT regions (4 MiB at the default region size)
 * at a time, each one read under the region's range lock (so no mirrored write to it
 * interleaves) and sent whole; its bit is cleared only once the receiver acknowledged it, and
 * the clear is persisted as it goes so a restarted resync skips what was already copied. The
 * token bucket caps the bandwidth.
 *
 * Receiver: writes the region, fsyncs (shared among chunks arriving together), then clears
 * its own bit and acknowledges.
 */
import type { BlockDevice } from "../store/block-device.js";
import type { DirtyBitmap, DirtyRegionStore } from "../store/dirty-bitmap.js";
import type { RangeLock } from "../store/range-lock.js";
import type { TokenBucket } from "./token-bucket.js";

export const RESYNC_IN_FLIGHT = 16;

export interface RegionGeometry {
  regionSize: number;
  sizeBytes: number;
}

export function regionLength(g: RegionGeometry, r: number): number {
  return Math.min(g.regionSize, g.sizeBytes - r * g.regionSize);
}

export interface ResyncSenderDeps extends RegionGeometry {
  /** where regions are read (this node's copy, or the partner's for a verify's repair) */
  local: Pick<BlockDevice, "read">;
  outOfSync: DirtyBitmap;
  store: DirtyRegionStore;
  rangeLock: RangeLock;
  bucket: TokenBucket | null;
  /** a region with writes in flight keeps its durable bit */
  isHot(r: number): boolean;
  /** false once the link this resync belongs to is gone */
  active(): boolean;
  /** sends one region; resolves when the receiver holds it durably */
  send(offset: number, data: Buffer): Promise<void>;
  copied(bytes: number): void;
}

/**
 * Sends every out-of-sync region. Resolves true when the bitmap is empty, false when the
 * link went away first; rejects when a region could not be sent.
 */
export async function sendOutOfSyncRegions(d: ResyncSenderDeps): Promise<boolean> {
  const inFlight = new Map<number, Promise<void>>();
  let cursor = 0;
  let failed: unknown = null;
  while (d.active() && failed === null) {
    let r = d.outOfSync.next(cursor);
    while (r >= 0 && inFlight.has(r)) r = d.outOfSync.next(r + 1);
    if (r < 0) {
      if (inFlight.size === 0) {
        if (cursor === 0) break;
        cursor = 0;
        continue;
      }
      await Promise.race(inFlight.values());
      cursor = 0;
      continue;
    }
    cursor = r + 1;
    if (inFlight.size >= RESYNC_IN_FLIGHT) await Promise.race(inFlight.values());
    await d.bucket?.take(regionLength(d, r));
    if (!d.active()) break;
    const region = r;
    const p = sendRegion(d, region)
      .catch((e: unknown) => {
        failed ??= e;
      })
      .finally(() => inFlight.delete(region));
    inFlight.set(region, p);
  }
  await Promise.all(inFlight.values());
  if (failed !== null) throw failed;
  return d.active() && d.outOfSync.isEmpty();
}

async function sendRegion(d: ResyncSenderDeps, r: number): Promise<void> {
  const offset = r * d.regionSize;
  const length = regionLength(d, r);
  const unlock = await d.rangeLock.acquire(offset, length);
  try {
    if (!d.outOfSync.test(r) || !d.active()) return;
    const data = await d.local.read(offset, length);
    await d.send(offset, data);
    d.outOfSync.clear(r);
    if (!d.isHot(r)) d.store.clearLazy(r);
    await d.store.flush();
    d.copied(length);
  } finally {
    unlock();
  }
}

/** Runs `fn` for every caller, but callers arriving while it runs share the one next run. */
export class SharedRun {
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  constructor(private readonly fn: () => Promise<void>) {}

  run(): Promise<void> {
    if (!this.running) {
      this.running = this.fn().finally(() => {
        this.running = null;
      });
      return this.running;
    }
    this.next ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.next = null;
        return this.run();
      });
    return this.next;
  }
}

export class ResyncReceiver {
  private readonly fsync: SharedRun;

  constructor(
    private readonly d: RegionGeometry & {
      local: BlockDevice;
      outOfSync: DirtyBitmap;
      store: DirtyRegionStore;
    },
  ) {
    this.fsync = new SharedRun(() => d.local.flush());
  }

  /** Validates, writes and fsyncs one region; returns its length. */
  async receive(offset: number, data: Buffer): Promise<number> {
    const d = this.d;
    if (offset % d.regionSize !== 0 || offset >= d.sizeBytes) throw new Error("misaligned resync chunk");
    const r = offset / d.regionSize;
    if (data.length !== regionLength(d, r)) throw new Error("resync chunk of the wrong length");
    await d.local.write(offset, data);
    await this.fsync.run();
    d.outOfSync.clear(r);
    d.store.clearLazy(r);
    await d.store.flush();
    return data.length;
  }
}
