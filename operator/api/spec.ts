import { z } from "zod";
import { LimitsSpecSchema } from "./limits.js";
import { NetworkSpecSchema } from "./network.js";
import { byteQuantity, quantityBytesOrNaN, resourceQuantity } from "./quantity.js";
import { parseSchedule, SCHEDULE_CEL_RULE } from "./verify-schedule.js";

/** An IQN as RFC 3720 allows it in practice: iqn.yyyy-mm.reversed.domain[:unique] (lower case). */
export const IQN_PATTERN = "^iqn\\.[0-9]{4}-[0-9]{2}\\.[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[a-z0-9.:_-]+)?$";

const LocalObjectReferenceSchema = z.object({
  name: z.string().min(1).max(253).meta({ description: "Name of a Secret in the HASanTarget's namespace." }),
});

export const StorageSpecSchema = z
  .object({
    storageClassName: z.string().min(1).optional().meta({
      description: "StorageClass of the two backing PVCs; the cluster default when unset. Immutable.",
    }),
    size: byteQuantity(
      "Size of each backing PVC; defaults to capacity plus room for metadata and the dirty bitmap. Grow-only.",
    ).optional(),
    reclaimPolicy: z
      .enum(["Retain", "Delete"])
      .optional()
      .meta({
        description:
          "What deleting the HASanTarget does to the two backing PVCs: Delete removes them (and the data), " +
          "Retain keeps them. Unset: as spec.export.persistentVolume.reclaimPolicy, else Retain. " +
          "The CSI driver sets Delete, since it deletes a volume only when its PV's policy says so.",
      }),
  })
  .meta({
    description: "The two PersistentVolumeClaims (one per node) that hold each node's copy of the LUN.",
  });

export const CHAP_MODES = ["Required", "Disabled"] as const;

export const AuthSpecSchema = z
  .object({
    chap: z
      .enum(CHAP_MODES)
      .optional()
      .meta({
        description:
          "Required (default): initiators log in with CHAP, with the credentials of chapSecretRef or, without it, " +
          "of the Secret <name>-chap that the operator generates once. Disabled: no CHAP, any initiator that " +
          "reaches the portals logs in without credentials (the target shows AuthenticationRequired=False and a " +
          "Warning Event); cannot be combined with chapSecretRef or mutual.",
      }),
    chapSecretRef: LocalObjectReferenceSchema.optional().meta({
      description:
        "Secret of type kubernetes.io/iscsi-chap with node.session.auth.username and node.session.auth.password " +
        "(and node.session.auth.username_in / password_in for mutual CHAP). Without it the operator generates " +
        "<name>-chap once (never rewritten) and status.auth names it.",
    }),
    mutual: z
      .boolean()
      .optional()
      .meta({ description: "Also authenticate the target to the initiator (mutual CHAP)." }),
    allowedInitiators: z
      .array(z.string().regex(new RegExp(IQN_PATTERN)))
      .max(256)
      .optional()
      .meta({
        description: "Initiator IQNs allowed to log in; all when empty.",
        "x-kubernetes-list-type": "set",
      }),
  })
  .superRefine((a, ctx) => {
    if (a.chap !== "Disabled") return;
    if (a.chapSecretRef)
      ctx.addIssue({
        code: "custom",
        path: ["chapSecretRef"],
        message: "cannot be set with chap: Disabled (remove one of them)",
      });
    if (a.mutual)
      ctx.addIssue({ code: "custom", path: ["mutual"], message: "mutual CHAP needs chap: Required" });
  })
  .meta({
    description:
      "Initiator authentication: CHAP unless chap is Disabled, with the credentials in status.auth.chapSecretName.",
  });

/** What protects the records between a pair's nodes (the target's --peer-records, lower case). */
export const PeerRecordsSchema = z.enum(["Encrypted", "Authenticated"]);

