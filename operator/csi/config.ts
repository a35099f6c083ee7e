import { z } from "zod";
import { ConfigError, parseFlagsAndEnv } from "../kit/flags-and-env.js";
import { parseEndpoint } from "./server.js";

const millis = z.coerce.number().int().min(100, "must be at least 100 ms").max(3_600_000);

export const CsiConfigSchema = z
  .object({
    mode: z.enum(["controller", "node"], { message: "must be controller or node" }),
    endpoint: z
      .string()
      .superRefine((e, ctx) => {
        try {
          parseEndpoint(e);
        } catch (err) {
          ctx.addIssue({ code: "custom", message: (err as Error).message });
        }
      })
      .default("unix:///csi/csi.sock"),
    nodeId: z.string().min(1).max(128).optional(),
    kubeconfig: z.string().min(1).optional(),
    /** Namespace of volumes whose CreateVolume names no PVC (no --extra-create-metadata). */
    defaultNamespace: z.string().min(1).default("default"),
    /** ListVolumes lists this namespace only (default: all). */
    namespace: z.string().min(1).optional(),
    createWaitMs: millis.default(50_000),
    pollMs: millis.default(1000),
    /** Node mode: where what NodeUnstageVolume needs (IQN, portals, WWID) is kept per staged volume. */
    stateDir: z.string().startsWith("/", "must be an absolute path").default("/var/lib/hasan-csi"),
    /** Node mode: longest NodeStageVolume waits for the multipath device. */
    deviceWaitMs: millis.default(60_000),
    proto: z.string().min(1).optional(),
    /** Node mode: run iscsiadm, multipath, mkfs, mount... directly or in the host's namespaces (runner.ts). */
    hostCommands: z.enum(["direct", "nsenter"], { message: "must be direct or nsenter" }).default("direct"),
  })
  .superRefine((c, ctx) => {
    if (c.mode === "node" && !c.nodeId)
      ctx.addIssue({ code: "custom", path: ["nodeId"], message: "is required in node mode" });
  });
export type CsiConfig = z.infer<typeof CsiConfigSchema>;

const flags = {
  mode: { type: "string" },
  endpoint: { type: "string" },
  "node-id": { type: "string" },
  kubeconfig: { type: "string" },
  "default-namespace": { type: "string" },
  namespace: { type: "string" },
  "create-wait-ms": { type: "string" },
  "poll-ms": { type: "string" },
  "state-dir": { type: "string" },
  "device-wait-ms": { type: "string" },
  proto: { type: "string" },
  "host-commands": { type: "string" },
} as const;

export const usage = `usage: hasan-csi --mode controller|node [--endpoint unix:///csi/csi.sock|tcp://127.0.0.1:PORT]
       controller: [--kubeconfig FILE] [--default-namespace NS] [--namespace NS]
                   [--create-wait-ms MS] [--poll-ms MS]
       node:       --node-id ID [--state-dir DIR] [--device-wait-ms MS] [--host-commands direct|nsenter]
Every flag can also come from HASAN_CSI_<FLAG> (e.g. HASAN_CSI_NODE_ID); flags win.`;

export { ConfigError };

/** Flags first, then HASAN_CSI_* environment variables, validated together. */
export function parseCsiArgs(argv: string[], env: NodeJS.ProcessEnv): CsiConfig {
  return parseFlagsAndEnv(argv, env, { flags, envPrefix: "CSI", schema: CsiConfigSchema, usage });
}
