/**
 * What a Linux node does to use a hasan LUN, as bash for a test guest (test/support/guest.ts):
 * node records for every portal (with CHAP), login, the multipath map, and the parsing of what
 * `multipath -ll` and `iscsiadm -m session -P 3` say.
 */
import type { Guest } from "./guest.js";
import { waitFor } from "./processes.js";

export interface Portal {
  host: string;
  port: number;
}

export interface Chap {
  user: string;
  secret: string;
  /** mutual CHAP: the target's name and secret, which the initiator checks */
  mutualUser?: string;
  mutualSecret?: string;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Node records with the reachable address of every portal (SendTargets would answer with the
 * addresses the target knows, which the guest cannot reach), CHAP settings, then login.
 */
export function loginScript(iqn: string, portals: readonly Portal[], chap?: Chap): string {
  const lines: string[] = ["set -e"];
  for (const p of portals) {
    const node = `iscsiadm -m node -T ${q(iqn)} -p ${p.host}:${p.port}`;
    lines.push(`iscsiadm -m node -o new -T ${q(iqn)} -p ${p.host}:${p.port} >/dev/null`);
    const set = (name: string, value: string) => lines.push(`${node} -o update -n ${name} -v ${q(value)}`);
    if (chap) {
      set("node.session.auth.authmethod", "CHAP");
      set("node.session.auth.username", chap.user);
      set("node.session.auth.password", chap.secret);
      if (chap.mutualUser && chap.mutualSecret) {
        set("node.session.auth.username_in", chap.mutualUser);
        set("node.session.auth.password_in", chap.mutualSecret);
      }
    }
  }
  for (const p of portals) lines.push(`iscsiadm -m node -T ${q(iqn)} -p ${p.host}:${p.port} --login`);
  return lines.join("\n");
}

/** Flushes and removes the maps, logs out of every session of `iqn` and deletes its records. */
export function logoutScript(iqn: string): string {
  return [
    "multipath -F >/dev/null 2>&1 || true",
    `iscsiadm -m node -T ${q(iqn)} --logout >/dev/null 2>&1 || true`,
    `iscsiadm -m node -T ${q(iqn)} -o delete >/dev/null 2>&1 || true`,
    "udevadm settle --timeout=10 || true",
  ].join("\n");
}

export interface MultipathPath {
  hctl: string;
  dev: string;
  /** dm state, path checker state, device state: "active ready running" when all is well */
  dmState: string;
  checker: string;
  online: string;
}

export interface MultipathGroup {
  prio: number;
  status: string;
  paths: MultipathPath[];
}

export interface MultipathMap {
  wwid: string;
  dm: string;
  vendorProduct: string;
  features: string;
  hwhandler: string;
  groups: MultipathGroup[];
}

/** Parses `multipath -ll` (multipath-tools 0.9). */
export function parseMultipathLl(text: string): MultipathMap[] {
  const maps: MultipathMap[] = [];
  let map: MultipathMap | null = null;
  for (const line of text.split("\n")) {
    const head = /^(\S+) (dm-\d+) (.+)$/.exec(line);
    if (head) {
      map = {
        wwid: head[1]!,
        dm: head[2]!,
        vendorProduct: head[3]!,
        features: "",
        hwhandler: "",
        groups: [],
      };
      maps.push(map);
      continue;
    }
    if (!map) continue;
    const size = /features='([^']*)' hwhandler='([^']*)'/.exec(line);
    if (size) {
      map.features = size[1]!;
      map.hwhandler = size[2]!;
      continue;
    }
    const group = /policy='[^']*' prio=(-?\d+) status=(\w+)/.exec(line);
    if (group) {
      map.groups.push({ prio: Number(group[1]), status: group[2]!, paths: [] });
      continue;
    }
    const path = /(\d+:\d+:\d+:\d+) (\S+)\s+\d+:\d+\s+(\w+) (\w+) (\w+)/.exec(line);
    if (path && map.groups.length)
      map.groups.at(-1)!.paths.push({
        hctl: path[1]!,
        dev: path[2]!,
        dmState: path[3]!,
        checker: path[4]!,
        online: path[5]!,
      });
  }
  return maps;
}