export const ReplicationSpecSchema = z
  .object({
    resyncRateLimit: byteQuantity(
      "Upper bound of resync traffic in bytes per second (e.g. 100Mi).",
    ).optional(),
    peerSecretRef: LocalObjectReferenceSchema.optional().meta({
      description: "Secret whose key 'secret' authenticates the peer link; generated once when unset.",
    }),
    tls: z
      .object({
        secretRef: LocalObjectReferenceSchema.meta({
          description: "Secret with tls.crt, tls.key and ca.crt for the peer link.",
        }),
      })
      .optional()
      .meta({ description: "Run the peer link over mutually authenticated TLS." }),
    records: PeerRecordsSchema.optional().meta({
      description:
        "What protects the records between the nodes. Encrypted (default): every record is sealed " +
        "with AES-256-GCM. Authenticated: records are authenticated (altered, injected, replayed or " +
        "reordered ones are refused) but cross the network readable, for about a fifth of the CPU " +
        "per byte; choose it on a network trusted with the data, or with tls, which encrypts the link " +
        "already. Changing it restarts the pods one at a time.",
    }),
  })
  .meta({ description: "Synchronous mirroring between node a and node b." });

export const PersistentVolumeExportSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(253)
      .optional()
      .meta({ description: "Name of the PersistentVolume; hasan-<namespace>-<name> when unset. Immutable." }),
    reclaimPolicy: z.enum(["Retain", "Delete"]).optional().meta({
      description: "Retain (default) keeps the PV and both copies when the HASanTarget is deleted.",
    }),
    fsType: z.string().min(1).optional().meta({ description: "Filesystem type of the PV (default ext4)." }),
  })
  .meta({ description: "Create a PersistentVolume with an iscsi source pointing at both portals." });

/** Requests and limits of a container, as in core/v1 ResourceRequirements. */
export const ResourceRequirementsSchema = z.object({
  limits: z
    .record(z.string(), resourceQuantity("Limit."))
    .optional()
    .meta({ description: "Most of each resource (cpu, memory) the container may use." }),
  requests: z
    .record(z.string(), resourceQuantity("Request."))
    .optional()
    .meta({ description: "Resources (cpu, memory) the scheduler reserves for the container." }),
});
export type ResourceRequirements = z.infer<typeof ResourceRequirementsSchema>;

export const TolerationSchema = z.object({
  key: z.string().optional().meta({ description: "Taint key tolerated; all keys when empty with Exists." }),
  operator: z
    .enum(["Exists", "Equal"])
    .optional()
    .meta({ description: "Equal (default) matches key and value; Exists matches the key alone." }),
  value: z.string().optional().meta({ description: "Taint value tolerated with Equal." }),
  effect: z
    .enum(["NoSchedule", "PreferNoSchedule", "NoExecute"])
    .optional()
    .meta({ description: "Taint effect tolerated; all effects when unset." }),
  tolerationSeconds: z
    .int()
    .optional()
    .meta({ description: "With NoExecute: how long the pod stays on a tainted node; forever when unset." }),
});

export const PodSpecSchema = z
  .object({
    image: z.string().min(1).optional().meta({
      description:
        "Target image; the operator's default when unset. Must match the operator's allowedTargetImages.",
    }),
    imagePullPolicy: z
      .enum(["Always", "IfNotPresent", "Never"])
      .optional()
      .meta({ description: "When the kubelet pulls the target image (Kubernetes' default when unset)." }),
    resources: ResourceRequirementsSchema.optional().meta({
      description: "Compute resources of each target container; the operator's targetResources when unset.",
    }),
    nodeSelector: z.record(z.string(), z.string()).optional().meta({
      description: "Node labels both target pods require (the two pods still land on different nodes).",
    }),
    tolerations: z.array(TolerationSchema).optional().meta({
      description: "Taints the target pods tolerate.",
      "x-kubernetes-list-type": "atomic",
    }),
    logLevel: z
      .enum(["debug", "info", "warn", "error"])
      .optional()
      .meta({
        description:
          "Log level of both target pods (default info; debug logs every login and resync step). " +
          "A change replaces the pods one at a time, as any pod change does.",
      }),
    priorityClassName: z.string().min(1).optional().meta({
      description: "PriorityClass of the target pods (a high one keeps storage from being preempted).",
    }),
    terminationGracePeriodSeconds: z
      .int()
      .min(1)
      .max(3600)
      .optional()
      .meta({ description: "Time a target gets to drain sessions and flush on shutdown (default 30)." }),
  })
  .meta({ description: "How the two target pods run." });

