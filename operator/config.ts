import { hostname } from "node:os";
import { z } from "zod";
import { ConfigError, parseFlagsAndEnv } from "./kit/flags-and-env.js";
import { NetworkPolicyPeerSchema } from "./api/network.js";
import { ResourceRequirementsSchema } from "./api/spec.js";
import { DEFAULT_IMAGE } from "./reconcile/desired-children.js";
import { IMAGE_PATTERN } from "./reconcile/image-policy.js";
import type { NetworkPolicyOptions } from "./reconcile/network-policies.js";

const hostPort = z
  .string()
  .regex(/^[A-Za-z0-9.:[\]-]*:\d{1,5}$/, "must be HOST:PORT (e.g. 127.0.0.1:8081)")
  .transform((s) => {
    const i = s.lastIndexOf(":");
    return { host: s.slice(0, i).replace(/^\[|\]$/g, "") || "0.0.0.0", port: Number(s.slice(i + 1)) };
  });

const millis = z.coerce.number().int().min(100, "must be at least 100 ms").max(600_000);

/** "a,b*" → ["a", "b*"]: exact images, or prefixes ending in `*`. */
const imageList = z
  .string()
  .transform((s) => s.split(",").map((x) => x.trim()))
  .pipe(
    z
      .array(z.string().regex(IMAGE_PATTERN, "each must be an image or a prefix ending in *, without spaces"))
      .min(1),
  );

/** "k=v,k2=v2" → { k: "v", k2: "v2" }: the labels of the operator's own pods. */
const labelList = z.string().transform((s, ctx) => {
  const out: Record<string, string> = {};
  for (const pair of s.split(",")) {
    const m = /^\s*([A-Za-z0-9./_-]+)=([A-Za-z0-9._-]*)\s*$/.exec(pair);
    if (!m?.[1]) {
      ctx.addIssue({ code: "custom", message: `"${pair}" is not KEY=VALUE` });
      return z.NEVER;
    }
    out[m[1]] = m[2] ?? "";
  }
  return out;
});
/** A flag whose value is JSON, validated by `schema`; `example` shows the form in the error. */
function jsonFlag<T extends z.ZodType>(schema: T, example: string) {
  return z
    .string()
    .transform((v, ctx) => {
      try {
        return JSON.parse(v) as unknown;
      } catch {
        ctx.addIssue({ code: "custom", message: `must be JSON, e.g. ${example}` });
        return z.NEVER;
      }
    })
    .pipe(schema);
}
const bool = z.union([z.boolean(), z.enum(["true", "false"]).transform((s) => s === "true")]);

export const OperatorConfigSchema = z
  .object({
    kubeconfig: z.string().min(1).optional(),
    namespace: z.string().min(1).optional(),
    leaderElect: bool.default(false),
    leaderElectionNamespace: z.string().min(1).default("hasan-system"),
    leaderElectionId: z.string().min(1).default("hasan-operator"),
    identity: z.string().min(1).default(`${hostname()}_${process.pid}`),
    metricsAddr: hostPort.default({ host: "127.0.0.1", port: 8081 }),
    webhookAddr: hostPort.optional(),
    webhookCert: z.string().min(1).optional(),
    webhookKey: z.string().min(1).optional(),
    targetImage: z.string().min(1).default(DEFAULT_IMAGE),
    agentAddress: z.enum(["pod", "service"]).default("pod"),
    statusPollSteadyMs: millis.default(5000),
    statusPollActiveMs: millis.default(1000),
    /** how often each target's children are read back and drifted ones re-applied */
    driftCheckMs: millis.default(60_000),
    workers: z.coerce.number().int().min(1).max(32).default(2),
    /** images spec.pod.image may name; the target image alone when unset */
    allowedTargetImages: imageList.optional(),
    /** one NetworkPolicy per target pod (network-policies.ts) */
    networkPolicies: bool.default(true),
    /** the operator's own namespace and pod labels: the agent port admits these pods only */
    operatorNamespace: z.string().min(1).max(63).optional(),
    operatorPodLabels: labelList.optional(),
    /** who may scrape the target pods' /metrics through their NetworkPolicies (JSON NetworkPolicyPeers) */
    metricsScrapers: jsonFlag(
      z.array(NetworkPolicyPeerSchema).max(16),
      '[{"namespaceSelector":{}}]',
    ).optional(),
    /** requests and limits of target pods whose spec.pod.resources is unset (JSON) */
    targetResources: jsonFlag(
      ResourceRequirementsSchema.strict(),
      '{"requests":{"memory":"192Mi"}}',
    ).optional(),
  })
  .superRefine((c, ctx) => {
    if ((c.operatorNamespace === undefined) !== (c.operatorPodLabels === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["operatorNamespace"],
        message: "--operator-namespace and --operator-pod-labels go together",
      });
    }
    const tls = [c.webhookAddr, c.webhookCert, c.webhookKey];
    if (tls.some((v) => v !== undefined) && tls.some((v) => v === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["webhookAddr"],
        message: "--webhook-addr, --webhook-cert and --webhook-key go together",
      });
    }
  })
  .transform((c) => ({ ...c, allowedTargetImages: c.allowedTargetImages ?? [c.targetImage] }));