/** Which portal (host:port) each attached disk (sdX) came through, from `iscsiadm -m session -P 3`. */
export function parseSessionDisks(text: string): Map<string, string> {
  const disks = new Map<string, string>();
  let portal = "";
  for (const line of text.split("\n")) {
    const p = /Current Portal: ([\d.]+:\d+)/.exec(line);
    if (p) portal = p[1]!;
    const d = /Attached scsi disk (\w+)/.exec(line);
    if (d && portal) disks.set(d[1]!, portal);
  }
  return disks;
}

export interface PathView {
  map: MultipathMap;
  /** portal (host:port) of each group's paths, in multipath's group order (highest priority first) */
  groupPortals: string[][];
}

export async function multipathView(guest: Guest): Promise<PathView[]> {
  const maps = parseMultipathLl(await guest.run("multipath -ll 2>/dev/null"));
  const disks = parseSessionDisks(await guest.run("iscsiadm -m session -P 3 2>/dev/null || true"));
  return maps.map((map) => ({
    map,
    groupPortals: map.groups.map((g) => g.paths.map((p) => disks.get(p.dev) ?? `?${p.dev}`)),
  }));
}

export function describeView(v: PathView[]): string {
  return v
    .map(
      (m) =>
        `${m.map.wwid} ${m.map.vendorProduct} [${m.map.hwhandler}] ` +
        m.map.groups
          .map(
            (g, i) =>
              `group prio=${g.prio} ${g.status}: ` +
              g.paths
                .map((p, j) => `${p.dev}@${m.groupPortals[i]![j]} ${p.dmState}/${p.checker}/${p.online}`)
                .join(", "),
          )
          .join("; "),
    )
    .join(" | ");
}

const healthy = (p: MultipathPath) =>
  p.dmState === "active" && p.checker === "ready" && p.online === "running";

/** The group with the highest priority (where multipath sends I/O when its paths are up). */
export function preferredGroup(v: PathView): { group: MultipathGroup; portals: string[] } | null {
  let best = -1;
  for (let i = 0; i < v.map.groups.length; i++)
    if (best < 0 || v.map.groups[i]!.prio > v.map.groups[best]!.prio) best = i;
  if (best < 0) return null;
  const tie = v.map.groups.some((g, i) => i !== best && g.prio === v.map.groups[best]!.prio);
  return tie ? null : { group: v.map.groups[best]!, portals: v.groupPortals[best]! };
}

/**
 * Waits until one multipath map has `paths` healthy paths (and, when given, the paths through
 * `preferredPortal` alone make the group with the highest priority). Returns the map's view.
 */
export async function waitForMultipath(
  guest: Guest,
  o: { paths: number; preferredPortal?: string; timeoutMs?: number },
): Promise<PathView> {
  let last = "";
  return await waitFor(
    `a multipath map with ${o.paths} healthy paths${o.preferredPortal ? `, ${o.preferredPortal} preferred` : ""}`,
    async () => {
      const view = await multipathView(guest);
      last = describeView(view);
      if (view.length !== 1) return false;
      const v = view[0]!;
      const all = v.map.groups.flatMap((g) => g.paths);
      if (all.length !== o.paths || !all.every(healthy)) return false;
      if (o.preferredPortal) {
        const best = preferredGroup(v);
        if (!best || !best.portals.every((p) => p === o.preferredPortal)) return false;
      }
      return v;
    },
    o.timeoutMs ?? 90_000,
    1000,
  ).catch((e: Error) => {
    throw new Error(`${e.message}; multipath: ${last || "no map"}`);
  });
}

