import type { HASanTarget } from "../api/target.js";
import { isNotFound, PATCH, type KubeClient } from "../kit/kube-client.js";

/** An Event repeated within this long counts up on the first one instead of adding another. */
const AGGREGATE_MS = 10 * 60_000;
/** Events remembered for aggregation; the oldest is forgotten beyond this. */
const REMEMBERED = 2048;

interface Recorded {
  namespace: string;
  name: string;
  count: number;
  at: number;
}

/** Events recorded by this process, by target uid, type, reason and message. */
const recent = new Map<string, Recorded>();

function remember(key: string, r: Recorded): void {
  recent.delete(key);
  recent.set(key, r);
  if (recent.size > REMEMBERED) recent.delete(recent.keys().next().value as string);
}

/**
 * Records a core/v1 Event on the HASanTarget. The same Event again (same target, type, reason and
 * message) within 10 minutes raises the first one's count and lastTimestamp, as kubelet's
 * recorder does, so `kubectl describe` shows "(x5 over 3m)" instead of five lines. Failures are the
 * caller's to log.
 */
export async function recordEvent(
  client: KubeClient,
  t: HASanTarget,
  type: "Normal" | "Warning",
  reason: string,
  message: string,
  instance: string,
): Promise<void> {
  const now = new Date();
  const text = message.slice(0, 1000);
  const key = [t.metadata.uid, type, reason, text].join("\u0000");
  const seen = recent.get(key);
  if (seen && now.getTime() - seen.at < AGGREGATE_MS) {
    try {
      await client.request("PATCH", `/api/v1/namespaces/${seen.namespace}/events/${seen.name}`, {
        body: { count: seen.count + 1, lastTimestamp: now.toISOString() },
        contentType: PATCH.merge,
      });
      remember(key, { ...seen, count: seen.count + 1, at: now.getTime() });
      return;
    } catch (e) {
      if (!isNotFound(e)) throw e;
      // The Event expired (the API server keeps them an hour by default): record a new one.
    }
  }
  const created = await client.create({
    apiVersion: "v1",
    kind: "Event",
    metadata: { generateName: `${t.metadata.name}.`, namespace: t.metadata.namespace },
    involvedObject: {
      apiVersion: t.apiVersion,
      kind: t.kind,
      name: t.metadata.name,
      namespace: t.metadata.namespace,
      uid: t.metadata.uid,
    },
    type,
    reason,
    message: text,
    source: { component: "hasan-operator" },
    reportingComponent: "hasan-operator",
    reportingInstance: instance,
    firstTimestamp: now.toISOString(),
    lastTimestamp: now.toISOString(),
    count: 1,
  });
  const name = (created as { metadata?: { name?: string } }).metadata?.name;
  if (name) remember(key, { namespace: t.metadata.namespace, name, count: 1, at: now.getTime() });
}
