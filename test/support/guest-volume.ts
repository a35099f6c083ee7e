/**
 * What kubelet's iSCSI volume plugin does with an exported hasan PersistentVolume, done in a
 * Linux guest: read the PV (portals, IQN, LUN, CHAP secret, fsType), log in to every portal,
 * wait for the multipath device, make the filesystem when the device is blank, mount it. And a
 * workload on that filesystem: files of random data written with fsync, each file's checksum
 * kept outside the volume, earlier files read back and checked as it goes.
 */
import { z } from "zod";
import type { Guest } from "./guest.js";
import { loginScript, waitForMultipath, type Chap, type PathView } from "./guest-iscsi.js";

export const IscsiPvSchema = z.object({
  metadata: z.object({ name: z.string() }),
  spec: z.object({
    iscsi: z.object({
      targetPortal: z.string(),
      portals: z.array(z.string()).optional(),
      iqn: z.string(),
      lun: z.number().int(),
      fsType: z.string().optional(),
      chapAuthSession: z.boolean().optional(),
      secretRef: z.object({ name: z.string(), namespace: z.string().optional() }).optional(),
    }),
  }),
});
export type IscsiPv = z.infer<typeof IscsiPvSchema>;

/** The kubernetes.io/iscsi-chap Secret's keys, as kubelet reads them. */
export function chapFromSecret(data: Record<string, string>): Chap {
  const get = (k: string) => (data[k] ? Buffer.from(data[k], "base64").toString("utf8") : undefined);
  const user = get("node.session.auth.username");
  const secret = get("node.session.auth.password");
  if (!user || !secret) throw new Error("the CHAP secret lacks node.session.auth.username or password");
  const mutualUser = get("node.session.auth.username_in");
  const mutualSecret = get("node.session.auth.password_in");
  return { user, secret, ...(mutualUser && mutualSecret ? { mutualUser, mutualSecret } : {}) };
}

export const MOUNT = "/mnt/vol";

/**
 * Logs in to every portal of the PV, waits for one multipath device with a path per portal,
 * makes the PV's filesystem when the device has none, mounts it at /mnt/vol.
 */
export async function stageVolume(
  guest: Guest,
  pv: IscsiPv,
  chap: Chap | undefined,
): Promise<{ view: PathView; device: string; made: boolean }> {
  const s = pv.spec.iscsi;
  const portals = [s.targetPortal, ...(s.portals ?? [])].map((p) => {
    const [host, port] = p.split(":");
    return { host: host!, port: Number(port ?? 3260) };
  });
  await guest.run(loginScript(s.iqn, portals, chap));
  const view = await waitForMultipath(guest, { paths: portals.length });
  const device = `/dev/mapper/${view.map.wwid}`;
  const fsType = s.fsType ?? "ext4";
  const blank = (await guest.exec(`blkid -p ${device}`)).code === 2;
  if (blank)
    await guest.run(`mkfs -t ${fsType} ${fsType === "xfs" ? "-q" : "-q -F"} ${device}`, {
      timeoutMs: 300_000,
    });
  await guest.run(`mkdir -p ${MOUNT} && mount -t ${fsType} ${device} ${MOUNT}`);
  return { view, device, made: blank };
}

/**
 * Starts the workload in the background: every loop writes a file of 16–144 KiB of random data
 * with fsync (into a temporary name, then renamed), records its sha256 in /tmp/wl.sums, and reads
 * back an earlier file to check it. Stops on the first failure, noting it in /tmp/wl.status.
 */
export function workloadScript(): string {
  return `rm -f /tmp/wl.stop /tmp/wl.status /tmp/wl.sums; touch /tmp/wl.sums; mkdir -p ${MOUNT}/data
(
  fail() { echo "FAILED: $*" >>/tmp/wl.status; exit 1; }
  i=0
  while [ ! -e /tmp/wl.stop ]; do
    i=$((i + 1))
    f=${MOUNT}/data/f$i
    head -c $(( (16 + RANDOM % 128) * 1024 )) /dev/urandom >/tmp/wl.buf
    dd if=/tmp/wl.buf of=$f.tmp bs=64k conv=fsync status=none 2>>/tmp/wl.status || fail "write $f"
    mv $f.tmp $f || fail "rename $f"
    echo "$(sha256sum </tmp/wl.buf | cut -d' ' -f1)  $f" >>/tmp/wl.sums
    j=$(( (RANDOM % i) + 1 ))
    want=$(sed -n "\${j}p" /tmp/wl.sums | cut -d' ' -f1)
    got=$(sha256sum <${MOUNT}/data/f$j | cut -d' ' -f1) || fail "read f$j"
    [ "$want" = "$got" ] || fail "f$j: checksum $got, wrote $want"
    echo $i >/tmp/wl.count
  done
  echo "stopped after $i files" >>/tmp/wl.status
) >/tmp/wl.log 2>&1 &
echo $! >/tmp/wl.pid`;
}

export interface WorkloadResult {
  files: number;
  status: string;
}

/** Stops the workload and returns how many files it wrote; throws on a failure. */
export async function stopWorkload(guest: Guest): Promise<WorkloadResult> {
  await guest.run("touch /tmp/wl.stop; while kill -0 $(cat /tmp/wl.pid) 2>/dev/null; do sleep 1; done", {
    timeoutMs: 300_000,
  });
  const status = await guest.run("cat /tmp/wl.status /tmp/wl.log 2>/dev/null || true");
  if (/FAILED|error/i.test(status)) throw new Error(`the workload failed: ${status}`);
  const files = Number((await guest.run("wc -l </tmp/wl.sums")).trim());
  return { files, status: status.trim() };
}

/** Files written so far (the workload's progress). */
export async function workloadFiles(guest: Guest): Promise<number> {
  return Number((await guest.run("cat /tmp/wl.count 2>/dev/null || echo 0")).trim());
}

/**
 * Unmounts (flushing everything), checks the filesystem read-only (fsck -n or xfs_repair -n),
 * mounts again and checks every file's checksum from the device, then unmounts.
 */
export async function verifyVolume(guest: Guest, device: string, fsType: string): Promise<string> {
  await guest.run(`umount ${MOUNT}`, { timeoutMs: 300_000 });
  const check = fsType === "xfs" ? `xfs_repair -n ${device}` : `fsck.${fsType} -n -f ${device}`;
  const fsck = await guest.run(check, { timeoutMs: 600_000 });
  await guest.run(`mount -t ${fsType} ${device} ${MOUNT}`);
  const sums = await guest.run("sha256sum -c --quiet /tmp/wl.sums && echo all checksums good", {
    timeoutMs: 600_000,
  });
  await guest.run(`umount ${MOUNT}`);
  return `${fsck.trim().split("\n").slice(-3).join(" / ")}; ${sums.trim()}`;
}
