import type { KubeClient } from "../kit/kube-client.js";
import type { ApplyCache } from "./apply-cache.js";
import type { KubeObject } from "./desired-children.js";
import { FIELD_MANAGER } from "./names.js";

/**
 * Server-side apply of each object under the operator's one field manager, skipping objects the
 * cache says are unchanged. Returns the errors joined, or undefined when all went through.
 */
export async function applyAll(
  client: KubeClient,
  objects: readonly KubeObject[],
  cache?: { owner: string; applied: ApplyCache; missing: (o: KubeObject) => boolean },
): Promise<string | undefined> {
  const errors: string[] = [];
  for (const obj of objects) {
    if (cache && !cache.applied.needsApply(cache.owner, obj, cache.missing(obj))) continue;
    try {
      await client.apply(obj, FIELD_MANAGER, true);
      cache?.applied.recordApplied(cache.owner, obj);
    } catch (e) {
      cache?.applied.forget(cache.owner, obj);
      errors.push(`${obj.kind} ${obj.metadata.name}: ${(e as Error).message}`);
    }
  }
  return errors.length ? errors.join("; ") : undefined;
}

/**
 * Whether a live object has drifted from what the operator applies: some field the operator sets
 * is missing or holds another value. Fields the server or others add are not drift. Arrays are
 * compared element by element; Secret stringData is compared against the live base64 data.
 */
export function drifted(desired: unknown, live: unknown): boolean {
  if (desired === null || desired === undefined) return false;
  if (Array.isArray(desired)) {
    if (!Array.isArray(live) || live.length !== desired.length) return true;
    return desired.some((d, i) => drifted(d, live[i]));
  }
  if (typeof desired === "object") {
    if (!live || typeof live !== "object" || Array.isArray(live)) return true;
    const l = live as Record<string, unknown>;
    for (const [k, v] of Object.entries(desired as Record<string, unknown>)) {
      if (k === "stringData" && v && typeof v === "object") {
        const data = (l.data ?? {}) as Record<string, unknown>;
        for (const [dk, dv] of Object.entries(v as Record<string, unknown>)) {
          if (typeof dv !== "string" || data[dk] !== Buffer.from(dv).toString("base64")) return true;
        }
        continue;
      }
      if (drifted(v, l[k])) return true;
    }
    return false;
  }
  // Scalars: the API server may spell a number as a string (quantities, int-or-string ports).
  return String(desired) !== String(live);
}
