import { test } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { nodeHandlers } from "../../../operator/csi/node/service.js";
import { repairSessions } from "../../../operator/csi/node/repair.js";
import { hostCommand } from "../../../operator/csi/node/runner.js";
import { VolumeLocks } from "../../../operator/csi/locks.js";
import { CsiError } from "../../../operator/csi/errors.js";
import { DEVICE, FakeNode, IQN, PORTALS, WWID } from "./fake-node.js";

const STAGING = "/var/lib/kubelet/plugins/kubernetes.io/csi/iscsi.hasan.dev/h/globalmount";
const TARGET = "/var/lib/kubelet/pods/p/volumes/kubernetes.io~csi/pvc-1/mount";
const CHAP = { "node.session.auth.username": "u", "node.session.auth.password": "secret-123456" };
const context = { iqn: IQN, portals: PORTALS.join(","), lun: "0", wwid: WWID, chapSecretName: "pvc-1-chap" };
const mount = (fs_type = "") => ({
  mount: { fs_type, mount_flags: [] },
  access_mode: { mode: "SINGLE_NODE_WRITER" },
});
const block = { block: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } };

function stageRequest(over: Record<string, unknown> = {}) {
  return {
    volume_id: "apps/pvc-1",
    staging_target_path: STAGING,
    volume_capability: mount(),
    secrets: CHAP,
    volume_context: context,
    ...over,
  };
}

async function call(n: FakeNode, method: string, req: unknown) {
  const h = nodeHandlers(n.deps(), "node-1")[method];
  assert.ok(h, method);
  return await h(req, { deadline: undefined, signal: new AbortController().signal });
}

async function codeOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CsiError, String(e));
    return e.code;
  }
  assert.fail("expected an error");
}

test("stage a blank Filesystem volume: records with CHAP and logins on both portals, mkfs ext4, mount", async () => {
  const n = new FakeNode();
  await call(n, "NodeStageVolume", stageRequest());
  const rec = (p: string, name: string, v: string) =>
    `iscsiadm -m node -T ${IQN} -p ${p} -o update -n ${name} -v ${v}`;
  const perPortal = (p: string) => [
    `iscsiadm -m node -T ${IQN} -p ${p} -o new`,
    rec(p, "node.startup", "manual"),
    rec(p, "node.session.initial_login_retry_max", "2"),
    rec(p, "node.session.auth.authmethod", "CHAP"),
    rec(p, "node.session.auth.username", "u"),
    rec(p, "node.session.auth.password", "secret-123456"),
    `iscsiadm -m node -T ${IQN} -p ${p} --login`,
  ];
  assert.deepEqual(n.changes(), [
    ...perPortal(PORTALS[0]!),
    ...perPortal(PORTALS[1]!),
    `mkfs.ext4 -F -m 0 ${DEVICE}`,
    `mount -t ext4 ${DEVICE} ${STAGING}`,
  ]);
  assert.deepEqual(n.staged.get("apps/pvc-1"), {
    volumeId: "apps/pvc-1",
    iqn: IQN,
    portals: PORTALS,
    wwid: WWID,
    accessType: "mount",
    fsType: "ext4",
  });
});

test("stage twice: the second call changes nothing", async () => {
  const n = new FakeNode();
  await call(n, "NodeStageVolume", stageRequest());
  const before = n.changes().length;
  await call(n, "NodeStageVolume", stageRequest());
  assert.equal(n.changes().length, before);
});

test("stage with the volume already holding ext4: no mkfs, mounted as it is", async () => {
  const n = new FakeNode();
  n.filesystem = "ext4";
  await call(n, "NodeStageVolume", stageRequest());
  assert.ok(!n.changes().some((c) => c.startsWith("mkfs")));
  assert.equal(n.mounts.get(STAGING), "ext4");
});

test("stage asking for xfs on a volume holding ext4 is FAILED_PRECONDITION and formats nothing", async () => {
  const n = new FakeNode();
  n.filesystem = "ext4";
  const code = await codeOf(call(n, "NodeStageVolume", stageRequest({ volume_capability: mount("xfs") })));
  assert.equal(code, status.FAILED_PRECONDITION);
  assert.ok(!n.changes().some((c) => c.startsWith("mkfs")));
});

