import { parseArgs } from "node:util";
import { z } from "zod";

export const AgentConfig = z.object({
  kubeconfig: z.string().min(1),
  runDir: z.string().min(1),
  nodes: z.coerce.number().int().min(1).max(50),
  nodePrefix: z.string().regex(/^[a-z0-9-]+$/),
  controlPort: z.coerce.number().int().min(1).max(65535),
  podCidr: z.string().regex(/^\d+\.\d+\.\d+\.\d+\/\d+$/),
  serviceCidr: z.string().regex(/^\d+\.\d+\.\d+\.\d+\/\d+$/),
  apiserver: z.string().regex(/^127\.\d+\.\d+\.\d+:\d+$/, "the API server must listen on loopback"),
  appRoot: z.string().min(1),
  /** Unpacked project image (rootfs/ and image-config.json); absent: pods run the repository. */
  imageBundle: z.string().min(1).optional(),
  pvsPerNode: z.coerce.number().int().min(0).max(100),
  pvSize: z.string().regex(/^\d+(Ki|Mi|Gi|Ti)?$/),
  kubeletVersion: z.string(),
  kubeletPort: z.coerce.number().int().min(1).max(65535),
  dnsPort: z.coerce.number().int().min(1).max(65535),
  kubeletCert: z.string().optional(),
  kubeletKey: z.string().optional(),
});
export type AgentConfig = z.infer<typeof AgentConfig>;

export function parseConfig(argv: string[]): AgentConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: "string" },
      "run-dir": { type: "string" },
      nodes: { type: "string", default: "3" },
      "node-prefix": { type: "string", default: "hasan-node" },
      "control-port": { type: "string", default: "20250" },
      "pod-cidr": { type: "string", default: "10.213.0.0/16" },
      "service-cidr": { type: "string", default: "10.214.0.0/16" },
      apiserver: { type: "string" },
      "app-root": { type: "string" },
      "image-bundle": { type: "string" },
      "pvs-per-node": { type: "string", default: "10" },
      "pv-size": { type: "string", default: "2Gi" },
      "kubelet-version": { type: "string", default: process.env.KUBERNETES_VERSION ?? "v1.37.2" },
      "kubelet-port": { type: "string", default: "10250" },
      "dns-port": { type: "string", default: "20253" },
      "kubelet-cert": { type: "string" },
      "kubelet-key": { type: "string" },
    },
  });
  return AgentConfig.parse({
    kubeconfig: values.kubeconfig,
    runDir: values["run-dir"],
    nodes: values.nodes,
    nodePrefix: values["node-prefix"],
    controlPort: values["control-port"],
    podCidr: values["pod-cidr"],
    serviceCidr: values["service-cidr"],
    apiserver: values.apiserver,
    appRoot: values["app-root"],
    imageBundle: values["image-bundle"],
    pvsPerNode: values["pvs-per-node"],
    pvSize: values["pv-size"],
    kubeletVersion: values["kubelet-version"],
    kubeletPort: values["kubelet-port"],
    dnsPort: values["dns-port"],
    kubeletCert: values["kubelet-cert"],
    kubeletKey: values["kubelet-key"],
  });
}
