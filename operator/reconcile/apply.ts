import type { KubeClient } from "../kit/kube-client.js";
import type { KubeObject } from "./desired-children.js";
import { FIELD_MANAGER } from "./names.js";

/** Server-side apply of each object under the operator's one field manager; returns the first error. */
export async function applyAll(
  client: KubeClient,
  objects: readonly KubeObject[],
): Promise<string | undefined> {
  const errors: string[] = [];
  for (const obj of objects) {
    try {
      await client.apply(obj, FIELD_MANAGER, true);
    } catch (e) {
      errors.push(`${obj.kind} ${obj.metadata.name}: ${(e as Error).message}`);
    }
  }
  return errors.length ? errors.join("; ") : undefined;
}
