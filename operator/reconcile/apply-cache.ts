import { shortHash } from "./names.js";
import type { KubeObject } from "./desired-children.js";

/**
 * Remembers what was last applied, so the frequent status passes do not re-send unchanged objects.
 * An object is applied again when its content changed, when the caller knows it is gone, or when
 * resyncMs passed (drift correction for kinds the operator does not watch).
 */
export class ApplyCache {
  private readonly applied = new Map<string, { hash: string; at: number }>();

  constructor(
    private readonly resyncMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  private key(owner: string, o: KubeObject): string {
    return `${owner}/${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
  }

  needsApply(owner: string, o: KubeObject, knownMissing = false): boolean {
    if (knownMissing) return true;
    const e = this.applied.get(this.key(owner, o));
    return !e || e.hash !== shortHash(o) || this.now() - e.at >= this.resyncMs;
  }

  recordApplied(owner: string, o: KubeObject): void {
    this.applied.set(this.key(owner, o), { hash: shortHash(o), at: this.now() });
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