test("stage with fsType xfs from the volume context makes xfs", async () => {
  const n = new FakeNode();
  await call(n, "NodeStageVolume", stageRequest({ volume_context: { ...context, fsType: "xfs" } }));
  assert.ok(n.changes().includes(`mkfs.xfs ${DEVICE}`));
  assert.ok(n.changes().includes(`mount -t xfs ${DEVICE} ${STAGING}`));
});

test("stage without stage secrets sets authmethod None", async () => {
  const n = new FakeNode();
  await call(n, "NodeStageVolume", stageRequest({ secrets: {} }));
  assert.ok(n.changes().some((c) => c.endsWith("-n node.session.auth.authmethod -v None")));
  assert.ok(!n.changes().some((c) => c.includes("auth.username")));
});

test("stage with one portal down logs in to the other and still stages", async () => {
  const n = new FakeNode();
  n.loginFails.set(PORTALS[1]!, 8);
  await call(n, "NodeStageVolume", stageRequest());
  assert.deepEqual([...n.sessions], [PORTALS[0]]);
  assert.equal(n.mounts.get(STAGING), "ext4");
});

test("stage where CHAP is refused on every portal is FAILED_PRECONDITION naming the Secret", async () => {
  const n = new FakeNode();
  for (const p of PORTALS) n.loginFails.set(p, 24);
  await assert.rejects(call(n, "NodeStageVolume", stageRequest()), (e: CsiError) => {
    assert.equal(e.code, status.FAILED_PRECONDITION);
    assert.match(e.message, /CHAP authentication failed.*pvc-1-chap/);
    return true;
  });
});

test("stage where no portal answers is UNAVAILABLE", async () => {
  const n = new FakeNode();
  for (const p of PORTALS) n.loginFails.set(p, 8);
  assert.equal(await codeOf(call(n, "NodeStageVolume", stageRequest())), status.UNAVAILABLE);
});

test("stage when the multipath map never appears is UNAVAILABLE after the wait, nudging multipath", async () => {
  const n = new FakeNode();
  n.deviceDelayPolls = Number.MAX_SAFE_INTEGER;
  assert.equal(await codeOf(call(n, "NodeStageVolume", stageRequest())), status.UNAVAILABLE);
  assert.ok(n.changes().includes(`multipath ${WWID}`));
});

test("stage with a multi-node access mode is INVALID_ARGUMENT and runs nothing", async () => {
  const n = new FakeNode();
  const cap = { mount: { fs_type: "" }, access_mode: { mode: "MULTI_NODE_MULTI_WRITER" } };
  assert.equal(
    await codeOf(call(n, "NodeStageVolume", stageRequest({ volume_capability: cap }))),
    status.INVALID_ARGUMENT,
  );
  assert.deepEqual(n.commands, []);
});

test("stage with a volume context missing the WWID is INVALID_ARGUMENT naming it", async () => {
  const n = new FakeNode();
  const { wwid: _w, ...rest } = context;
  await assert.rejects(call(n, "NodeStageVolume", stageRequest({ volume_context: rest })), (e: CsiError) => {
    assert.equal(e.code, status.INVALID_ARGUMENT);
    assert.match(e.message, /wwid/);
    return true;
  });
});

test("stage a Block volume: logins and the map, no mkfs and no mount", async () => {
  const n = new FakeNode();
  await call(n, "NodeStageVolume", stageRequest({ volume_capability: block }));
  assert.ok(!n.changes().some((c) => c.startsWith("mkfs") || c.startsWith("mount")));
  assert.equal(n.sessions.size, 2);
});

test("publish a Filesystem volume read-only: bind mount of the staging path, then a read-only remount", async () => {
  const n = new FakeNode();
  await call(n, "NodeStageVolume", stageRequest());
  n.commands.length = 0;
  await call(n, "NodePublishVolume", {
    volume_id: "apps/pvc-1",
    staging_target_path: STAGING,
    target_path: TARGET,
    volume_capability: mount(),
    readonly: true,
    volume_context: context,
  });
  assert.deepEqual(n.changes(), [`mount --bind ${STAGING} ${TARGET}`, `mount -o remount,bind,ro ${TARGET}`]);
  await call(n, "NodePublishVolume", {
    volume_id: "apps/pvc-1",
    staging_target_path: STAGING,
    target_path: TARGET,
    volume_capability: mount(),
    readonly: true,
  });
  assert.equal(n.changes().length, 2, "a second publish changes nothing");
});

