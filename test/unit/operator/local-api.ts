import type http from "node:http";
import { KubeConfig } from "@kubernetes/client-node";
import { KubeClient } from "../../../operator/kit/kube-client.js";

/** Starts server on a free port of 127.0.0.1 and returns a KubeClient that talks to it over HTTP. */
export async function clientOf(server: http.Server): Promise<KubeClient> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: "u" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return new KubeClient(kc);
}

/** Waits until cond holds (20 s at most). */
export async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 20_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
