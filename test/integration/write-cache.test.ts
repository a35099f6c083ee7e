import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ScsiClient, cachingPageWce, cdbs, type ScsiResult } from "../support/scsi-client.js";
import { ScsiSession } from "../support/scsi-session.js";
import { startTargetPair } from "../support/target-pair.js";
import { startTarget, type TargetHandle } from "../support/target-process.js";
import { metadataFiles } from "../../target/store/metadata-files.js";

/**
 * The caching page's WCE is one setting of the logical unit: the same through both portals of
 * a pair, changed through either, and kept across restarts.
 */

const initiator = (name: string) => `iqn.2026-11.dev.hasan:wce-${name}`;

async function client(node: TargetHandle, iqn: string, name: string): Promise<ScsiClient> {
  const c = await ScsiClient.open({ port: node.port, iqn, initiator: initiator(name) });
  // Clear the power-on unit attention, as initiators do after login.
  assert.equal((await c.commandClearingUnitAttention(cdbs.testUnitReady())).status, 0);
  return c;
}

function session(node: TargetHandle, iqn: string, name: string): ScsiSession {
  return new ScsiSession({ port: () => node.port, iqn, initiator: initiator(name) });
}

const outcome = (r: ScsiResult): string =>
  r.status === 0
    ? "GOOD"
    : `status ${r.status.toString(16)} sense ${r.senseKey}/${r.asc?.toString(16)}/${r.ascq?.toString(16)}`;
const MODE_PARAMETERS_CHANGED = "status 2 sense 6/2a/1";

async function wce(c: ScsiClient, pc = 0): Promise<boolean> {
  const r = await c.command(cdbs.modeSense10(0x08, pc), { allocation: 255 });
  assert.equal(outcome(r), "GOOD", "MODE SENSE(10)");
  return cachingPageWce(r.data);
}

async function setWce(c: ScsiClient, enabled: boolean): Promise<void> {
  const params = cdbs.cachingPageParams(enabled);
  const r = await c.command(cdbs.modeSelect10(params.length), { dataOut: params });
  assert.equal(outcome(r), "GOOD", `MODE SELECT(10) WCE=${Number(enabled)}`);
}

test(
  "pair: MODE SELECT WCE=0 through portal a shows through b with 2Ah/01h once, survives a restart of both, WCE=1 through b shows through a",
  { timeout: 300_000 },
  async (t) => {
    const pair = await startTargetPair({ size: "64Mi" });
    t.after(() => pair.stop());

    await t.test(
      "MODE SELECT WCE=0 through a: b reports WCE=0, every other nexus hears 2Ah/01h once",
      async () => {
        const setter = await client(pair.a, pair.iqn, "setter-a");
        const otherA = await client(pair.a, pair.iqn, "other-a");
        const watcherB = await client(pair.b, pair.iqn, "watcher-b");
        try {
          assert.equal(await wce(setter), true, "WCE=1 by default through a");
          assert.equal(await wce(watcherB), true, "WCE=1 by default through b");
          await setWce(setter, false);
          assert.equal(outcome(await watcherB.command(cdbs.testUnitReady())), MODE_PARAMETERS_CHANGED, "b");
          assert.equal(outcome(await watcherB.command(cdbs.testUnitReady())), "GOOD", "b hears it once");
          assert.equal(
            outcome(await otherA.command(cdbs.testUnitReady())),
            MODE_PARAMETERS_CHANGED,
            "a, other",
          );
          assert.equal(outcome(await otherA.command(cdbs.testUnitReady())), "GOOD", "once");
          assert.equal(
            outcome(await setter.command(cdbs.testUnitReady())),
            "GOOD",
            "not the nexus that set it",
          );
          assert.equal(await wce(watcherB), false, "MODE SENSE through b: WCE=0");
          assert.equal(await wce(watcherB, 3), false, "and it is the saved value");
          assert.equal(await wce(otherA), false);
          // Writes through b are written through now; they still read back through a.
          const data = Buffer.alloc(4096, 0x5c);
          const w = await watcherB.command(cdbs.write10(64, 8), { dataOut: data });
          assert.equal(outcome(w), "GOOD", "a write through b with WCE=0");
          const r = await setter.command(Buffer.from([0x28, 0, 0, 0, 0, 64, 0, 0, 8, 0]), {
            allocation: 4096,
          });
          assert.ok(r.data.equals(data), "reads back through a");
        } finally {
          setter.close();
          otherA.close();
          watcherB.close();
        }
      },
    );

    await t.test("both nodes restarted: WCE=0 through both portals", async () => {
      await Promise.all([pair.a.restart(), pair.b.restart()]);
      await pair.waitWorking();
      for (const [name, node] of [
        ["a", pair.a],
        ["b", pair.b],
      ] as const) {
        const s = session(node, pair.iqn, `after-restart-${name}`);
        try {
          assert.equal(await s.writeCacheEnabled(), false, `WCE=0 through ${name} after the restart`);
        } finally {
          s.close();
        }
      }
      for (const node of [pair.a, pair.b]) {
        const state = JSON.parse(readFileSync(metadataFiles(node.dataFile).unitState, "utf8"));
        assert.equal(
          (state as Record<string, unknown>)["writeCacheEnabled"],
          false,
          "persisted on both nodes",
        );
      }
    });

    await t.test("MODE SELECT WCE=1 through b: a reports WCE=1 and its nexus hears 2Ah/01h", async () => {
      const watcherA = await client(pair.a, pair.iqn, "watcher-a");
      const setter = session(pair.b, pair.iqn, "setter-b");
      try {
        await setter.setWriteCache(true);
        assert.equal(outcome(await watcherA.command(cdbs.testUnitReady())), MODE_PARAMETERS_CHANGED);
        assert.equal(await wce(watcherA), true, "MODE SENSE through a: WCE=1");
        assert.equal(await setter.writeCacheEnabled(), true);
      } finally {
        watcherA.close();
        setter.close();
      }
    });
  },
);

test(
  "standalone: MODE SELECT WCE=0 survives a kill -9 and restart of the target",
  { timeout: 120_000 },
  async () => {
    const target = await startTarget({ size: "16Mi" });
    try {
      let s = session(target, target.iqn, "standalone");
      try {
        assert.equal(await s.writeCacheEnabled(), true, "WCE=1 on a new unit");
        await s.setWriteCache(false);
        assert.equal(await s.writeCacheEnabled(), false);
      } finally {
        s.close();
      }
      const persisted = JSON.parse(readFileSync(`${target.dataFile}.pr.json`, "utf8")) as Record<
        string,
        unknown
      >;
      assert.equal(persisted["writeCacheEnabled"], false, "kept next to the LUN file");
      await target.stop("SIGKILL");
      await target.restart();
      s = session(target, target.iqn, "standalone-after-restart");
      try {
        assert.equal(await s.writeCacheEnabled(), false, "WCE=0 after the restart");
        assert.equal(await s.writeCacheEnabled(3), false, "saved value WCE=0");
        assert.equal(await s.writeCacheEnabled(2), true, "default value WCE=1");
      } finally {
        s.close();
      }
    } finally {
      await target.stop();
    }
  },
);
