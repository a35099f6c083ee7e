/**
 * The CSI driver's node service inside a Linux guest (real kernel initiator, dm-multipath, ext4)
 * serving a volume of a real pair of target processes, as kubelet drives it: NodeStageVolume and
 * NodePublishVolume of a Filesystem volume, then of a Block volume; each time a workload writes
 * and verifies while the pair's node that orders writes is killed and comes back; then
 * NodeUnpublishVolume and NodeUnstageVolume leave no iSCSI session, no multipath map, no node
 * record, no mount and no staging record behind.
 *
 * The volume is created by the driver's own ControllerService over an in-memory TargetStore whose
 * target is the GuestPair's pair (test/support/guest-csi.ts), so the volume_context is the one the
 * controller writes for an operator-made pair.
 * The Filesystem volume also grows: ControllerExpandVolume, the pair's LUN grown live (POST
 * /capacity, as the operator asks; no restart, both paths stay up), NodeExpandVolume (rescan,
 * multipathd resize, resize2fs online), and 32 MiB written into the new space.
 */
import { strict as assert } from "node:assert";
import { after, before, describe, it, type TestContext } from "node:test";
import { pino } from "pino";
import { ControllerService } from "../../operator/csi/controller/service.js";
import { GuestPair, pairChap, sleep } from "../support/guest-pair.js";
import { describeView, fioLoopScript, fioStop, waitForMultipath } from "../support/guest-iscsi.js";
import {
  GuestCsiNode,
  NODE_RELAY_PORT,
  NODE_STATE_DIR,
  PairTargetStore,
  csiGuestShares,
  nodeStageSecrets,
  pairSerialArgs,
} from "../support/guest-csi.js";
import { MOUNT, stopWorkload, workloadFiles, workloadScript } from "../support/guest-volume.js";
import type { Node } from "../support/pair-fixture.js";

const KUBELET = "/var/lib/kubelet";

interface Volume {
  volume_id: string;
  volume_context: Record<string, string>;
}

/** A single-node ext4 Filesystem volume, as kubelet asks for one. */
const EXT4 = {
  mount: { fs_type: "ext4", mount_flags: [] },
  access_mode: { mode: "SINGLE_NODE_WRITER" },
};

