// zod schemas of the CSI requests this driver reads, as proto-loader decodes them (LOADER_OPTIONS:
// snake_case fields, int64 as decimal strings, enums by name, unset messages null, unset strings "").
// Every handler parses its request here first; a request that does not parse is INVALID_ARGUMENT.
import { z } from "zod";
import { describeZodError, invalidArgument } from "./errors.js";

const stringMap = z.record(z.string(), z.string()).default({});
const required = () => z.string().min(1, "required");

/** A message field the call cannot do without (proto-loader hands an unset one over as null). */
function present<T extends z.ZodType>(schema: T) {
  return schema.nullish().transform((v, ctx): NonNullable<z.output<T>> => {
    if (v === null || v === undefined) {
      ctx.addIssue({ code: "custom", message: "required" });
      return z.NEVER;
    }
    return v as NonNullable<z.output<T>>;
  });
}

/** int64 as proto-loader hands it over: a decimal string (or a number from a hand-built request). */
const int64 = z
  .union([z.string().regex(/^-?\d+$/, "must be an integer"), z.number().int()])
  .transform((v) => BigInt(v));

export const ACCESS_MODES = [
  "UNKNOWN",
  "SINGLE_NODE_WRITER",
  "SINGLE_NODE_READER_ONLY",
  "MULTI_NODE_READER_ONLY",
  "MULTI_NODE_SINGLE_WRITER",
  "MULTI_NODE_MULTI_WRITER",
  "SINGLE_NODE_SINGLE_WRITER",
  "SINGLE_NODE_MULTI_WRITER",
] as const;
export type AccessMode = (typeof ACCESS_MODES)[number];

export const VolumeCapabilitySchema = z.object({
  block: z.object({}).nullish(),
  mount: z
    .object({
      fs_type: z.string().default(""),
      mount_flags: z.array(z.string()).default([]),
      volume_mount_group: z.string().default(""),
    })
    .nullish(),
  access_mode: z.object({ mode: z.enum(ACCESS_MODES) }).nullish(),
});
export type VolumeCapability = z.infer<typeof VolumeCapabilitySchema>;

export const CapacityRangeSchema = z.object({
  required_bytes: int64.default(0n),
  limit_bytes: int64.default(0n),
});
export type CapacityRange = z.infer<typeof CapacityRangeSchema>;

export const CreateVolumeRequestSchema = z.object({
  name: required(),
  capacity_range: CapacityRangeSchema.nullish(),
  volume_capabilities: z.array(VolumeCapabilitySchema).min(1, "required"),
  parameters: stringMap,
  secrets: stringMap,
  volume_content_source: z.object({}).passthrough().nullish(),
  accessibility_requirements: z.object({}).passthrough().nullish(),
  mutable_parameters: stringMap,
});
export type CreateVolumeRequest = z.infer<typeof CreateVolumeRequestSchema>;

export const DeleteVolumeRequestSchema = z.object({ volume_id: required() });

export const ValidateVolumeCapabilitiesRequestSchema = z.object({
  volume_id: required(),
  volume_context: stringMap,
  volume_capabilities: z.array(VolumeCapabilitySchema).min(1, "required"),
  parameters: stringMap,
  mutable_parameters: stringMap,
});

export const ListVolumesRequestSchema = z.object({
  max_entries: z.number().int().min(0, "max_entries must not be negative").default(0),
  starting_token: z.string().default(""),
});

export const ControllerExpandVolumeRequestSchema = z.object({
  volume_id: required(),
  capacity_range: present(CapacityRangeSchema),
  volume_capability: VolumeCapabilitySchema.nullish(),
});

export const NodeStageVolumeRequestSchema = z.object({
  volume_id: required(),
  publish_context: stringMap,
  staging_target_path: required(),
  volume_capability: present(VolumeCapabilitySchema),
  secrets: stringMap,
  volume_context: stringMap,
});
export type NodeStageVolumeRequest = z.infer<typeof NodeStageVolumeRequestSchema>;

export const NodeUnstageVolumeRequestSchema = z.object({
  volume_id: required(),
  staging_target_path: required(),
});

export const NodePublishVolumeRequestSchema = z.object({
  volume_id: required(),
  publish_context: stringMap,
  staging_target_path: required(),
  target_path: required(),
  volume_capability: present(VolumeCapabilitySchema),
  readonly: z.boolean().default(false),
  volume_context: stringMap,
});
export type NodePublishVolumeRequest = z.infer<typeof NodePublishVolumeRequestSchema>;

export const NodeUnpublishVolumeRequestSchema = z.object({
  volume_id: required(),
  target_path: required(),
});

export const NodeGetVolumeStatsRequestSchema = z.object({
  volume_id: required(),
  volume_path: required(),
  staging_target_path: z.string().default(""),
});

export const NodeExpandVolumeRequestSchema = z.object({
  volume_id: required(),
  volume_path: required(),
  capacity_range: CapacityRangeSchema.nullish(),
  staging_target_path: z.string().default(""),
  volume_capability: VolumeCapabilitySchema.nullish(),
});

/** Parses a request; a mismatch is INVALID_ARGUMENT naming each offending field. */
export function parseRequest<S extends z.ZodType>(schema: S, request: unknown): z.infer<S> {
  const r = schema.safeParse(request ?? {});
  if (!r.success) throw invalidArgument(describeZodError(r.error));
  return r.data;
}
