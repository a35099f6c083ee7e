// Pure decisions of the controller service: which HASanTarget a CreateVolume asks for, whether an
// existing one is that volume, whether it is ready, and what the node service needs to know of it.
import type { HASanTarget } from "../../api/target.js";
import type { HASanTargetSpec } from "../../api/spec.js";
import { API_VERSION, KIND } from "../../api/target.js";
import { quantityBytesOrNaN } from "../../api/quantity.js";
import { wasEverSynchronized } from "../../status/conditions.js";
import { serialFromUid } from "../../pair/names.js";
import { naaFromSerial } from "../../../target/scsi/logical-unit.js";
import {
  ANNOTATION_PARAMETERS,
  ANNOTATION_VOLUME_NAME,
  CONTEXT,
  DRIVER_NAME,
  LABEL_DRIVER,
  LABEL_PVC_NAME,
  LABEL_PVC_NAMESPACE,
} from "../driver.js";
import { alreadyExists, aborted } from "../errors.js";
import type { CapacityRange } from "../messages.js";
import { capacityFits, capacityQuantity } from "./capacity.js";
import { volumeIdOf } from "./naming.js";
import {
  PVC_NAME,
  PVC_NAMESPACE,
  canonicalParameters,
  volumeParameters,
  type StorageClassParameters,
} from "./parameters.js";

/** The manifest of a HASanTarget to create (what the API server fills in is left out). */
export interface TargetManifest {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
  };
  spec: HASanTargetSpec;
}

export interface VolumeRequest {
  volumeName: string;
  targetName: string;
  namespace: string;
  capacityBytes: bigint;
  parameters: StorageClassParameters;
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const labelValue = (v: string | undefined) => (v && v.length <= 63 && LABEL_VALUE.test(v) ? v : undefined);

/** The Secret the operator fills with generated CHAP credentials for a target without spec.auth. */
export function chapSecretName(targetName: string): string {
  return `${targetName}-chap`;
}

/**
 * The HASanTarget for a volume. No spec.auth: the operator generates the CHAP credentials into
 * `<name>-chap`, which the StorageClass hands to NodeStageVolume (node-stage-secret-name). The
 * backing PVCs are deleted with the target: the driver deletes a target only when its PV's reclaim
 * policy is Delete. Nothing is exported: the driver's own PV takes the exported PV's place.
 */
export function desiredTarget(r: VolumeRequest): TargetManifest {
  const p = r.parameters;
  const labels: Record<string, string> = { [LABEL_DRIVER]: DRIVER_NAME };
  const pvcName = labelValue(p[PVC_NAME]);
  const pvcNamespace = labelValue(p[PVC_NAMESPACE]);
  if (pvcName) labels[LABEL_PVC_NAME] = pvcName;
  if (pvcNamespace) labels[LABEL_PVC_NAMESPACE] = pvcNamespace;
  const spec: HASanTargetSpec = {
    capacity: capacityQuantity(r.capacityBytes),
    storage: {
      ...(p.storageClassName ? { storageClassName: p.storageClassName } : {}),
      reclaimPolicy: "Delete",
    },
  };
  if (p.resyncRateLimit || p.peerTls || p.peerRecords) {
    spec.replication = {
      ...(p.resyncRateLimit ? { resyncRateLimit: p.resyncRateLimit } : {}),
      ...(p.peerTls ? { tls: { secretRef: { name: p.peerTls } } } : {}),
      ...(p.peerRecords ? { records: p.peerRecords } : {}),
    };
  }
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name: r.targetName,
      namespace: r.namespace,
      labels,
      annotations: {
        [ANNOTATION_VOLUME_NAME]: r.volumeName,
        [ANNOTATION_PARAMETERS]: canonicalParameters(volumeParameters(p)),
      },
    },
    spec,
  };
}

export function capacityBytesOf(t: HASanTarget): bigint {
  const n = quantityBytesOrNaN(t.spec.capacity);
  return Number.isFinite(n) ? BigInt(n) : 0n;
}

export function isDriverVolume(t: HASanTarget): boolean {
  return t.metadata.labels?.[LABEL_DRIVER] === DRIVER_NAME;
}

/**
 * Whether an existing HASanTarget is the volume a CreateVolume asks for (CSI: same name and
 * compatible → the same volume, OK; same name otherwise → ALREADY_EXISTS). Throws ALREADY_EXISTS
 * with the difference, or ABORTED while it is being deleted (a retry after the deletion creates
 * it anew).
 */