describe(
  "the node service in a guest: stage, publish, a node failure under load, clean teardown",
  {
    timeout: 3_600_000,
  },
  () => {
    let gp: GuestPair;
    let node: GuestCsiNode;
    let controller: ControllerService;

    before(async () => {
      gp = new GuestPair({
        extraArgs: () => pairSerialArgs(),
        guest: { shares: csiGuestShares(), forwardPorts: [NODE_RELAY_PORT] },
      });
      await gp.setup("csi-failover");
      const store = new PairTargetStore(gp.pair.iqn, () => gp.portals().map((p) => `${p.host}:${p.port}`));
      controller = new ControllerService(
        store,
        { defaultNamespace: "apps", createWaitMs: 10_000, pollMs: 100 },
        pino({ level: "silent" }),
      );
      node = new GuestCsiNode(gp.guest, "guest-node");
      await node.start();
    });

    after(async () => {
      if (node)
        process.stderr.write(
          `--- node service log ---\n${(await node.log().catch(() => "")).slice(-8000)}\n`,
        );
      await gp?.cleanup();
    });

    async function createVolume(name: string, capability: object): Promise<Volume> {
      const r = (await controller.createVolume(
        {
          name,
          capacity_range: { required_bytes: String(32 << 20), limit_bytes: "0" },
          volume_capabilities: [capability],
          parameters: {},
          secrets: {},
          mutable_parameters: {},
        },
        { deadline: undefined, signal: new AbortController().signal },
      )) as { volume: Volume };
      return r.volume;
    }

    /** NodeStageVolume with the node-stage Secret a StorageClass hands over (the pair's CHAP). */
    async function stage(v: Volume, capability: object, staging: string): Promise<void> {
      await node.ok("NodeStageVolume", {
        volume_id: v.volume_id,
        staging_target_path: staging,
        volume_capability: capability,
        volume_context: v.volume_context,
        secrets: nodeStageSecrets(pairChap),
      });
    }

    async function publish(v: Volume, capability: object, staging: string, target: string): Promise<void> {
      await node.ok("NodePublishVolume", {
        volume_id: v.volume_id,
        staging_target_path: staging,
        target_path: target,
        volume_capability: capability,
        volume_context: v.volume_context,
        readonly: false,
      });
    }

    /** Kills the node ordering writes, waits for the guest to fail its path, brings it back in sync. */
    async function failAndRestore(t: TestContext): Promise<Node> {
      const victim = await gp.optimizedNode();
      const other: Node = victim === "a" ? "b" : "a";
      await gp.pair.kill(victim);
      await gp.waitServingAlone(other, 60_000);
      await gp.waitPathFailed(victim, 90_000);
      t.diagnostic(`node ${victim} killed; node ${other} serving alone; the guest failed the path`);
      await sleep(10_000);
      await gp.pair.start(victim);
      await gp.pair.waitInSync(180_000);
      const back = await waitForMultipath(gp.guest, { paths: 2, timeoutMs: 120_000 });
      t.diagnostic(`node ${victim} back and in sync: ${describeView([back])}`);
      return victim;
    }

    /**
     * Nothing of the volume left in the guest: no session, map, node record or staging record;
     * the target path (NodePublishVolume made it) gone; the staging directory, which kubelet makes
     * and removes (CSI: the CO owns it), unmounted and empty.
     */
    async function assertNothingLeft(v: Volume, target: string, staging: string): Promise<void> {
      const sessions = await gp.guest.exec("iscsiadm -m session");
      assert.doesNotMatch(sessions.output, /tcp: \[/, `no iSCSI session: ${sessions.output}`);
      const maps = await gp.guest.run("multipath -ll 2>/dev/null; dmsetup ls --target multipath 2>/dev/null");
      assert.doesNotMatch(maps, /dm-\d|\(\d+:\d+\)/, `no multipath map: ${maps}`);
      assert.doesNotMatch(maps, new RegExp(v.volume_context.wwid!), "no map of the volume's WWID");
      const records = await gp.guest.exec(`iscsiadm -m node -T ${v.volume_context.iqn}`);
      assert.equal(records.code, 21, `no node record (iscsiadm exit 21): ${records.output}`);
      const mounts = (await gp.guest.run("findmnt -rn -o TARGET")).split("\n");
      for (const p of [target, staging]) assert.ok(!mounts.includes(p), `${p} is not mounted`);
      const left = await gp.guest.run(
        `[ -e ${target} ] && echo "${target} exists"; ls -A ${staging} 2>/dev/null; ls ${NODE_STATE_DIR}; true`,
      );
      assert.equal(left.trim(), "", `target path, staging contents and staging records removed: ${left}`);
    }

    it("Filesystem (ext4): files written with checksums through a node failure, then a clean teardown", async (t) => {
      const capability = EXT4;
      const v = await createVolume("pvc-fs", capability);
      const staging = `${KUBELET}/plugins/kubernetes.io/csi/iscsi.hasan.dev/fs/globalmount`;
      const target = MOUNT; // the workload's directory (guest-volume.ts)
      await stage(v, capability, staging);
      const view = await waitForMultipath(gp.guest, { paths: 2 });
      assert.equal(view.map.wwid, v.volume_context.wwid, "the map is named by the volume's WWID");
      assert.match(await gp.guest.run(`findmnt -n -o FSTYPE --mountpoint ${staging}`), /ext4/);
      // Staging again (kubelet retries) finds it done.
      await stage(v, capability, staging);
      await publish(v, capability, staging, target);
      await gp.guest.run(workloadScript());
      await sleep(10_000);
      const before = await workloadFiles(gp.guest);
      await failAndRestore(t);
      const during = await workloadFiles(gp.guest);
      await sleep(5_000);
      const wl = await stopWorkload(gp.guest);
      t.diagnostic(`workload: ${wl.files} files (${before} before the failure, ${during} by the resync)`);
      assert.ok(wl.files > before, "the workload went on across the failure");
      const sums = await gp.guest.run("sha256sum -c --quiet /tmp/wl.sums && echo all checksums good", {
        timeoutMs: 600_000,
      });
      assert.match(sums, /all checksums good/);
      // Growth: the controller records the larger capacity, the pair's LUN grows live (as the
      // operator asks its agent: no restart, both paths stay up), and NodeExpandVolume makes the
      // guest see the new size and grows ext4 online.
      const grown = 96 << 20;
      const range = { required_bytes: String(grown), limit_bytes: "0" };
      const expanded = (await controller.expandVolume({
        volume_id: v.volume_id,
        capacity_range: range,
        volume_capability: capability,
      })) as { node_expansion_required: boolean };
      assert.equal(expanded.node_expansion_required, true);
      const dfSize = async () =>
        Number((await gp.guest.run(`df -B1 --output=size ${target} | tail -1`)).trim());
      const sizeBefore = await dfSize();
      await gp.growLive(grown);
      const nodeExpanded = await node.ok("NodeExpandVolume", {
        volume_id: v.volume_id,
        volume_path: target,
        staging_target_path: staging,
        capacity_range: range,
        volume_capability: capability,
      });
      assert.equal(nodeExpanded.capacity_bytes, String(grown), "the map has the LUN's new size");
      const sizeAfter = await dfSize();
      t.diagnostic(`ext4 grew from ${sizeBefore} to ${sizeAfter} bytes`);
      assert.ok(
        sizeAfter >= sizeBefore + (24 << 20),
        `ext4 grew by the LUN's growth: ${sizeBefore} -> ${sizeAfter}`,
      );
      assert.deepEqual(
        await node.ok("NodeExpandVolume", {
          volume_id: v.volume_id,
          volume_path: target,
          capacity_range: range,
        }),
        nodeExpanded,
        "expanding again finds nothing left to grow",
      );
      await gp.guest.run(
        `head -c ${32 << 20} /dev/urandom >/tmp/big && cp /tmp/big ${target}/big && sync && cmp /tmp/big ${target}/big && rm ${target}/big`,
        { timeoutMs: 600_000 },
      );
      assert.match(
        await gp.guest.run("sha256sum -c --quiet /tmp/wl.sums && echo all checksums good", {
          timeoutMs: 600_000,
        }),
        /all checksums good/,
      );
      const stats = await node.ok("NodeGetVolumeStats", { volume_id: v.volume_id, volume_path: target });
      t.diagnostic(`NodeGetVolumeStats: ${JSON.stringify(stats)}`);
      await node.ok("NodeUnpublishVolume", { volume_id: v.volume_id, target_path: target });
      await node.ok("NodeUnstageVolume", { volume_id: v.volume_id, staging_target_path: staging });
      await assertNothingLeft(v, target, staging);
      const kernel = await gp.guest.run(
        "dmesg | grep -E 'I/O error, dev dm-|Buffer I/O error on dev dm-|EXT4-fs error' || true",
      );
      assert.equal(kernel.trim(), "", "no I/O or filesystem error on the map");
    });

    it("Block: fio with verification on the published device through a node failure, then a clean teardown", async (t) => {
      const capability = { block: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } };
      const v = await createVolume("pvc-block", capability);
      const staging = `${KUBELET}/plugins/kubernetes.io/csi/volumeDevices/staging/pvc-block`;
      const target = `${KUBELET}/plugins/kubernetes.io/csi/volumeDevices/publish/pvc-block/pod-1`;
      await stage(v, capability, staging);
      await publish(v, capability, staging, target);
      assert.match(await gp.guest.run(`stat -L -c %F ${target}`), /block special file/);
      await waitForMultipath(gp.guest, { paths: 2 });
      await gp.guest.run(fioLoopScript(target));
      await sleep(8_000);
      await failAndRestore(t);
      await sleep(5_000);
      const fio = await fioStop(gp.guest);
      t.diagnostic(`fio: ${fio.rounds} verified rounds, ${fio.writtenMiB} MiB, ${fio.errors} errors`);
      assert.equal(fio.failed, false, fio.text);
      assert.equal(fio.errors, 0, fio.text);
      assert.ok(fio.rounds >= 2, `fio ran across the failure: ${fio.text}`);
      const stats = await node.ok("NodeGetVolumeStats", { volume_id: v.volume_id, volume_path: target });
      assert.deepEqual(
        (stats as { usage: { total: string }[] }).usage.map((u) => u.total),
        [String(gp.sizeBytes)],
        "a block volume's stats are the LUN's size",
      );
      await node.ok("NodeUnpublishVolume", { volume_id: v.volume_id, target_path: target });
      await node.ok("NodeUnstageVolume", { volume_id: v.volume_id, staging_target_path: staging });
      await assertNothingLeft(v, target, staging);
      await gp.pair.waitInSync(180_000);
      assert.equal(
        await gp.pair.fileHash("a"),
        await gp.pair.fileHash("b"),
        "the LUN files are byte-identical",
      );
    });

    it("staged while a node of the pair is down: served by one path at once, the second joins once the node is back", async (t) => {
      const capability = EXT4;
      const v = await createVolume("pvc-degraded", capability);
      const staging = `${KUBELET}/plugins/kubernetes.io/csi/iscsi.hasan.dev/degraded/globalmount`;
      const target = `${KUBELET}/pods/pod-2/volumes/kubernetes.io~csi/pvc-degraded/mount`;
      const optimized = await gp.optimizedNode();
      const down: Node = optimized === "a" ? "b" : "a";
      await gp.pair.kill(down);
      await gp.waitServingAlone(optimized, 60_000);
      const started = Date.now();
      await stage(v, capability, staging);
      const stageMs = Date.now() - started;
      t.diagnostic(`NodeStageVolume with a portal down: ${stageMs} ms`);
      // kubelet gives up on a NodeStageVolume after 2 minutes (and calls again, from the start).
      assert.ok(
        stageMs < 100_000,
        `staging with a node down answers well within kubelet's 2 minutes: ${stageMs} ms`,
      );
      const one = await waitForMultipath(gp.guest, { paths: 1 });
      t.diagnostic(`staged with node ${down} down: ${describeView([one])}`);
      assert.equal(one.map.wwid, v.volume_context.wwid);
      await publish(v, capability, staging, target);
      await gp.guest.run(
        `head -c 1M /dev/urandom >${target}/f && sync && sha256sum ${target}/f >/tmp/deg.sums`,
      );
      await gp.pair.start(down);
      await gp.pair.waitInSync(180_000);
      const both = await waitForMultipath(gp.guest, { paths: 2, timeoutMs: 180_000 });
      t.diagnostic(`node ${down} back: ${describeView([both])}`);
      assert.match(await gp.guest.run("sha256sum -c /tmp/deg.sums"), /OK/);
      await node.ok("NodeUnpublishVolume", { volume_id: v.volume_id, target_path: target });
      await node.ok("NodeUnstageVolume", { volume_id: v.volume_id, staging_target_path: staging });
      await assertNothingLeft(v, target, staging);
    });
  },
);
