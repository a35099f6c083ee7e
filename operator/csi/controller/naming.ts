import { createHash } from "node:crypto";
import { notFound } from "../errors.js";

/**
 * Longest HASanTarget name the driver makes. The operator names a target's Services `<name>-a` and
 * `<name>-b`, which must be DNS-1035 labels (63 characters), and its pods the same: 52 leaves room,
 * and a PV name from external-provisioner (`pvc-<uid>`, 40 characters) always fits as it is.
 */
export const MAX_TARGET_NAME = 52;
const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/**
 * The HASanTarget name for a CSI volume name: the name itself when it is a short DNS label (the PV
 * name from external-provisioner always is), otherwise a readable prefix plus a hash of the whole
 * name. Deterministic, so a retried CreateVolume finds what the first attempt created.
 */
export function targetNameFor(volumeName: string): string {
  if (volumeName.length <= MAX_TARGET_NAME && DNS_LABEL.test(volumeName)) return volumeName;
  const hash = createHash("sha256").update(volumeName).digest("hex").slice(0, 10);
  let prefix = volumeName
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^[^a-z]+/, "")
    .slice(0, MAX_TARGET_NAME - hash.length - 1)
    .replace(/-+$/, "");
  if (!prefix) prefix = "vol";
  return `${prefix}-${hash}`;
}

export interface VolumeRef {
  namespace: string;
  name: string;
}

/** volume_id is `<namespace>/<HASanTarget name>`: enough to find the target without a lookup table. */
export function volumeIdOf(ref: VolumeRef): string {
  return `${ref.namespace}/${ref.name}`;
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The target a volume_id names, or undefined when it cannot be one of this driver's ids. */
export function parseVolumeId(id: string): VolumeRef | undefined {
  const parts = id.split("/");
  if (parts.length !== 2) return undefined;
  const [namespace, name] = parts as [string, string];
  if (namespace.length > 63 || !NAMESPACE.test(namespace)) return undefined;
  if (name.length > MAX_TARGET_NAME || !DNS_LABEL.test(name)) return undefined;
  return { namespace, name };
}

/** As parseVolumeId; an id this driver never hands out names no volume of its own: NOT_FOUND. */
export function requireVolumeId(id: string): VolumeRef {
  const ref = parseVolumeId(id);
  if (!ref)
    throw notFound(`no volume ${JSON.stringify(id)}: this driver's volume ids are <namespace>/<name>`);
  return ref;
}
