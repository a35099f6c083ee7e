import type { AccessMode, VolumeCapability } from "./messages.js";

/** Filesystems the node service can make, mount and grow. */
export const FILESYSTEMS = ["ext4", "xfs"] as const;
export type Filesystem = (typeof FILESYSTEMS)[number];
export const DEFAULT_FILESYSTEM: Filesystem = "ext4";

/**
 * Single-node access modes only. A volume is one LUN holding one ordinary filesystem: mounted on
 * two nodes at once, each kernel caches and writes metadata without knowing of the other and the
 * filesystem is corrupted within seconds. A raw block device on several nodes is safe only under
 * software that coordinates its writers itself (a cluster filesystem, a clustered database), which
 * nothing here can check, so it is not offered either. Several pods on the one node that mounts
 * the volume may share it (SINGLE_NODE_MULTI_WRITER), as with ReadWriteOnce.
 */
export const SUPPORTED_ACCESS_MODES: readonly AccessMode[] = [
  "SINGLE_NODE_WRITER",
  "SINGLE_NODE_READER_ONLY",
  "SINGLE_NODE_SINGLE_WRITER",
  "SINGLE_NODE_MULTI_WRITER",
];

export type AccessType = "mount" | "block";

/** Why this driver cannot serve a capability, or undefined when it can. */
export function capabilityProblem(c: VolumeCapability): string | undefined {
  const mode = c.access_mode?.mode;
  if (!mode || mode === "UNKNOWN") return "access_mode is required";
  if (!SUPPORTED_ACCESS_MODES.includes(mode))
    return `access mode ${mode} is not supported: a hasan volume is used by one node at a time (${SUPPORTED_ACCESS_MODES.join(", ")})`;
  if (c.block && c.mount) return "a capability is either block or mount, not both";
  if (!c.block && !c.mount) return "access_type (block or mount) is required";
  const fs = c.mount?.fs_type;
  if (fs && !(FILESYSTEMS as readonly string[]).includes(fs))
    return `filesystem ${fs} is not supported (${FILESYSTEMS.join(", ")})`;
  return undefined;
}

/** The first problem among several capabilities. */
export function capabilitiesProblem(cs: VolumeCapability[]): string | undefined {
  for (const c of cs) {
    const p = capabilityProblem(c);
    if (p) return p;
  }
  return undefined;
}

export function accessTypeOf(c: VolumeCapability): AccessType {
  return c.block ? "block" : "mount";
}
