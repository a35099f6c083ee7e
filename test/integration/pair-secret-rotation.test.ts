/**
 * Peer secret rotation on the real product: two `dist/target/main.js serve` processes, each
 * reading its own --peer-secret-file laid out as a Secret volume (the kubelet's `..data` symlink
 * swap), with writes through iSCSI sessions to both portals. A rotation must not disturb the
 * pair; a wrong secret must show in the nodes' status.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ReplicationStatus } from "../../target/agent/status-schema.js";
import { IscsiPairHarness } from "../support/iscsi-pair-harness.js";
import { writeSecretVolume } from "../support/kubelet-secret.js";
import type { Node } from "../support/pair-fixture.js";
import { waitFor } from "../support/processes.js";

const BLOCK = 4096;
const h = new IscsiPairHarness({
  sizeBytes: 16 * 1024 * 1024,
  sessionsPerNode: 2,
  peerSecretFile: (n, dir) => join(dir, `${n}-peer`, "secret"),
});
const volume = (n: Node) => join(h.dir, `${n}-peer`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function logMatches(n: Node, pattern: RegExp, what: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(
    `${what} in node ${n}'s log`,
    async () => pattern.test(await readFile(h.logPath(n), "utf8")),
    timeoutMs,
    50,
  );
}

async function countIn(n: Node, pattern: RegExp): Promise<number> {
  return (await readFile(h.logPath(n), "utf8")).split("\n").filter((l) => pattern.test(l)).length;
}

/** Rewrites node n's secret volume and waits until the node logs that it noticed. */
async function rotate(n: Node, value: string): Promise<void> {
  const before = await countIn(n, /peer secret changed/);
  await writeSecretVolume(volume(n), { secret: `${value}\n` });
  await waitFor(
    `node ${n} noticed the new secret`,
    async () => (await countIn(n, /peer secret changed/)) > before,
    10_000,
    50,
  );
}

/** Writes to both portals, one at a time per session, until stopped. */
function startWrites() {
  let stopped = false;
  const acked: number[] = [];
  const failed: string[] = [];
  const blocks = h.sizeBytes / BLOCK;
  const loops = (["a", "b"] as const).flatMap((n) =>
    [0, 1].map(async () => {
      while (!stopped) {
        const block = Math.floor(Math.random() * blocks);
        try {
          await h.write(n, block * BLOCK, randomBytes(BLOCK));
          acked.push(block);
        } catch (e) {
          failed.push(`${n}: ${(e as Error).message}`);
        }
      }
    }),
  );
  return {
    acked,
    failed,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/** Samples both nodes' state every 100 ms and keeps anything that is not Working. */
function watchStates() {
  let stopped = false;
  const notWorking: string[] = [];
  const loop = (async () => {
    while (!stopped) {
      for (const n of ["a", "b"] as const) {
        const s = await h
          .status(n)
          .catch((e: Error) => ({ state: `unreadable (${e.message})`, message: "" }));
        if (s.state !== "Working") notWorking.push(`${n}: ${s.state} (${s.message})`);
      }
      await sleep(100);
    }
  })();
  return {
    notWorking,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

describe("peer secret rotation with real target processes", { timeout: 300_000 }, () => {
  before(async () => {
    await h.setup();
    for (const n of ["a", "b"] as const) await writeSecretVolume(volume(n), { secret: "pair-secret-v1\n" });
    await h.start("b");
    await h.start("a");
    await h.waitInSync(60_000);
  });
  after(() => h.cleanup());

  it("rotating node a's then node b's secret file under writes keeps the pair Working, with no failed write", async () => {
    const writes = startWrites();
    const states = watchStates();
    await sleep(500);
    await rotate("a", "pair-secret-v2");
    await sleep(1000);
    await rotate("b", "pair-secret-v2");
    await sleep(1000);
    await states.stop();
    await writes.stop();
    assert.deepEqual(writes.failed, [], "no write fails during the rotation");
    assert.ok(writes.acked.length > 50, `writes went on (${writes.acked.length} acknowledged)`);
    assert.deepEqual(states.notWorking, [], "both nodes stay Working");
    for (const n of ["a", "b"] as const) assert.equal((await h.status(n)).peer.authError ?? null, null);

    // The established link was never re-authenticated; the next connection proves the new secret,
    // and both nodes then stop accepting the old one.
    h.proxy.cut();
    h.proxy.restore();
    const t0 = Date.now();
    await h.waitInSync(30_000);
    const secs = (Date.now() - t0) / 1000;
    assert.ok(secs < 15, `reconnected in ${secs.toFixed(1)} s`);
    for (const n of ["a", "b"] as const) await logMatches(n, /rotation complete/, "previous secret dropped");
  });

  it("a link that drops mid-rotation (node a on the new secret, node b still on the old) reconnects within seconds", async () => {
    await rotate("a", "pair-secret-v3");
    const before = await countIn("a", /"peer authenticated"/);
    h.proxy.cut();
    h.proxy.restore();
    const t0 = Date.now();
    await waitFor(
      "a new authenticated link",
      async () => (await countIn("a", /"peer authenticated"/)) > before,
      15_000,
      50,
    );
    await h.waitInSync(30_000);
    const secs = (Date.now() - t0) / 1000;
    assert.ok(secs < 15, `Working again in ${secs.toFixed(1)} s`);
    assert.equal((await h.status("a")).peer.authError ?? null, null);
    await rotate("b", "pair-secret-v3");
  });

  it("a wrong secret on node b shows peer.authError in both nodes' status within seconds; fixing the file heals the pair", async () => {
    await h.stop("b");
    await writeSecretVolume(volume("b"), { secret: "not-the-pair-secret\n" });
    await h.start("b");
    const t0 = Date.now();
    const seen = {} as Record<Node, ReplicationStatus>;
    for (const n of ["a", "b"] as const) {
      seen[n] = await waitFor(
        `peer.authError on node ${n}`,
        async () => {
          const s = await h.status(n);
          return s.peer.authError?.kind === "secret" ? s : undefined;
        },
        10_000,
        100,
      );
    }
    const secs = (Date.now() - t0) / 1000;
    assert.ok(secs < 10, `reported in ${secs.toFixed(1)} s`);
    for (const n of ["a", "b"] as const) {
      const e = seen[n].peer.authError!;
      assert.match(e.reason, /peer failed authentication \(wrong secret\).*--peer-secret-file .*secret/);
      assert.ok(e.count >= 1 && Date.parse(e.since) <= Date.parse(e.at));
      assert.match(seen[n].message, /peer link refused since .*wrong secret/);
      assert.equal(seen[n].peer.connected, false);
    }
    // The kubelet brings the right value: node b follows the file and the pair forms again.
    await writeSecretVolume(volume("b"), { secret: "pair-secret-v3\n" });
    await h.waitInSync(30_000);
    for (const n of ["a", "b"] as const) assert.equal((await h.status(n)).peer.authError ?? null, null);
  });
});
