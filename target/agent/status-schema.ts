import { z } from "zod";

/**
 * GET /status of a target's agent. The operator validates what it reads with the same schema,
 * so this file is the single definition of the agent's status contract.
 */
export const NodeStateSchema = z.enum([
  "Standalone",
  "Working",
  "Failed",
  "Synchronizing",
  "Pending",
  "SplitBrain",
  "Unknown",
]);
export type NodeState = z.infer<typeof NodeStateSchema>;

export const ResyncProgressSchema = z.object({
  doneBytes: z.number().int().nonnegative(),
  totalBytes: z.number().int().nonnegative(),
  bytesPerSecond: z.number().nonnegative(),
  /** null while the rate is not yet known */
  etaSeconds: z.number().nonnegative().nullable(),
});
export type ResyncProgress = z.infer<typeof ResyncProgressSchema>;

export const SessionInfoSchema = z.object({
  initiator: z.string(),
  isid: z.string(),
  tsih: z.number().int(),
  remote: z.string(),
  connections: z.number().int(),
});

export const PeerAuthErrorSchema = z.object({
  /** secret: the nodes hold different peer secrets; version: another peer protocol; identity: a wrong node name */
  kind: z.enum(["secret", "version", "identity"]),
  reason: z.string(),
  /** when the failures began (ISO 8601) */
  since: z.string(),
  /** the latest failure (ISO 8601) */
  at: z.string(),
  count: z.number().int().positive(),
});
export type PeerAuthError = z.infer<typeof PeerAuthErrorSchema>;

/** SPC-4 ALUA access states (target/scsi/port-groups.ts). */
const AluaStateSchema = z.enum([
  "active/optimized",
  "active/non-optimized",
  "standby",
  "unavailable",
  "offline",
  "transitioning",
]);

/** Online verify of a pair (target/replication/verify.ts): GET /verify, and `verify` in the status. */
export const VerifyStatusSchema = z.object({
  /** idle: none ran yet; running: comparing or repairing; completed; failed (see message) */
  state: z.enum(["idle", "running", "completed", "failed"]),
  runId: z.string().nullable(),
  /** the node whose copy is kept where the copies differ */
  source: z.enum(["a", "b"]).nullable(),
  rateBytesPerSecond: z.number().int().nonnegative(),
  /** when the run started and ended (ISO 8601), null when it did not */
  start: z.string().nullable(),
  end: z.string().nullable(),
  totalBytes: z.number().int().nonnegative(),
  bytesChecked: z.number().int().nonnegative(),
  regionsMismatched: z.number().int().nonnegative(),
  /** mismatched regions no longer out of sync (copied from the source) */
  regionsRepaired: z.number().int().nonnegative(),
  /** indexes of the first mismatched regions (regionSize bytes each) */
  mismatchedRegions: z.array(z.number().int().nonnegative()),
  regionSize: z.number().int().positive(),
  hash: z.string(),
  message: z.string(),
});
export type VerifyStatus = z.infer<typeof VerifyStatusSchema>;

export const ReplicationStatusSchema = z.object({
  /** "a" or "b" */
  node: z.enum(["a", "b"]),
  state: NodeStateSchema,
  peer: z.object({
    address: z.string(),
    connected: z.boolean(),
    /** ms since the last message from the peer, null when never heard */
    lastHeardMs: z.number().nullable(),
    /**
     * The last failed authentication with the partner (another peer secret, protocol version or
     * node name), until an authentication succeeds; absent or null when there is none. Optional:
     * older targets do not report it.
     */
    authError: PeerAuthErrorSchema.nullable().optional(),
    /**
     * While linked: what protects the link's records, as both nodes agreed ("encrypted" or
     * "authenticated"), and the peer protocol version. Optional: older targets do not report it.
     */
    records: z.enum(["encrypted", "authenticated"]).optional(),
    protocol: z.number().int().positive().optional(),
  }),
  /** current generation identifier of this node's data (hex) */
  generation: z.string(),
  /** bytes this node holds that the partner may lack (dirty regions × region size) */
  outOfSyncBytes: z.number().int().nonnegative(),
  resync: ResyncProgressSchema.nullable(),
  /** whether this node may serve writes right now (holds the witness or is Working) */
  serving: z.boolean(),
  /**
   * The ALUA access state of each node's target port group as this node reports it to
   * initiators (REPORT TARGET PORT GROUPS): the node that orders writes is active/optimized.
   * Optional: older targets do not report it.
   */
  alua: z
    .object({
      a: AluaStateSchema,
      b: AluaStateSchema,
    })
    .optional(),
  stats: z.object({
    resyncedBytes: z.number().int().nonnegative(),
    mirroredWrites: z.number().int().nonnegative(),
  }),
  /** human readable reason for the state, e.g. "peer lost 3s ago; witness held" */
  message: z.string(),
  /** the online verify of the pair as this node holds it; optional: older targets do not report it */
  verify: VerifyStatusSchema.optional(),
});
export type ReplicationStatus = z.infer<typeof ReplicationStatusSchema>;

export const TargetStatusSchema = z.object({
  iqn: z.string(),
  serial: z.string(),
  sizeBytes: z.number().int().positive(),
  blockSize: z.number().int().positive(),
  portal: z.string(),
  uptimeSeconds: z.number().nonnegative(),
  /** Standalone for a single target; the replication state otherwise */
  state: NodeStateSchema,
  sessions: z.array(SessionInfoSchema),
  counters: z.object({
    readCommands: z.number().int().nonnegative(),
    writeCommands: z.number().int().nonnegative(),
    otherCommands: z.number().int().nonnegative(),
    readBytes: z.number().int().nonnegative(),
    writtenBytes: z.number().int().nonnegative(),
    errors: z.number().int().nonnegative(),
  }),
  replication: ReplicationStatusSchema.nullable(),
});
export type TargetStatus = z.infer<typeof TargetStatusSchema>;