export const SplitBrainResolutionSchema = z
  .object({
    discard: z.enum(["a", "b"]).meta({
      description: "Node whose changes since the split are thrown away; it resyncs from the other node.",
    }),
  })
  .meta({
    description:
      "Manual split-brain resolution. Set only after reading status.nodes; remove once Synchronized.",
  });

/** The annotation that starts a verify now: set it to any new value (a timestamp, say). */
export const VERIFY_NOW_ANNOTATION = "hasan.dev/verify-now";

export const VerifySpecSchema = z
  .object({
    schedule: z
      .string()
      .min(2)
      .max(100)
      .refine((v) => !("error" in parseSchedule(v)), {
        message:
          "must be an interval (e.g. 24h, 7d, 1h30m; at least 1m) or a 5-field cron expression (e.g. 0 3 * * 0)",
      })
      .optional()
      .meta({
        description:
          "When a verify runs: an interval counted from the last start (e.g. 24h, 7d) or a 5-field cron " +
          "expression in UTC (e.g. '0 3 * * 0'). None runs on a schedule when unset; the " +
          `${VERIFY_NOW_ANNOTATION} annotation starts one at any time.`,
        "x-kubernetes-validations": [
          {
            rule: SCHEDULE_CEL_RULE,
            message: "must be an interval (e.g. 24h) or a 5-field cron expression (e.g. 0 3 * * 0)",
          },
        ],
      }),
    rateLimit: byteQuantity(
      "Most bytes per second a verify compares (each node reads and hashes them); default 16Mi.",
    ).optional(),
    source: z.enum(["sequencer", "a", "b"]).optional().meta({
      description:
        "Whose copy is kept where the copies differ: the node that orders writes (sequencer, the default), a or b.",
    }),
  })
  .meta({
    description:
      "Online verify: both nodes hash every region of the LUN and compare; regions that differ are copied from the source.",
  });
export type VerifySpec = z.infer<typeof VerifySpecSchema>;

export const HASanTargetSpecSchema = z
  .object({
    capacity: byteQuantity(
      "Size of the LUN (e.g. 10Gi): at least 1Mi, a multiple of 512 bytes. Grow-only.",
    ).refine(
      (v) => {
        const bytes = quantityBytesOrNaN(v);
        return bytes >= 1024 * 1024 && bytes % 512 === 0;
      },
      { message: "must be at least 1Mi and a multiple of 512 bytes (the LUN's block size)" },
    ),
    storage: StorageSpecSchema.optional(),
    iqn: z
      .string()
      .max(223)
      .regex(new RegExp(IQN_PATTERN))
      .optional()
      .meta({ description: "Target IQN; iqn.2024-01.dev.hasan:<namespace>.<name> when unset. Immutable." }),
    auth: AuthSpecSchema.optional(),
    replication: ReplicationSpecSchema.optional(),
    export: z
      .object({ persistentVolume: PersistentVolumeExportSchema.optional() })
      .optional()
      .meta({ description: "What the operator publishes for consumers of the LUN." }),
    pod: PodSpecSchema.optional(),
    limits: LimitsSpecSchema.optional(),
    network: NetworkSpecSchema.optional(),
    splitBrainResolution: SplitBrainResolutionSchema.optional(),
    verify: VerifySpecSchema.optional(),
  })
  .meta({ description: "Desired state of an HA iSCSI target pair." });

export type HASanTargetSpec = z.infer<typeof HASanTargetSpecSchema>;
export type Toleration = z.infer<typeof TolerationSchema>;
