// iscsiadm and multipath command lines and the meaning of their answers: pure, so the order and
// arguments of every command the node service runs can be checked without an initiator.

/** iscsiadm exit codes (open-iscsi include/iscsi_err.h) that the node service interprets. */
export const ISCSI_ERR = {
  SESS_EXISTS: 15,
  NO_OBJS_FOUND: 21,
  LOGIN_AUTH_FAILED: 24,
} as const;

export interface Chap {
  username: string;
  password: string;
  /** Mutual CHAP: the target's credentials. */
  usernameIn?: string;
  passwordIn?: string;
}

export interface Session {
  portal: string;
  iqn: string;
}

/** `iscsiadm -m session`: "tcp: [1] 10.96.4.7:3260,1 iqn.2024-01.dev.hasan:san.db (non-flash)". */
export function parseSessions(stdout: string): Session[] {
  const out: Session[] = [];
  for (const line of stdout.split("\n")) {
    const m = /^\S+:\s+\[\d+\]\s+(\S+?)(?:,\d+)?\s+(\S+)/.exec(line.trim());
    if (m) out.push({ portal: m[1]!, iqn: m[2]! });
  }
  return out;
}

const node = (iqn: string, portal: string) => ["-m", "node", "-T", iqn, "-p", portal];
const update = (iqn: string, portal: string, name: string, value: string) => [
  ...node(iqn, portal),
  "-o",
  "update",
  "-n",
  name,
  "-v",
  value,
];

/** Does a node record exist? (exit 0 yes, 21 no) */
export const showRecord = (iqn: string, portal: string) => node(iqn, portal);

/** Creates the node record of one portal (not from discovery, whose answer names the pods' own addresses). */
export const newRecord = (iqn: string, portal: string) => [...node(iqn, portal), "-o", "new"];

/**
 * How often iscsid retries a first login that times out (open-iscsi's default is 8, each attempt
 * up to the 15 s login timeout): a portal whose node is down held NodeStageVolume for about two
 * minutes, as long as kubelet waits for it. With 2 it gives up in about 30 s, staging goes on with
 * the other portal, and the session repair logs in once the node is back.
 */
export const INITIAL_LOGIN_RETRIES = "2";

/**
 * The settings of a record: CHAP from the stage secrets or none; manual startup, since kubelet
 * stages the volume again after a reboot and a session without a user must not come back by itself;
 * few retries of the first login.
 */
export function recordSettings(iqn: string, portal: string, chap: Chap | undefined): string[][] {
  const cmds = [
    update(iqn, portal, "node.startup", "manual"),
    update(iqn, portal, "node.session.initial_login_retry_max", INITIAL_LOGIN_RETRIES),
  ];
  if (!chap) return [...cmds, update(iqn, portal, "node.session.auth.authmethod", "None")];
  cmds.push(
    update(iqn, portal, "node.session.auth.authmethod", "CHAP"),
    update(iqn, portal, "node.session.auth.username", chap.username),
    update(iqn, portal, "node.session.auth.password", chap.password),
  );
  if (chap.usernameIn && chap.passwordIn)
    cmds.push(
      update(iqn, portal, "node.session.auth.username_in", chap.usernameIn),
      update(iqn, portal, "node.session.auth.password_in", chap.passwordIn),
    );
  return cmds;
}

export const login = (iqn: string, portal: string) => [...node(iqn, portal), "--login"];
export const logout = (iqn: string, portal: string) => [...node(iqn, portal), "--logout"];
export const deleteRecord = (iqn: string, portal: string) => [...node(iqn, portal), "-o", "delete"];
/** Rescans the LUNs of a session (a grown LUN shows its new size). */
export const rescan = (iqn: string, portal: string) => [...node(iqn, portal), "-R"];

/** The multipath map of a WWID as udev names it, whatever user_friendly_names says. */
export function multipathDevice(wwid: string): string {
  return `/dev/disk/by-id/dm-uuid-mpath-${wwid}`;
}

/** mkfs for a blank volume. */
export function mkfsCommand(fsType: "ext4" | "xfs", device: string): [string, string[]] {
  // ext4: no blocks reserved for root (a volume belongs to one workload); xfs defaults are fine.
  return fsType === "ext4" ? ["mkfs.ext4", ["-F", "-m", "0", device]] : ["mkfs.xfs", [device]];
}

/** Online growth: resize2fs takes the device, xfs_growfs the mount point. */
export function growCommand(fsType: "ext4" | "xfs", device: string, mountPoint: string): [string, string[]] {
  return fsType === "ext4" ? ["resize2fs", [device]] : ["xfs_growfs", [mountPoint]];
}
