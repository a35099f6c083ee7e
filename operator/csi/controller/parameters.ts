import { z } from "zod";
import { BYTE_QUANTITY_PATTERN, quantityBytesOrNaN } from "../../api/quantity.js";
import { PeerRecordsSchema } from "../../api/spec.js";
import { FILESYSTEMS } from "../capabilities.js";
import { describeZodError, invalidArgument } from "../errors.js";

/** What external-provisioner adds with --extra-create-metadata (the prefix is reserved for it). */
export const PVC_NAME = "csi.storage.k8s.io/pvc/name";
export const PVC_NAMESPACE = "csi.storage.k8s.io/pvc/namespace";
export const PV_NAME = "csi.storage.k8s.io/pv/name";

const dnsSubdomain = z
  .string()
  .max(253)
  .regex(
    /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
    "must be a Kubernetes object name (lower case, digits, '-', '.')",
  );

/** The StorageClass parameters a user may set; each maps onto one HASanTarget field. */
const userParameters = {
  /** spec.storage.storageClassName: the class of the two backing PVCs (the cluster default when unset). */
  storageClassName: dnsSubdomain.optional(),
  /** spec.replication.resyncRateLimit: bytes per second of resync traffic, e.g. 100Mi. */
  resyncRateLimit: z
    .string()
    .regex(new RegExp(BYTE_QUANTITY_PATTERN), "must be a byte quantity such as 100Mi or 50M")
    .refine((v) => Number.isSafeInteger(quantityBytesOrNaN(v)), "must be a whole number of bytes per second")
    .optional(),
  /** The filesystem NodeStageVolume makes on a blank volume (unless the PV names one). */
  fsType: z.enum(FILESYSTEMS).optional(),
  /** spec.replication.tls.secretRef: a Secret in the PVC's namespace with tls.crt, tls.key, ca.crt. */
  peerTls: dnsSubdomain.optional(),
  /** spec.replication.records: Encrypted (default) or Authenticated. */
  peerRecords: PeerRecordsSchema.optional(),
};

const metadataParameters = {
  [PVC_NAME]: z.string().min(1).optional(),
  [PVC_NAMESPACE]: z.string().min(1).optional(),
  [PV_NAME]: z.string().min(1).optional(),
};

export const KNOWN_PARAMETERS = Object.keys(userParameters).sort();

const ParametersSchema = z.strictObject({ ...userParameters, ...metadataParameters });
export type StorageClassParameters = z.infer<typeof ParametersSchema>;
/** The parameters that shape the volume (not where it came from): what idempotency compares. */
export type VolumeParameters = Pick<StorageClassParameters, keyof typeof userParameters>;

/**
 * Validates CreateVolumeRequest.parameters. A parameter this driver does not know is refused by
 * name (INVALID_ARGUMENT): a misspelt key would otherwise be silently ignored, and the user would
 * get a volume unlike the one asked for. external-provisioner turns the message into an Event on
 * the PVC.
 */
export function parseParameters(raw: Record<string, string>): StorageClassParameters {
  const unknown = Object.keys(raw)
    .filter((k) => !(k in userParameters) && !(k in metadataParameters))
    .sort();
  if (unknown.length)
    throw invalidArgument(
      `unknown StorageClass parameter${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => JSON.stringify(k)).join(", ")}` +
        ` (this driver knows ${KNOWN_PARAMETERS.join(", ")})`,
    );
  const r = ParametersSchema.safeParse(raw);
  if (!r.success) throw invalidArgument(`StorageClass parameter ${describeZodError(r.error)}`);
  return r.data;
}

/** The volume-shaping parameters, keys sorted, unset ones left out: stable JSON for comparison. */
export function volumeParameters(p: StorageClassParameters): VolumeParameters {
  const out: Record<string, string> = {};
  for (const k of KNOWN_PARAMETERS) {
    const v = p[k as keyof VolumeParameters];
    if (v !== undefined) out[k] = v;
  }
  return out as VolumeParameters;
}

export function canonicalParameters(p: VolumeParameters): string {
  return JSON.stringify(volumeParameters(p));
}
