import { z } from "zod";
import { HASanTargetSpecSchema, type HASanTargetSpec } from "./spec.js";
import { HASanTargetStatusSchema, type HASanTargetStatus } from "./status.js";

export const GROUP = "hasan.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = "HASanTarget";
export const PLURAL = "hasantargets";
export const SINGULAR = "hasantarget";
export const SHORT_NAMES = ["hst"];
/** `kubectl get hasan` and `kubectl get storage` list HASanTargets. */
export const CATEGORIES = ["hasan", "storage"];
export const FINALIZER = "hasan.dev/cleanup";

/** What the operator needs from object metadata (the API server guarantees the rest). */
export const ObjectMetaSchema = z.object({
  name: z.string(),
  namespace: z.string(),
  uid: z.string(),
  generation: z.int().optional(),
  creationTimestamp: z.string().optional(),
  resourceVersion: z.string().optional(),
  deletionTimestamp: z.union([z.string(), z.date()]).optional(),
  finalizers: z.array(z.string()).optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

/** A HASanTarget read from the API server: metadata the operator uses, a validated spec, the status as written. */
export const HASanTargetSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(KIND),
  metadata: ObjectMetaSchema,
  spec: HASanTargetSpecSchema,
  status: HASanTargetStatusSchema.optional(),
});

export interface HASanTarget {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: z.infer<typeof ObjectMetaSchema>;
  spec: HASanTargetSpec;
  status?: HASanTargetStatus;
}
