/**
 * The activity extents (groups of dirty-bitmap regions, like DRBD's activity log) that have
 * mutations in flight or had one recently. Their bits are durable in the dirty bitmap; an extent
 * idle for a while is forgotten (and its bits cleared) once its data is durable on both nodes
 * (bitmap-settler.ts), and a link loss marks all of them out of sync. Tracking whole extents
 * keeps the per-write cost at one map entry.
 */
export interface IdleExtent {
  extent: number;
  lastUsed: number;
}

interface Activity {
  inflight: number;
  lastUsed: number;
}

export class ActiveExtents {
  private readonly active = new Map<number, Activity>();

  constructor(
    /** regions per extent (at least 1) */
    readonly regionsPerExtent: number,
    /** regions of the device */
    private regionCount: number,
  ) {
    if (!Number.isInteger(regionsPerExtent) || regionsPerExtent < 1)
      throw new Error(`invalid extent size ${regionsPerExtent}`);
  }

  get regions(): number {
    return this.regionCount;
  }

  /** The device grew to `regions` regions. */
  grow(regions: number): void {
    if (regions < this.regionCount) throw new Error(`extents cannot shrink to ${regions} regions`);
    this.regionCount = regions;
  }

  /** The regions of the extents around regions [first, last]. */
  bounds(first: number, last: number): [number, number] {
    const k = this.regionsPerExtent;
    return [Math.floor(first / k) * k, Math.min(this.regions - 1, Math.floor(last / k) * k + k - 1)];
  }

  /** A mutation of regions [first, last] starts. */
  enter(first: number, last: number, now = Date.now()): void {
    const k = this.regionsPerExtent;
    for (let e = Math.floor(first / k); e <= Math.floor(last / k); e++) {
      const a = this.active.get(e);
      if (a) {
        a.inflight++;
        a.lastUsed = now;
      } else this.active.set(e, { inflight: 1, lastUsed: now });
    }
  }

  /** A mutation of regions [first, last] ended. */
  leave(first: number, last: number, now = Date.now()): void {
    const k = this.regionsPerExtent;
    for (let e = Math.floor(first / k); e <= Math.floor(last / k); e++) {
      const a = this.active.get(e);
      if (a) {
        a.inflight--;
        a.lastUsed = now;
      }
    }
  }

  /** Whether region r lies in an active extent. */
  has(region: number): boolean {
    return this.active.has(Math.floor(region / this.regionsPerExtent));
  }

  /** Every region of every active extent. */
  *allRegions(): Generator<number> {
    for (const e of this.active.keys()) yield* this.regionsOf(e);
  }

  clear(): void {
    this.active.clear();
  }

  /** The extents idle (nothing in flight) for more than idleMs, with when each was last used. */
  idle(now: number, idleMs: number): IdleExtent[] {
    const out: IdleExtent[] = [];
    for (const [extent, a] of this.active) {
      if (a.inflight === 0 && now - a.lastUsed > idleMs) out.push({ extent, lastUsed: a.lastUsed });
    }
    return out;
  }

  /**
   * Forgets an extent found idle by `idle()` if nothing touched it since; returns its regions,
   * or null when it was used again (it stays active).
   */
  forgetIfIdleSince(x: IdleExtent): number[] | null {
    const a = this.active.get(x.extent);
    if (!a || a.inflight > 0 || a.lastUsed !== x.lastUsed) return null;
    this.active.delete(x.extent);
    return [...this.regionsOf(x.extent)];
  }

  private *regionsOf(extent: number): Generator<number> {
    const k = this.regionsPerExtent;
    for (let r = extent * k; r < Math.min(this.regions, extent * k + k); r++) yield r;
  }
}
