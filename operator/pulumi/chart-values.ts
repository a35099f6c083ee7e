import { NetworkPolicyPeerSchema } from "../api/network.js";
import { z } from "zod";

// The hasan chart's values: charts/hasan/values.schema.json is generated from this schema
// (hack/gen-values-schema.ts), and the Pulumi component types its `values` with it.

const name = z.string().max(253);
const freeForm = z.record(z.string(), z.unknown());
/** A duration as Go and Prometheus write it: 30s, 10m, 1h30m. */
const duration = z.string().regex(/^([0-9]+(ms|s|m|h))+$/, "must be a duration such as 60s or 1h30m");
const stringMap = z.record(z.string(), z.string());
const millis = z.int().min(100).max(600_000);

const ImageSchema = z
  .strictObject({
    repository: z.string().min(1).meta({ description: "Image of the operator and of the target pods." }),
    tag: z.string().meta({ description: "Image tag; the chart's appVersion when empty." }),
    pullPolicy: z.enum(["Always", "IfNotPresent", "Never"]),
  })
  .partial();

/** Where and how a Deployment's or DaemonSet's pods run: the same values for every workload. */
const podSettings = {
  nodeSelector: stringMap,
  tolerations: z.array(freeForm),
  affinity: freeForm.meta({ description: "Pod affinity; replicas prefer different nodes when empty." }),
  priorityClassName: z.string(),
  podAnnotations: stringMap,
  podLabels: stringMap,
  podSecurityContext: freeForm,
  securityContext: freeForm,
};

const OperatorSchema = z
  .strictObject({
    replicas: z.int().min(1).max(10).meta({ description: "Operator replicas; one leads at a time." }),
    watchNamespace: z
      .string()
      .meta({ description: "Watch HASanTargets in this namespace only; all namespaces when empty." }),
    leaderElection: z
      .strictObject({
        enabled: z.boolean(),
        id: z.string().min(1).max(63).meta({ description: "Name of the Lease in the release namespace." }),
      })
      .partial(),
    targetImage: z
      .string()
      .meta({ description: "Image of the target pods; the operator's image when empty." }),
    allowedTargetImages: z.array(z.string().regex(/^[^\s*,]+\*?$/)).meta({
      description:
        "Images spec.pod.image may name: exact references, or prefixes ending in *. Empty: the target image alone.",
    }),
    targetResources: freeForm.meta({
      description:
        "Requests and limits of target pods whose HASanTarget sets no spec.pod.resources " +
        "(empty: the operator's default, requests of 100m CPU and 192Mi memory).",
    }),
    agentAddress: z
      .enum(["pod", "service"])
      .meta({ description: "How the operator reaches each target's agent: pod IP or Service clusterIP." }),
    workers: z.int().min(1).max(32),
    statusPollSteadyMs: millis.meta({ description: "Status poll period while both nodes are Working." }),
    statusPollActiveMs: millis.meta({ description: "Status poll period while anything is not Working." }),
    driftCheckMs: millis.meta({
      description: "How often each target's children are read back and drifted ones re-applied.",
    }),
    logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]),
    resources: freeForm,
    ...podSettings,
    podDisruptionBudget: z
      .strictObject({ enabled: z.boolean(), minAvailable: z.union([z.int().min(0), z.string()]) })
      .partial(),
  })
  .partial();

const WebhookSchema = z
  .strictObject({
    enabled: z.boolean().meta({
      description:
        "Validating webhook on pods/eviction that denies with 429 while a pair is not safe to disrupt.",
    }),
    port: z.int().min(1024).max(65535),
    failurePolicy: z.enum(["Ignore", "Fail"]),
    timeoutSeconds: z.int().min(1).max(30),
    namespaceSelector: freeForm,
    tls: z
      .strictObject({
        validityDays: z
          .int()
          .min(1)
          .max(36500)
          .meta({ description: "Validity of the generated CA and certificate." }),
      })
      .partial(),
    certManager: z
      .strictObject({
        enabled: z.boolean().meta({ description: "Let cert-manager issue the serving certificate." }),
        issuerRef: z
          .strictObject({ name: z.string().min(1), kind: z.string().min(1), group: z.string() })
          .partial()
          .meta({ description: "Issuer or ClusterIssuer; a self-signed Issuer is created when empty." }),
      })
      .partial(),
  })
  .partial();

const MetricsSchema = z
  .strictObject({
    port: z.int().min(1024).max(65535),
    service: z.strictObject({ enabled: z.boolean() }).partial(),
    serviceMonitor: z
      .strictObject({
        enabled: z
          .boolean()
          .meta({ description: "Needs the Prometheus operator's monitoring.coreos.com/v1 API." }),
        interval: duration,
        labels: stringMap,
      })
      .partial(),
    podMonitor: z
      .strictObject({
        enabled: z.boolean().meta({
          description:
            "Scrape the target pods (needs the Prometheus operator's monitoring.coreos.com/v1 API).",
        }),
        interval: duration,
        labels: stringMap,
        scrapers: z.array(NetworkPolicyPeerSchema).max(16).meta({
          description: "NetworkPolicyPeers allowed to reach the target pods' metrics port.",
        }),
      })
      .partial(),
    prometheusRule: z
      .strictObject({
        enabled: z.boolean().meta({ description: "Install the alerts as a PrometheusRule." }),
        labels: stringMap,
        degradedFor: duration,
        resyncStalledFor: duration,
        operatorDownFor: duration,
      })
      .partial(),
    dashboards: z
      .strictObject({
        enabled: z
          .boolean()
          .meta({ description: "A Grafana dashboard in a ConfigMap for the dashboard sidecar." }),
        labels: stringMap,
        namespace: z.string(),
      })
      .partial(),
  })
  .partial();