test("publish a Block volume binds the multipath device onto a file at target_path", async () => {
  const n = new FakeNode();
  await call(n, "NodeStageVolume", stageRequest({ volume_capability: block }));
  n.commands.length = 0;
  const target = "/var/lib/kubelet/plugins/kubernetes.io/csi/volumeDevices/publish/pvc-1/pod";
  await call(n, "NodePublishVolume", {
    volume_id: "apps/pvc-1",
    staging_target_path: STAGING,
    target_path: target,
    volume_capability: block,
  });
  assert.deepEqual(n.changes(), [`mount --bind ${DEVICE} ${target}`]);
  assert.equal(n.paths.get(target), "file");
});

test("publish of a volume not staged here is FAILED_PRECONDITION", async () => {
  const n = new FakeNode();
  const code = await codeOf(
    call(n, "NodePublishVolume", {
      volume_id: "apps/pvc-1",
      staging_target_path: STAGING,
      target_path: TARGET,
      volume_capability: mount(),
    }),
  );
  assert.equal(code, status.FAILED_PRECONDITION);
});

test("unpublish unmounts and removes the target; a second unpublish does nothing", async () => {
  const n = new FakeNode();
  n.paths.set(TARGET, "directory");
  n.mounts.set(TARGET, "ext4");
  await call(n, "NodeUnpublishVolume", { volume_id: "apps/pvc-1", target_path: TARGET });
  assert.deepEqual(n.changes(), [`umount ${TARGET}`]);
  assert.equal(n.paths.has(TARGET), false);
  await call(n, "NodeUnpublishVolume", { volume_id: "apps/pvc-1", target_path: TARGET });
  assert.deepEqual(n.changes(), [`umount ${TARGET}`]);
});

test("unstage: unmount, flush the map, log out and delete the record of each portal; again: nothing", async () => {
  const n = new FakeNode();
  await call(n, "NodeStageVolume", stageRequest());
  n.commands.length = 0;
  await call(n, "NodeUnstageVolume", { volume_id: "apps/pvc-1", staging_target_path: STAGING });
  assert.deepEqual(n.changes(), [
    `umount ${STAGING}`,
    `multipath -f ${WWID}`,
    `iscsiadm -m node -T ${IQN} -p ${PORTALS[0]} --logout`,
    `iscsiadm -m node -T ${IQN} -p ${PORTALS[0]} -o delete`,
    `iscsiadm -m node -T ${IQN} -p ${PORTALS[1]} --logout`,
    `iscsiadm -m node -T ${IQN} -p ${PORTALS[1]} -o delete`,
  ]);
  assert.equal(n.sessions.size + n.records.size + n.staged.size, 0);
  n.commands.length = 0;
  await call(n, "NodeUnstageVolume", { volume_id: "apps/pvc-1", staging_target_path: STAGING });
  assert.deepEqual(n.changes(), []);
});

test("unstage after a stage that failed at login still logs out of what it reached", async () => {
  const n = new FakeNode();
  n.deviceDelayPolls = Number.MAX_SAFE_INTEGER;
  await codeOf(call(n, "NodeStageVolume", stageRequest()));
  await call(n, "NodeUnstageVolume", { volume_id: "apps/pvc-1", staging_target_path: STAGING });
  assert.equal(n.sessions.size + n.records.size, 0);
});

test("expand an ext4 volume: rescan both sessions, resize the map, resize2fs; answers the device size", async () => {
  const n = new FakeNode();
  await call(n, "NodeStageVolume", stageRequest());
  n.paths.set(TARGET, "directory");
  n.mounts.set(TARGET, "ext4");
  n.commands.length = 0;
  n.deviceSize = 2n << 30n;
  const r = await call(n, "NodeExpandVolume", { volume_id: "apps/pvc-1", volume_path: TARGET });
  assert.deepEqual(n.changes(), [
    `iscsiadm -m node -T ${IQN} -p ${PORTALS[0]} -R`,
    `iscsiadm -m node -T ${IQN} -p ${PORTALS[1]} -R`,
    `multipathd resize map ${WWID}`,
    `resize2fs ${DEVICE}`,
    `blockdev --getsize64 ${DEVICE}`,
  ]);
  assert.deepEqual(r, { capacity_bytes: String(2n << 30n) });
});

