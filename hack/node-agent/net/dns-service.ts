import { isConflict, type KubeClient } from "../../../operator/kit/kube-client.js";

export const dnsServiceKey = "kube-system/kube-dns";

/** The Service that reserves the cluster DNS address (the agent answers on it; no pods back it). */
export async function ensureDnsService(client: KubeClient, clusterIP: string): Promise<void> {
  // Look first: creating an existing Service fails on its taken IP (422) before its name (409).
  const exists = await client.request("GET", "/api/v1/namespaces/kube-system/services/kube-dns").then(
    () => true,
    () => false,
  );
  if (exists) return;
  try {
    await client.request("POST", "/api/v1/namespaces/kube-system/services", {
      body: {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "kube-dns", namespace: "kube-system", labels: { "k8s-app": "kube-dns" } },
        spec: { clusterIP, ports: [{ name: "dns", port: 53, protocol: "UDP" }] },
      },
    });
  } catch (err) {
    if (!isConflict(err)) throw err;
  }
}
