import { z } from "zod";
import { PeerRecordsSchema } from "./spec.js";

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
  type: z
    .string()
    .min(1)
    .max(316)
    .meta({ description: `Condition type: ${CONDITION_TYPES.join(", ")}.` }),
  status: z.enum(["True", "False", "Unknown"]).meta({ description: "True, False or Unknown." }),
  observedGeneration: z
    .int()
    .min(0)
    .optional()
    .meta({ description: "metadata.generation of the HASanTarget the condition was computed from." }),
  lastTransitionTime: z.string().meta({ format: "date-time", description: "When status last changed." }),
  reason: z
    .string()
    .min(1)
    .max(1024)
    .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
    .meta({ description: "Why, in one CamelCase word (the README's Troubleshooting lists each one)." }),
  message: z.string().max(32768).meta({ description: "Why, for people: what is happening and what to do." }),
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
  doneBytes: z.int().min(0).meta({ description: "Bytes this resync has copied so far." }),
  totalBytes: z.int().min(0).meta({ description: "Bytes this resync copies in all." }),
  bytesPerSecond: z.number().min(0).meta({ description: "Current copy rate." }),
  etaSeconds: z.number().min(0).optional().meta({ description: "Absent while the rate is not yet known." }),
});

export const NodeStatusSchema = z.object({
  name: z.enum(["a", "b"]).meta({ description: "Which node of the pair: a or b." }),
  pod: z.string().optional().meta({ description: "Name of the node's target pod." }),
  nodeName: z.string().optional().meta({ description: "Kubernetes node the pod runs on." }),
  portal: z.string().optional().meta({ description: "ip:port initiators log in to for this node." }),
  state: NodeStateSchema.meta({
    description:
      "Working (in sync with the partner), Failed (partner lost; serving alone if serving, tracking changes), " +
      "Synchronizing (copying changes to the partner), Pending (receiving them), SplitBrain, or Unknown " +
      "(the operator cannot reach the node's agent).",
  }),
  generation: z.string().optional().meta({ description: "Generation identifier of this node's data." }),
  outOfSyncBytes: z
    .int()
    .min(0)
    .optional()
    .meta({ description: "Bytes this node holds that its partner lacks (regions changed since the split)." }),
  lunSizeBytes: z
    .int()
    .min(0)
    .optional()
    .meta({ description: "Size of the LUN this node serves, as it reports it (grows with spec.capacity)." }),
  resync: NodeResyncSchema.optional().meta({ description: "Progress of the resync this node is part of." }),
  linkRecords: PeerRecordsSchema.optional().meta({
    description:
      "While linked to its partner: what protects the records between the two, as both agreed " +
      "(Authenticated only when both nodes ask for it; spec.replication.records).",
  }),
  message: z.string().optional().meta({ description: "What the node reports about itself, for people." }),
});
export type NodeStatus = z.infer<typeof NodeStatusSchema>;

/**
 * The phase the API server shows (a schema default, applied when the object is read) until an
 * operator writes the status: new, or in a namespace no operator watches. The operator never sets it.
 */
export const UNRECONCILED = "Unreconciled";

export const PHASES = [
  "Pending",
  "Ready",
  "Resyncing",
  "Degraded",
  "SplitBrain",
  "Unavailable",
  "Deleting",
  UNRECONCILED,
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

export const VerifyRunStatusSchema = z
  .object({
    running: z.boolean().meta({ description: "A verify is comparing or repairing the copies now." }),
    runId: z.string().optional().meta({ description: "Identifier of the last verify run." }),
    lastStart: z
      .string()
      .optional()
      .meta({ format: "date-time", description: "When the last verify started." }),
    lastEnd: z.string().optional().meta({ format: "date-time", description: "When the last verify ended." }),
    result: z.enum(["Clean", "Mismatch", "Failed"]).optional().meta({
      description:
        "How the last finished verify ended: Clean (copies identical), Mismatch (regions differed and were repaired), Failed.",
    }),
    bytesChecked: z.int().min(0).meta({ description: "Bytes the last (or running) verify compared." }),
    regionsMismatched: z.int().min(0).meta({ description: "Regions whose copies differed." }),
    regionsRepaired: z
      .int()
      .min(0)
      .meta({ description: "Mismatched regions copied from the source and in sync again." }),
    nextRun: z
      .string()
      .optional()
      .meta({ format: "date-time", description: "When spec.verify.schedule next starts one." }),
    schedule: z
      .string()
      .optional()
      .meta({ description: "The spec.verify.schedule nextRun was computed from." }),
    lastRequest: z.string().optional().meta({
      description: "The last hasan.dev/verify-now annotation value a verify was started for.",
    }),
    message: z.string().optional().meta({ description: "What the last verify reported, for people." }),
  })
  .meta({ description: "Online verify of the pair (spec.verify)." });
export type VerifyRunStatus = z.infer<typeof VerifyRunStatusSchema>;

export const HASanTargetStatusSchema = z
  .object({
    observedGeneration: z
      .int()
      .min(0)
      .optional()
      .meta({ description: "metadata.generation the operator last acted on." }),
    phase: PhaseSchema.optional().meta({
      description:
        "The pair at a glance: Pending (forming, never yet in sync), Ready (both nodes Working), Resyncing, " +
        "Degraded (one node serving alone), SplitBrain (needs spec.splitBrainResolution), Unavailable " +
        "(no node serving), Deleting, or Unreconciled (no operator has written the status: the target is new, " +
        "or no operator watches its namespace).",
    }),
    iqn: z.string().optional().meta({ description: "The target's IQN, as initiators log in to it." }),
    portals: z.array(z.string()).optional().meta({
      description: "ip:port of both portals (the nodes' Services).",
      "x-kubernetes-list-type": "atomic",
    }),
    persistentVolumeName: z
      .string()
      .optional()
      .meta({ description: "Name of the exported PersistentVolume, when spec.export asks for one." }),
    auth: AuthStatusSchema.optional(),
    syncProgress: z
      .string()
      .optional()
      .meta({ description: "Resync progress at a glance, e.g. 43% or 100%." }),
    conditions: z
      .array(ConditionSchema)
      .optional()
      .meta({
        description:
          "Ready, Synchronized, Degraded, Resyncing, DisruptionAllowed, SplitBrain, AuthenticationRequired.",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
      }),
    nodes: z
      .array(NodeStatusSchema)
      .max(2)
      .optional()
      .meta({
        description: "Each node's state as its agent reports it, a then b.",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
      }),
    verify: VerifyRunStatusSchema.optional(),
  })
  .meta({ description: "Observed state of the pair." });
export type HASanTargetStatus = z.infer<typeof HASanTargetStatusSchema>;
