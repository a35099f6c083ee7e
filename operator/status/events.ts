import type { HASanTarget } from "../api/target.js";
import type { KubeClient } from "../kit/kube-client.js";

/** Records a core/v1 Event on the HASanTarget. Failures are the caller's to log. */
export async function recordEvent(
  client: KubeClient,
  t: HASanTarget,
  type: "Normal" | "Warning",
  reason: string,
  message: string,
  instance: string,
): Promise<void> {
  const now = new Date().toISOString();
  await client.create({
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
    message: message.slice(0, 1000),
    source: { component: "hasan-operator" },
    reportingComponent: "hasan-operator",
    reportingInstance: instance,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  });
}