/**
 * Waits until multipath sends I/O through `portal`'s group: its group has the highest priority
 * and is the active one. A path that joins a map after it was made gets its priority on a later
 * checker tick, and multipathd then switches groups (failback immediate); the kernel takes the
 * switch at the next I/O, so each probe reads one block through the map.
 */
export async function waitForPreferredInUse(
  guest: Guest,
  o: { paths: number; portal: string; timeoutMs?: number },
): Promise<PathView> {
  let last = "";
  return await waitFor(
    `I/O through ${o.portal}'s path group`,
    async () => {
      const v = await waitForMultipath(guest, { paths: o.paths, preferredPortal: o.portal });
      await guest.run(`dd if=/dev/mapper/${v.map.wwid} of=/dev/null bs=4k count=1 iflag=direct status=none`);
      const now = (await multipathView(guest))[0];
      if (!now) return false;
      last = describeView([now]);
      return preferredGroup(now)?.group.status === "active" ? now : false;
    },
    o.timeoutMs ?? 60_000,
    1000,
  ).catch((e: Error) => {
    throw new Error(`${e.message}; multipath: ${last || "no map"}`);
  });
}

/**
 * fio on `device` in a loop until /tmp/fio.stop exists: each round writes every block of the
 * first `size` at random (4–64 KiB, direct I/O, depth 8) with a crc32c header, verifying as it
 * goes (verify_backlog) and all of it at the end; any I/O error or bad block stops the loop.
 * Runs in the background; `fioStop` ends it and returns the summary.
 */
export function fioLoopScript(device: string, size = "16M"): string {
  return `rm -f /tmp/fio.stop /tmp/fio.rounds; mkdir -p /tmp/fio
(
  i=0
  while [ ! -e /tmp/fio.stop ]; do
    i=$((i + 1))
    fio --name=round$i --filename=${device} --direct=1 --ioengine=libaio --iodepth=8 \\
      --rw=randwrite --bsrange=4k-64k --size=${size} --randseed=$i \\
      --verify=crc32c --verify_backlog=64 --verify_fatal=1 --do_verify=1 \\
      --output=/tmp/fio/round$i.txt || { echo "round $i FAILED" >>/tmp/fio.rounds; exit 1; }
    echo "round $i ok" >>/tmp/fio.rounds
  done
) >/tmp/fio.log 2>&1 &
echo $! >/tmp/fio.pid`;
}

export interface FioSummary {
  rounds: number;
  failed: boolean;
  /** total errors fio reported over all rounds */
  errors: number;
  writtenMiB: number;
  text: string;
}

/** Stops the fio loop after its current round and summarizes every round. */
export async function fioStop(guest: Guest, timeoutMs = 300_000): Promise<FioSummary> {
  await guest.run("touch /tmp/fio.stop; while kill -0 $(cat /tmp/fio.pid) 2>/dev/null; do sleep 1; done", {
    timeoutMs,
  });
  const rounds = await guest.run("cat /tmp/fio.rounds 2>/dev/null || true");
  const text = await guest.run(
    "for f in $(ls /tmp/fio/round*.txt 2>/dev/null | sort -V); do echo \"== $f\"; grep -E 'err=|write: IOPS|WRITE:|verify|lat \\(msec\\)|clat percentiles' $f; done; cat /tmp/fio.log",
  );
  const errors = [...text.matchAll(/err=\s*(\d+)/g)].reduce((s, m) => s + Number(m[1]), 0);
  const writtenMiB = [...text.matchAll(/WRITE: bw=.*?io=([\d.]+)([KMG]i?B)/g)].reduce((s, m) => {
    const n = Number(m[1]);
    return s + (m[2]!.startsWith("K") ? n / 1024 : m[2]!.startsWith("G") ? n * 1024 : n);
  }, 0);
  return {
    rounds: (rounds.match(/ ok$/gm) ?? []).length,
    failed: /FAILED/.test(rounds),
    errors,
    writtenMiB: Math.round(writtenMiB * 10) / 10,
    text,
  };
}
