import { shortHash } from "../pair/names.js";
import type { KubeObject } from "./desired-children.js";

/**
 * Remembers what was last applied, so the frequent status passes do not re-send unchanged objects.
 * An object is applied again only when its content changed or the caller knows it is gone or
 * drifted (`forget`). Time alone never re-applies: the periodic pass (due every resyncMs) reads
 * the children and forgets the drifted ones. An age-based expiry here would race with it: a status
 * pass landing between an entry's expiry and the periodic pass re-applied every child blindly.
 */
export class ApplyCache {
  private readonly applied = new Map<string, string>();

  constructor(
    private readonly resyncMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  private key(owner: string, o: KubeObject): string {
    return `${owner}/${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
  }

  needsApply(owner: string, o: KubeObject, knownMissing = false): boolean {
    if (knownMissing) return true;
    return this.applied.get(this.key(owner, o)) !== shortHash(o);
  }

  /**
   * Whether o differs from what was last applied for it (false when nothing was recorded). A read
   * back cannot see a field the new content drops, so a changed object is applied, not checked.
   */
  changedSinceApplied(owner: string, o: KubeObject): boolean {
    const last = this.applied.get(this.key(owner, o));
    return last !== undefined && last !== shortHash(o);
  }

  recordApplied(owner: string, o: KubeObject): void {
    this.applied.set(this.key(owner, o), shortHash(o));
  }

  forget(owner: string, o?: KubeObject): void {
    if (o) {
      this.applied.delete(this.key(owner, o));
      return;
    }
    for (const k of this.applied.keys()) if (k.startsWith(`${owner}/`)) this.applied.delete(k);
  }

  /** Whether a periodic pass (prune, full apply) is due for owner at this generation. */
  private readonly passes = new Map<string, { generation: number; at: number }>();
  periodicDue(owner: string, generation: number): boolean {
    const p = this.passes.get(owner);
    return !p || p.generation !== generation || this.now() - p.at >= this.resyncMs;
  }
  recordPeriodic(owner: string, generation: number): void {
    this.passes.set(owner, { generation, at: this.now() });
  }
}
