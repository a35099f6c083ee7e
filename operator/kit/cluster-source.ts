// Where the Kubernetes client finds its cluster, in the client library's own order
// (KubeConfig.loadFromDefault). When it finds none, the library falls back to http://localhost:8080
// and a program started outside a cluster would retry that forever; callers refuse to start instead.
import { existsSync } from "node:fs";
import path from "node:path";

export const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

export class NoClusterError extends Error {
  override name = "NoClusterError";
}

/** A description of the cluster source (for the log), or a NoClusterError naming what was looked for. */
export function clusterSource(
  kubeconfigFlag: string | undefined,
  env: NodeJS.ProcessEnv,
  exists: (file: string) => boolean = existsSync,
): string {
  if (kubeconfigFlag) return `--kubeconfig ${kubeconfigFlag}`;
  if (env.KUBECONFIG) return `KUBECONFIG=${env.KUBECONFIG}`;
  const home = env.HOME ? path.join(env.HOME, ".kube/config") : undefined;
  if (home && exists(home)) return home;
  if (exists(SERVICE_ACCOUNT_TOKEN)) return "the pod's service account";
  throw new NoClusterError(
    `no Kubernetes cluster to talk to: no --kubeconfig, no KUBECONFIG, no ${home ?? "$HOME/.kube/config"} ` +
      `and no service account token at ${SERVICE_ACCOUNT_TOKEN} (run in a pod with a service account, ` +
      `or pass --kubeconfig FILE)`,
  );
}