const imageRef = z
  .string()
  .min(1)
  .regex(/^[^\s]+$/, "must be an image reference");

const CsiSchema = z
  .strictObject({
    enabled: z.boolean().meta({
      description:
        "The CSI driver iscsi.hasan.dev: CSIDriver, controller Deployment, node DaemonSet, StorageClass.",
    }),
    images: z
      .strictObject({
        provisioner: imageRef.meta({ description: "external-provisioner image." }),
        resizer: imageRef.meta({ description: "external-resizer image." }),
        nodeDriverRegistrar: imageRef.meta({ description: "node-driver-registrar image." }),
        livenessProbe: imageRef.meta({ description: "livenessprobe image." }),
        pullPolicy: z.enum(["Always", "IfNotPresent", "Never"]),
      })
      .partial(),
    logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]),
    controller: z
      .strictObject({
        replicas: z
          .int()
          .min(1)
          .max(10)
          .meta({ description: "Controller replicas; the sidecars elect a leader." }),
        provisionTimeout: duration.meta({
          description: "external-provisioner's and external-resizer's timeout for one call (--timeout).",
        }),
        createWaitMs: z.int().min(100).max(3_600_000).meta({
          description: "Longest the controller service holds one CreateVolume waiting for the pair.",
        }),
        resources: freeForm,
        sidecarResources: freeForm,
        ...podSettings,
      })
      .partial(),
    node: z
      .strictObject({
        enabled: z.boolean().meta({
          description:
            "The node plugin DaemonSet (privileged; needs the host's iscsid and multipathd on every node).",
        }),
        kubeletDir: z
          .string()
          .startsWith("/")
          .meta({ description: "The kubelet's root directory on the nodes." }),
        healthPort: z
          .int()
          .min(1024)
          .max(65535)
          .meta({ description: "livenessprobe's port (host network)." }),
        resources: freeForm,
        sidecarResources: freeForm,
        nodeSelector: stringMap,
        tolerations: z.array(freeForm),
        priorityClassName: z.string(),
      })
      .partial(),
    storageClass: z
      .strictObject({
        create: z.boolean(),
        name: name.min(1),
        default: z.boolean().meta({ description: "Mark it the cluster's default StorageClass." }),
        reclaimPolicy: z.enum(["Delete", "Retain"]),
        volumeBindingMode: z.enum(["Immediate", "WaitForFirstConsumer"]),
        allowVolumeExpansion: z.boolean(),
        parameters: stringMap.meta({
          description:
            "StorageClass parameters: storageClassName, fsType, resyncRateLimit, peerTls, peerRecords.",
        }),
      })
      .partial(),
  })
  .partial();

export const ChartValuesSchema = z
  .strictObject({
    image: ImageSchema,
    imagePullSecrets: z.array(z.strictObject({ name: name.min(1) })),
    nameOverride: z.string().max(63),
    fullnameOverride: z.string().max(63),
    crds: z
      .strictObject({
        enabled: z.boolean().meta({ description: "Install the HASanTarget CRD with the chart." }),
        keep: z.boolean().meta({ description: "Keep the CRD (and every HASanTarget) on helm uninstall." }),
      })
      .partial(),
    operator: OperatorSchema,
    serviceAccount: z
      .strictObject({ create: z.boolean(), name: z.string(), annotations: stringMap })
      .partial(),
    rbac: z
      .strictObject({
        create: z.boolean(),
        aggregateToDefaultRoles: z.boolean().meta({
          description: "Add HASanTargets to the built-in view, edit and admin ClusterRoles.",
        }),
      })
      .partial(),
    networkPolicies: z
      .strictObject({
        enabled: z.boolean().meta({
          description:
            "One NetworkPolicy per target pod: peer port from the partner, agent port from the operator, " +
            "iSCSI port from spec.network.iscsiFrom. Needs a network plugin that enforces them.",
        }),
      })
      .partial(),
    webhook: WebhookSchema,
    metrics: MetricsSchema,
    extraObjects: z.array(z.record(z.string(), z.unknown())).meta({
      description: "Extra objects rendered with the release (through tpl).",
    }),
    csi: CsiSchema,
    global: freeForm.meta({ description: "Values shared with subcharts (none so far)." }),
  })
  .partial()
  .meta({ title: "Values of the hasan chart" });

/** Values as a user passes them (every field optional; the chart's values.yaml fills the rest). */
export type ChartValues = z.input<typeof ChartValuesSchema>;
