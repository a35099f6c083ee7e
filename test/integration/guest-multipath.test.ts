/**
 * The Linux kernel initiator (open-iscsi) with dm-multipath, in a Debian guest configured with
 * the node settings shipped in charts/node, against a real pair of target processes on the host:
 * CHAP and mutual CHAP logins to both portals (and refusals of wrong secrets), one multipath
 * device with node a's path group preferred, and fio with verification running clean while the
 * node behind the active path is killed and comes back. `make test-interop` has the rest.
 */
import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import {
  describeView,
  loginScript,
  logoutScript,
  preferredGroup,
  waitForMultipath,
  waitForPreferredInUse,
} from "../support/guest-iscsi.js";
import { GuestPair, pairChap as chap } from "../support/guest-pair.js";

describe("Linux kernel initiator with dm-multipath against a pair", { timeout: 900_000 }, () => {
  const gp = new GuestPair();
  before(() => gp.setup("mp"));
  after(() => gp.cleanup());
  const sessions = async () => (await gp.guest.run("iscsiadm -m session 2>/dev/null | wc -l")).trim();

  it("logs in with a wrong CHAP secret: refused, no session, no device", async () => {
    const r = await gp.guest.exec(
      loginScript(gp.pair.iqn, gp.portals(), { user: chap.user, secret: "not-the-secret" }),
    );
    assert.notEqual(r.code, 0, "login with a wrong secret must fail");
    assert.match(r.output, /authorization failure|Login failed to authenticate/i);
    assert.equal(await sessions(), "0");
    await gp.guest.run(logoutScript(gp.pair.iqn));
  });

  it("logs in with mutual CHAP expecting another target secret: the initiator refuses the target", async () => {
    const r = await gp.guest.exec(
      loginScript(gp.pair.iqn, gp.portals(), { ...chap, mutualSecret: "not-the-target-secret" }),
    );
    assert.notEqual(r.code, 0, "the initiator must not accept a target that cannot prove the secret");
    assert.equal(await sessions(), "0");
    await gp.guest.run(logoutScript(gp.pair.iqn));
  });

  for (const mode of ["CHAP", "mutual CHAP"] as const) {
    it(`logs in to both portals with ${mode}: one device, two paths, one WWID, node a's group preferred`, async () => {
      const { guest, pair } = gp;
      const credentials = mode === "CHAP" ? { user: chap.user, secret: chap.secret } : chap;
      await guest.run(loginScript(pair.iqn, gp.portals(), credentials));
      try {
        const v = await waitForMultipath(guest, { paths: 2, preferredPortal: gp.portal("a") });
        const m = v.map;
        assert.equal(m.vendorProduct, "HASAN,HA iSCSI LUN");
        assert.equal(m.hwhandler, "1 alua");
        assert.match(m.features, /queue_if_no_path/, "I/O queues while no path is up");
        assert.match(m.wwid, /^36[0-9a-f]{31}$/, "an NAA 6 WWID");
        assert.equal(m.groups.length, 2, describeView([v]));
        assert.deepEqual(
          v.groupPortals.flat().sort(),
          [gp.portal("a"), gp.portal("b")].sort(),
          "one path per portal",
        );
        // The same WWID through both paths, as udev reads it from VPD page 0x83.
        const wwids = await guest.run(
          `for d in $(ls /sys/block/${m.dm}/slaves); do /lib/udev/scsi_id --whitelisted --device=/dev/$d; done | sort -u`,
        );
        assert.equal(wwids.trim(), m.wwid);
        // I/O goes through node a's group (multipath switches to it within a checker tick or two
        // when its path joined the map second), and a write through it lands on both nodes.
        await waitForPreferredInUse(guest, { paths: 2, portal: gp.portal("a") });
        await guest.run(
          `dd if=/dev/urandom of=/tmp/blk bs=64k count=1 status=none && dd if=/tmp/blk of=/dev/mapper/${m.wwid} bs=64k oflag=direct,sync status=none`,
        );
        const want = (await guest.run("sha256sum </tmp/blk | cut -d' ' -f1")).trim();
        const used = await waitForMultipath(guest, { paths: 2, preferredPortal: gp.portal("a") });
        assert.equal(preferredGroup(used)?.group.status, "active", describeView([used]));
        for (const n of ["a", "b"] as const) {
          const got = (await readFile(pair.lunPath(n))).subarray(0, 65536);
          assert.equal(createHash("sha256").update(got).digest("hex"), want, `node ${n} holds the write`);
        }
      } finally {
        await guest.run(logoutScript(pair.iqn));
      }
    });
  }

  it("fio with verification runs clean while node a (the active path) is killed and restarted", async (t) => {
    await gp.failover(t, {
      fault: async () => {
        t.diagnostic("kill -9 node a");
        await gp.pair.kill("a");
        await gp.waitServingAlone("b");
      },
      heal: async () => {
        t.diagnostic("restart node a");
        await gp.pair.start("a");
      },
    });
  });
});