export type OperatorConfig = z.infer<typeof OperatorConfigSchema>;

export const operatorFlags = {
  kubeconfig: { type: "string" },
  namespace: { type: "string" },
  "leader-elect": { type: "boolean" },
  "leader-election-namespace": { type: "string" },
  "leader-election-id": { type: "string" },
  identity: { type: "string" },
  "metrics-addr": { type: "string" },
  "webhook-addr": { type: "string" },
  "webhook-cert": { type: "string" },
  "webhook-key": { type: "string" },
  "target-image": { type: "string" },
  "agent-address": { type: "string" },
  "status-poll-steady-ms": { type: "string" },
  "status-poll-active-ms": { type: "string" },
  "drift-check-ms": { type: "string" },
  workers: { type: "string" },
  "allowed-target-images": { type: "string" },
  "target-resources": { type: "string" },
  "network-policies": { type: "string" },
  "operator-namespace": { type: "string" },
  "operator-pod-labels": { type: "string" },
  "metrics-scrapers": { type: "string" },
} as const;

export const usage = `usage: hasan-operator [--kubeconfig FILE] [--namespace NS] [--leader-elect]
       [--leader-election-namespace NS] [--leader-election-id NAME] [--identity ID]
       [--metrics-addr HOST:PORT] [--webhook-addr HOST:PORT --webhook-cert FILE --webhook-key FILE]
       [--target-image IMAGE] [--agent-address pod|service]
       [--status-poll-steady-ms MS] [--status-poll-active-ms MS] [--drift-check-ms MS] [--workers N]
       [--allowed-target-images IMAGE[*],...] [--target-resources JSON] [--network-policies true|false]
       [--operator-namespace NS --operator-pod-labels KEY=VALUE,...]
Every flag can also come from HASAN_OPERATOR_<FLAG> (e.g. HASAN_OPERATOR_NAMESPACE); flags win.`;

/** What each flag does, for --help. */
export const flagHelp = `flags:
  --kubeconfig FILE              kubeconfig to use; in-cluster config when unset
  --namespace NS                 watch HASanTargets in NS only; every namespace when unset
  --leader-elect                 run as one of several replicas; only the Lease holder reconciles
  --leader-election-namespace NS namespace of the Lease (default hasan-system)
  --leader-election-id NAME      name of the Lease (default hasan-operator)
  --identity ID                  this replica's name in the Lease (default <hostname>_<pid>)
  --metrics-addr HOST:PORT       /metrics, /healthz, /readyz (default 127.0.0.1:8081)
  --webhook-addr HOST:PORT       serve the eviction webhook over TLS here
  --webhook-cert FILE            its certificate (PEM), with --webhook-key FILE its key
  --target-image IMAGE           image of the target pods (default ${DEFAULT_IMAGE})
  --allowed-target-images LIST   images spec.pod.image may name: exact, or prefixes ending in *
  --agent-address pod|service    reach target agents by pod IP (default) or through their Service
  --status-poll-steady-ms MS     agent status poll while a pair is in sync (default 5000)
  --status-poll-active-ms MS     agent status poll while a pair changes (default 1000)
  --drift-check-ms MS            read children back and re-apply drifted ones (default 60000)
  --workers N                    HASanTargets reconciled at once (default 2)
  --target-resources JSON        requests/limits of target pods without spec.pod.resources
  --network-policies true|false  one NetworkPolicy per target pod (default true)
  --operator-namespace NS        with --operator-pod-labels: the only pods the agent port admits
  --operator-pod-labels K=V,...  labels of the operator's pods (both or neither)
  --metrics-scrapers JSON        NetworkPolicyPeers that may scrape the target pods' /metrics`;

export { ConfigError };

/** Flags first, then HASAN_OPERATOR_* environment variables, validated together. */
export function parseOperatorArgs(argv: string[], env: NodeJS.ProcessEnv): OperatorConfig {
  return parseFlagsAndEnv(argv, env, {
    flags: operatorFlags,
    envPrefix: "OPERATOR",
    schema: OperatorConfigSchema,
    usage,
  });
}

/** The NetworkPolicy settings the controller takes: none when switched off. */
export function networkPolicyOptions(c: OperatorConfig): NetworkPolicyOptions | undefined {
  if (!c.networkPolicies) return undefined;
  return {
    ...(c.operatorNamespace && c.operatorPodLabels
      ? { operator: { namespace: c.operatorNamespace, podLabels: c.operatorPodLabels } }
      : {}),
    ...(c.metricsScrapers ? { metricsScrapers: c.metricsScrapers } : {}),
  };
}
