// csi-sanity's "Node Service" specs against the CSI driver's node service running INSIDE a Linux
// guest with the real kernel iSCSI initiator, dm-multipath and filesystems: NodeStageVolume logs
// in to both portals of a real pair of target processes on the host (CHAP and mutual CHAP from the
// node-stage secret, as the StorageClass passes it), waits for the multipath map by WWID, makes
// the filesystem and mounts it; csi-sanity (static Go binary, shared into the guest) checks every
// answer and the paths it sees in the guest.
//
// The controller csi-sanity creates volumes with is the driver's own ControllerService on a
// loopback TCP port of the host (the guest reaches it as 10.0.2.2), over an in-memory TargetStore
// whose every HASanTarget is the GuestPair's pair (test/support/guest-csi.ts): the volume_context
// (IQN, portals, WWID from the target's uid, CHAP Secret name) is built by the controller's own
// code, and the pair runs with the unit serial that uid gives. Not the local cluster: a pair the
// operator makes on it sits behind Service IPs that the guest reaches too, but the cluster is one
// per machine and its pairs take minutes to come up; this test runs alone in a few minutes.
//
// Skipped specs: none; --ginkgo.focus keeps to the 23 "Node Service" specs (the controller's
// run against operator-made pairs in csi-sanity.test.ts; the one spec csi-sanity reports as
// Pending is a ListVolumes spec it marks so itself), once with Filesystem (mount) volumes and
// once with Block volumes. About 10 minutes: 2 to boot the guest and 2 to start node there under
// TCG, 3 for each run of the specs.
import { strict as assert } from "node:assert";
import { after, before, test } from "node:test";
import { execFileSync } from "node:child_process";
import { GuestPair, pairChap } from "../support/guest-pair.js";
import {
  GuestCsiNode,
  NODE_RELAY_PORT,
  NODE_SOCKET,
  PairTargetStore,
  csiGuestShares,
  nodeStageSecrets,
  pairSerialArgs,
  startPairController,
} from "../support/guest-csi.js";

let gp: GuestPair;
let node: GuestCsiNode;
let controller: Awaited<ReturnType<typeof startPairController>> | undefined;
let sanityDir = "";

before(async () => {
  const out = execFileSync("hack/csi/tools.sh", { encoding: "utf8" }).trim().split("\n");
  sanityDir = out[out.length - 1]!;
  gp = new GuestPair({
    extraArgs: () => pairSerialArgs(),
    guest: {
      shares: [...csiGuestShares(), { hostPath: sanityDir }],
      forwardPorts: [NODE_RELAY_PORT],
    },
  });
  await gp.setup("csi-node");
  const store = new PairTargetStore(gp.pair.iqn, () => gp.portals().map((p) => `${p.host}:${p.port}`));
  controller = await startPairController(store);
  node = new GuestCsiNode(gp.guest, "guest-node");
  await node.start();
});

after(async () => {
  if (node)
    process.stderr.write(`--- node service log ---\n${(await node.log().catch(() => "")).slice(-6000)}\n`);
  await controller?.stop();
  await gp?.cleanup();
});

/** YAML of csi-sanity's --csi.secrets: the node-stage secret a StorageClass names. */
function secretsYaml(): string {
  const lines = ["NodeStageVolumeSecret:"];
  for (const [k, v] of Object.entries(nodeStageSecrets(pairChap))) lines.push(`  "${k}": "${v}"`);
  return lines.join("\n");
}

for (const access of ["mount", "block"] as const) {
  test(`csi-sanity: every Node Service spec passes against the node service in the guest (${access} volumes)`, async (t) => {
    const sanity = `${sanityDir}/csi-sanity`;
    await gp.guest.run(`cat >/tmp/secrets.yaml <<'EOF'\n${secretsYaml()}\nEOF`);
    const r = await gp.guest.exec(
      [
        `${sanity} --csi.endpoint=${NODE_SOCKET} --csi.controllerendpoint=${controller!.endpointFromGuest}`,
        "--csi.secrets=/tmp/secrets.yaml",
        `--csi.testvolumeaccesstype=${access}`,
        // The pair's LUN is 64 MiB; expansion asks for no more than the LUN has.
        "--csi.testvolumesize=33554432 --csi.testvolumeexpandsize=67108864",
        `--csi.stagingdir=/tmp/csi-staging-${access} --csi.mountdir=/tmp/csi-mount-${access}`,
        "'--ginkgo.focus=Node Service' --ginkgo.v --ginkgo.no-color --ginkgo.timeout=30m",
        ">/tmp/sanity.log 2>&1; rc=$?; cat /tmp/sanity.log; exit $rc",
      ].join(" "),
      { timeoutMs: 35 * 60_000 },
    );
    const summary = r.output.split("\n").filter((l) => /^(Ran \d+|PASS|FAIL|SUCCESS|\s*\[FAIL\])/.test(l));
    t.diagnostic(summary.join("\n"));
    if (r.code !== 0) process.stderr.write(`${r.output.slice(-16_000)}\n`);
    assert.equal(r.code, 0, "csi-sanity failed");
    assert.match(r.output, /Ran 23 of \d+ Specs/);
    // Nothing of the volumes is left in the guest: no session, no map, no node record.
    const left = await gp.guest.run(
      "iscsiadm -m session 2>&1; multipath -ll 2>&1; ls /etc/iscsi/nodes 2>&1; findmnt -rn -o TARGET | grep csi- || true",
    );
    assert.doesNotMatch(left, /tcp: \[|dm-\d|iqn\./, left);
  });
}