test("expand an xfs volume grows it through its mount point", async () => {
  const n = new FakeNode();
  await call(n, "NodeStageVolume", stageRequest({ volume_capability: mount("xfs") }));
  n.paths.set(TARGET, "directory");
  n.mounts.set(TARGET, "xfs");
  await call(n, "NodeExpandVolume", { volume_id: "apps/pvc-1", volume_path: TARGET });
  assert.ok(n.changes().includes(`xfs_growfs ${TARGET}`));
});

test("expand of a volume not staged here is NOT_FOUND", async () => {
  const n = new FakeNode();
  assert.equal(
    await codeOf(call(n, "NodeExpandVolume", { volume_id: "apps/pvc-1", volume_path: TARGET })),
    status.NOT_FOUND,
  );
});

test("volume stats of a mounted filesystem: bytes and inodes; of a missing path: NOT_FOUND", async () => {
  const n = new FakeNode();
  n.paths.set(TARGET, "directory");
  const r = await call(n, "NodeGetVolumeStats", { volume_id: "apps/pvc-1", volume_path: TARGET });
  assert.deepEqual(r, {
    usage: [
      { unit: "BYTES", total: "1000", available: "600", used: "400" },
      { unit: "INODES", total: "100", available: "90", used: "10" },
    ],
  });
  assert.equal(
    await codeOf(call(n, "NodeGetVolumeStats", { volume_id: "apps/pvc-1", volume_path: "/nope" })),
    status.NOT_FOUND,
  );
});

test("node info names the node and its topology segment", async () => {
  const r = await call(new FakeNode(), "NodeGetInfo", {});
  assert.deepEqual(r, {
    node_id: "node-1",
    max_volumes_per_node: "0",
    accessible_topology: { segments: { "topology.iscsi.hasan.dev/node": "node-1" } },
  });
});

test("session repair: a portal that was down at staging is logged in to once it answers, with the staging record", async () => {
  const n = new FakeNode();
  n.loginFails.set(PORTALS[1]!, 8);
  await call(n, "NodeStageVolume", stageRequest());
  const deps = n.deps();
  const locks = new VolumeLocks();
  assert.deepEqual(await repairSessions(deps, locks), [], "still down: nothing logged in");
  n.loginFails.delete(PORTALS[1]!);
  const before = n.changes().length;
  assert.deepEqual(await repairSessions(deps, locks), [PORTALS[1]]);
  assert.deepEqual(n.changes().slice(before), [`iscsiadm -m node -T ${IQN} -p ${PORTALS[1]} --login`]);
  assert.deepEqual([...n.sessions].sort(), [...PORTALS].sort());
  assert.deepEqual(await repairSessions(deps, locks), [], "both up: nothing to do");
});

test("session repair: leaves volumes busy with a call and unstaged volumes alone", async () => {
  const n = new FakeNode();
  n.loginFails.set(PORTALS[1]!, 8);
  await call(n, "NodeStageVolume", stageRequest());
  n.loginFails.delete(PORTALS[1]!);
  const locks = new VolumeLocks();
  let inside: string[] | undefined;
  await locks.run("apps/pvc-1", async () => {
    inside = await repairSessions(n.deps(), locks);
  });
  assert.deepEqual(inside, [], "busy: skipped");
  await call(n, "NodeUnstageVolume", { volume_id: "apps/pvc-1", staging_target_path: STAGING });
  const before = n.commands.length;
  assert.deepEqual(await repairSessions(n.deps(), locks), []);
  assert.equal(n.commands.length, before, "no command for an unstaged volume");
});

test("with --host-commands nsenter every node tool runs in the host's mount, network and IPC namespaces", () => {
  assert.deepEqual(hostCommand("nsenter", "iscsiadm", ["-m", "session"]), [
    "nsenter",
    ["--target", "1", "--mount", "--net", "--ipc", "--", "iscsiadm", "-m", "session"],
  ]);
  assert.deepEqual(hostCommand("direct", "iscsiadm", ["-m", "session"]), ["iscsiadm", ["-m", "session"]]);
});
