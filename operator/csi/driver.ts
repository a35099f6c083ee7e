/** Names the driver is known by, in one place. */
export const DRIVER_NAME = "iscsi.hasan.dev";
export const TOPOLOGY_NODE_KEY = "topology.iscsi.hasan.dev/node";

/** Labels and annotations on the HASanTargets the controller service creates. */
export const LABEL_DRIVER = "csi.hasan.dev/driver";
export const LABEL_PVC_NAME = "csi.hasan.dev/pvc-name";
export const LABEL_PVC_NAMESPACE = "csi.hasan.dev/pvc-namespace";
/** The CSI volume name (CreateVolumeRequest.name) the HASanTarget was made for. */
export const ANNOTATION_VOLUME_NAME = "csi.hasan.dev/volume-name";
/** The validated StorageClass parameters it was made with, as canonical JSON (idempotency check). */
export const ANNOTATION_PARAMETERS = "csi.hasan.dev/parameters";

/** Keys of volume_context, which the node service receives with every stage and publish call. */
export const CONTEXT = {
  iqn: "iqn",
  portals: "portals",
  lun: "lun",
  wwid: "wwid",
  chapSecretName: "chapSecretName",
  fsType: "fsType",
} as const;
