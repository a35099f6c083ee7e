import { z } from "zod";

export const CONDITION_TYPES = [
  "Ready",
  "Synchronized",
  "Degraded",
  "Resyncing",
  "DisruptionAllowed",
  "SplitBrain",
  "AuthenticationRequired",
  "Capacity",
] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

/** metav1.Condition */
export const ConditionSchema = z.object({
  type: z.string().min(1).max(316),
  status: z.enum(["True", "False", "Unknown"]),
  observedGeneration: z.int().min(0).optional(),
  lastTransitionTime: z.string().meta({ format: "date-time" }),
  reason: z
    .string()
    .min(1)
    .max(1024)
    .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/),
  message: z.string().max(32768),
});
export type Condition = z.infer<typeof ConditionSchema>;

export const NODE_STATES = [
  "Working",
  "Failed",
  "Synchronizing",
  "Pending",
  "SplitBrain",
  "Unknown",
] as const;
export const NodeStateSchema = z.enum(NODE_STATES);
export type PairNodeState = z.infer<typeof NodeStateSchema>;

export const NodeResyncSchema = z.object({
  doneBytes: z.int().min(0),
  totalBytes: z.int().min(0),
  bytesPerSecond: z.number().min(0),
  etaSeconds: z.number().min(0).optional().meta({ description: "Absent while the rate is not yet known." }),
});

export const NodeStatusSchema = z.object({
  name: z.enum(["a", "b"]),
  pod: z.string().optional(),
  nodeName: z.string().optional(),
  portal: z.string().optional().meta({ description: "ip:port initiators log in to for this node." }),
  state: NodeStateSchema,
  generation: z.string().optional().meta({ description: "Generation identifier of this node's data." }),
  outOfSyncBytes: z.int().min(0).optional(),
  lunSizeBytes: z
    .int()
    .min(0)
    .optional()
    .meta({ description: "Size of the LUN this node serves, as it reports it (grows with spec.capacity)." }),
  resync: NodeResyncSchema.optional(),
  message: z.string().optional(),
});
export type NodeStatus = z.infer<typeof NodeStatusSchema>;

export const PHASES = [
  "Pending",
  "Ready",
  "Resyncing",
  "Degraded",
  "SplitBrain",
  "Unavailable",
  "Deleting",
] as const;
export const PhaseSchema = z.enum(PHASES);
export type Phase = z.infer<typeof PhaseSchema>;

export const AUTH_MODES = ["CHAP", "MutualCHAP", "Disabled"] as const;

export const AuthStatusSchema = z
  .object({
    mode: z.enum(AUTH_MODES).meta({
      description:
        "What an initiator needs to log in: CHAP, MutualCHAP (and it checks the target), or nothing (Disabled).",
    }),
    chapSecretName: z
      .string()
      .optional()
      .meta({
        description:
          "Secret (type kubernetes.io/iscsi-chap, in the HASanTarget's namespace) with the credentials: " +
          "node.session.auth.username / password, and username_in / password_in for mutual CHAP.",
      }),
    keptOpen: z
      .boolean()
      .optional()
      .meta({
        description:
          "The target was made before CHAP became the default and is kept without it so its initiators " +
          "keep logging in; spec.auth.chap: Required turns CHAP on.",
      }),
    generated: z.boolean().meta({
      description: "The operator generated chapSecretName (once; it never rewrites it).",
    }),
  })
  .meta({ description: "Where initiators find the credentials to log in." });
export type AuthStatus = z.infer<typeof AuthStatusSchema>;

export const HASanTargetStatusSchema = z
  .object({
    observedGeneration: z.int().min(0).optional(),
    phase: PhaseSchema.optional(),
    iqn: z.string().optional(),
    portals: z.array(z.string()).optional().meta({ "x-kubernetes-list-type": "atomic" }),
    persistentVolumeName: z.string().optional(),
    auth: AuthStatusSchema.optional(),
    syncProgress: z
      .string()
      .optional()
      .meta({ description: "Resync progress at a glance, e.g. 43% or 100%." }),
    conditions: z
      .array(ConditionSchema)
      .optional()
      .meta({
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
      }),
    nodes: z
      .array(NodeStatusSchema)
      .max(2)
      .optional()
      .meta({
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
      }),
  })
  .meta({ description: "Observed state of the pair." });
export type HASanTargetStatus = z.infer<typeof HASanTargetStatusSchema>;
