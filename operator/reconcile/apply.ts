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
