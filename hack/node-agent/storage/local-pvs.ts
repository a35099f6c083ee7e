import { mkdir, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { PATCH, isConflict, type KubeClient } from "../../../operator/kit/kube-client.js";
import type { PersistentVolume } from "../kube/schemas.js";
import type { Logger } from "../../../target/log.js";
import { parseQuantity } from "../../../target/quantity.js";

export const storageClassName = "local-path";
export const localPVLabel = "hasan.dev/local-pv";

export function storageClassManifest(): Record<string, unknown> {
  return {
    apiVersion: "storage.k8s.io/v1",
    kind: "StorageClass",
    metadata: {
      name: storageClassName,
      annotations: { "storageclass.kubernetes.io/is-default-class": "true" },
    },
    provisioner: "kubernetes.io/no-provisioner",
    // The scheduler picks the node first, then a PV on it: pods and their data stay together.
    volumeBindingMode: "WaitForFirstConsumer",
    reclaimPolicy: "Delete",
    // The node agent expands claims on local PVs itself (expandLocalClaim), as a resizer would.
    allowVolumeExpansion: true,
  };
}

export function pvName(node: string, i: number): string {
  return `${node}-pv-${String(i).padStart(2, "0")}`;
}

export function pvManifest(node: string, i: number, size: string, dir: string): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: { name: pvName(node, i), labels: { [localPVLabel]: "true", "kubernetes.io/hostname": node } },
    spec: {
      capacity: { storage: size },
      accessModes: ["ReadWriteOnce"],
      persistentVolumeReclaimPolicy: "Retain",
      storageClassName,
      volumeMode: "Filesystem",
      local: { path: dir },
      nodeAffinity: {
        required: {
          nodeSelectorTerms: [
            { matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: [node] }] },
          ],
        },
      },
    },
  };
}

/** Creates the default StorageClass and the directory-backed local PVs of each node (if missing). */
export async function ensureLocalStorage(
  client: KubeClient,
  nodes: string[],
  perNode: number,
  size: string,
  volumesDir: string,
): Promise<void> {
  await createIfMissing(client, "/apis/storage.k8s.io/v1/storageclasses", storageClassManifest());
  for (const node of nodes) {
    for (let i = 1; i <= perNode; i++) {
      const dir = path.join(volumesDir, node, pvName(node, i));
      await mkdir(dir, { recursive: true });
      await createIfMissing(client, "/api/v1/persistentvolumes", pvManifest(node, i, size, dir));
    }
  }
}

async function createIfMissing(
  client: KubeClient,
  collection: string,
  body: Record<string, unknown>,
): Promise<void> {
  try {
    await client.request("POST", collection, { body });
  } catch (err) {
    if (!isConflict(err)) throw err;
  }
}

/**
 * A released local PV (its claim was deleted) is wiped and made Available again, as the local
 * static provisioner does, so tests can create and delete claims freely.
 */
export async function recyclePV(client: KubeClient, pv: PersistentVolume, log: Logger): Promise<void> {
  if (pv.metadata.labels?.[localPVLabel] !== "true" || pv.status?.phase !== "Released") return;
  const dir = pv.spec.local?.path;
  if (!dir) return;
  for (const entry of await readdir(dir).catch(() => [])) {
    await rm(path.join(dir, entry), { recursive: true, force: true });
  }
  await client.request("PATCH", `/api/v1/persistentvolumes/${pv.metadata.name}`, {
    body: { spec: { claimRef: null } },
    contentType: PATCH.merge,
  });
  log.info({ pv: pv.metadata.name }, "released local volume wiped and made available");
}

/** What expandLocalClaim reads of a claim (the node agent's reflector holds whole objects). */
export interface ClaimView {
  metadata: { name: string; namespace?: string };
  spec: { volumeName?: string; resources?: { requests?: { storage?: string } } };
  status?: { phase?: string; capacity?: { storage?: string } };
}

function bytes(q: string | undefined): number | undefined {
  if (q === undefined) return undefined;
  try {
    return parseQuantity(q);
  } catch {
    return undefined;
  }
}

/**
 * A bound claim on a local PV that asks for more storage than it holds is expanded the way a
 * provisioner's resizer would: the PV's capacity, then the claim's status capacity, become the
 * request. A local PV is a directory without a size limit, so nothing else changes on the node.
 */
export async function expandLocalClaim(
  client: KubeClient,
  claim: ClaimView,
  pvOf: (name: string) => PersistentVolume | undefined,
  log: Logger,
): Promise<boolean> {
  const ns = claim.metadata.namespace;
  const volume = claim.spec.volumeName;
  const requested = claim.spec.resources?.requests?.storage;
  const want = bytes(requested);
  const held = bytes(claim.status?.capacity?.storage);
  if (!ns || !volume || claim.status?.phase !== "Bound" || want === undefined || held === undefined)
    return false;
  if (want <= held) return false;
  const pv = pvOf(volume);
  if (pv?.metadata.labels?.[localPVLabel] !== "true") return false;
  await client.request("PATCH", `/api/v1/persistentvolumes/${volume}`, {
    body: { spec: { capacity: { storage: requested } } },
    contentType: PATCH.merge,
  });
  await client.request(
    "PATCH",
    `/api/v1/namespaces/${ns}/persistentvolumeclaims/${claim.metadata.name}/status`,
    {
      body: { status: { capacity: { storage: requested } } },
      contentType: PATCH.merge,
    },
  );
  log.info(
    { claim: `${ns}/${claim.metadata.name}`, pv: volume, from: held, to: want },
    "local volume expanded",
  );
  return true;
}