export function checkExisting(
  t: HASanTarget,
  r: VolumeRequest,
  range: CapacityRange | null | undefined,
): void {
  const where = `HASanTarget ${t.metadata.namespace}/${t.metadata.name}`;
  if (!isDriverVolume(t) || t.metadata.annotations?.[ANNOTATION_VOLUME_NAME] !== r.volumeName)
    throw alreadyExists(`${where} exists and was not created for volume ${JSON.stringify(r.volumeName)}`);
  if (t.metadata.deletionTimestamp) throw aborted(`${where} is being deleted; retry once it is gone`);
  const bytes = capacityBytesOf(t);
  if (!capacityFits(bytes, range))
    throw alreadyExists(
      `volume ${JSON.stringify(r.volumeName)} exists with ${bytes} bytes, outside the requested capacity range`,
    );
  if (!madeWith(t, r.parameters))
    throw alreadyExists(
      `volume ${JSON.stringify(r.volumeName)} exists with parameters ` +
        `${t.metadata.annotations?.[ANNOTATION_PARAMETERS] ?? "(none recorded)"}, not ${canonicalParameters(volumeParameters(r.parameters))}`,
    );
}

/** Whether the target was created with these StorageClass parameters (those that shape a volume). */
export function madeWith(t: HASanTarget, p: StorageClassParameters): boolean {
  return t.metadata.annotations?.[ANNOTATION_PARAMETERS] === canonicalParameters(volumeParameters(p));
}

export type Readiness = { ready: true } | { ready: false; why: string };

/**
 * A volume is handed out once its pair serves (Ready) and has been in sync at least once: a new
 * pair's nodes must first meet, or a lone node would hold the only copy from the first write. A
 * pair that was Synchronized and lost a node since still counts (the volume exists and serves).
 */
export function readinessOf(t: HASanTarget): Readiness {
  const s = t.status;
  const cond = (type: string) => s?.conditions?.find((c) => c.type === type);
  const ready = cond("Ready");
  const synced = cond("Synchronized");
  if (ready?.status !== "True")
    return {
      ready: false,
      why: `not Ready yet (${ready ? ready.message : `phase ${s?.phase ?? "unknown"}`})`,
    };
  if (synced?.status !== "True" && !wasEverSynchronized(s?.conditions))
    return { ready: false, why: `not Synchronized yet (${synced?.message ?? "no status"})` };
  if (!s?.iqn || (s.portals?.length ?? 0) < 2)
    return { ready: false, why: "its portals are not published yet" };
  return { ready: true };
}

/**
 * WWID under which dm-multipath names the LUN: "3" (NAA designator) and the 16-byte NAA 6h id that
 * both nodes report in VPD 0x83, derived from the unit serial, itself from the HASanTarget's uid.
 */
export function wwidOf(t: HASanTarget): string {
  return `3${naaFromSerial(serialFromUid(t.metadata.uid)).toString("hex")}`;
}

/** What NodeStageVolume and NodePublishVolume receive (volume_context is a string map). */
export function volumeContextOf(t: HASanTarget): Record<string, string> {
  const ctx: Record<string, string> = {
    [CONTEXT.iqn]: t.status?.iqn ?? "",
    [CONTEXT.portals]: (t.status?.portals ?? []).join(","),
    [CONTEXT.lun]: "0",
    [CONTEXT.wwid]: wwidOf(t),
    [CONTEXT.chapSecretName]: chapSecretName(t.metadata.name),
  };
  const fsType = recordedParameters(t).fsType;
  if (typeof fsType === "string") ctx[CONTEXT.fsType] = fsType;
  return ctx;
}

/** The parameters recorded at creation; an unreadable annotation counts as none. */
function recordedParameters(t: HASanTarget): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(t.metadata.annotations?.[ANNOTATION_PARAMETERS] ?? "{}");
    return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export interface CsiVolume {
  volume_id: string;
  capacity_bytes: string;
  volume_context: Record<string, string>;
}

export function csiVolumeOf(t: HASanTarget): CsiVolume {
  return {
    volume_id: volumeIdOf(t.metadata),
    capacity_bytes: capacityBytesOf(t).toString(),
    volume_context: volumeContextOf(t),
  };
}
