import type { KubeClient } from "../kit/kube-client.js";
import type { ApplyCache } from "./apply-cache.js";
import type { KubeObject } from "./desired-children.js";
import { FIELD_MANAGER } from "../pair/names.js";

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
 * Where a live object has drifted from what the operator applies: the path of the first field the
 * operator sets that is missing or holds another value, or undefined when none. Fields the server
 * or others add are not drift, nor is a zero value the server omitted. Arrays are compared element
 * by element; Secret stringData is compared against the live base64 data.
 */
export function driftPath(desired: unknown, live: unknown, path = ""): string | undefined {
  if (desired === null || desired === undefined) return undefined;
  if (Array.isArray(desired)) {
    if (!Array.isArray(live) || live.length !== desired.length) return path || "(root)";
    for (let i = 0; i < desired.length; i++) {
      const p = driftPath(desired[i], live[i], `${path}[${i}]`);
      if (p !== undefined) return p;
    }
    return undefined;
  }
  if (typeof desired === "object") {
    if (!live || typeof live !== "object" || Array.isArray(live)) return path || "(root)";
    const l = live as Record<string, unknown>;
    for (const [k, v] of Object.entries(desired as Record<string, unknown>)) {
      const at = path ? `${path}.${k}` : k;
      if (k === "stringData" && v && typeof v === "object") {
        const data = (l.data ?? {}) as Record<string, unknown>;
        for (const [dk, dv] of Object.entries(v as Record<string, unknown>)) {
          if (typeof dv !== "string" || data[dk] !== Buffer.from(dv).toString("base64")) return `data.${dk}`;
        }
        continue;
      }
      const p = driftPath(v, l[k], at);
      if (p !== undefined) return p;
    }
    return undefined;
  }
  // The API server omits zero values of omitempty fields (readOnly: false, a 0 port offset).
  if (live === undefined && (desired === false || desired === 0 || desired === "")) return undefined;
  // Scalars: the API server may spell a number as a string (quantities, int-or-string ports).
  return String(desired) !== String(live) ? path || "(root)" : undefined;
}
