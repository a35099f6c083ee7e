import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import net from "node:net";
import { IoError, PairHarness } from "../support/pair-harness.js";
import { RESYNC_IN_FLIGHT } from "../../target/replication/resync.js";

const MiB = 1024 * 1024;
let h: PairHarness;

async function startInSync(o: ConstructorParameters<typeof PairHarness>[0] = {}): Promise<PairHarness> {
  h = new PairHarness(o);
  await h.setup();
  await Promise.all([h.start("a"), h.start("b")]);
  await h.waitInSync();
  return h;
}

async function refused(p: Promise<unknown>): Promise<IoError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof IoError) return e;
    throw e;
  }
  assert.fail("expected the I/O to be refused");
}

describe("pair: failover, incremental resync, split brain", { timeout: 600_000 }, () => {
  afterEach(() => h?.cleanup());

  it("serves alone when the partner dies and copies back only the changed regions", async () => {
    const regionSize = 64 * 1024;
    await startInSync({ sizeBytes: 64 * MiB, regionSize });
    await h.write("a", 0, randomBytes(MiB)); // mirrored while Working
    await h.kill("b");
    await h.waitFor("a serving alone", async () => {
      const s = await h.status("a");
      return s.state === "Failed" && s.serving;
    });
    // 3 MiB in 4 KiB..64 KiB writes at scattered places.
    const written: Array<[number, Buffer]> = [];
    let bytes = 0;
    for (let i = 0; bytes < 3 * MiB; i++) {
      const len = 4096 * (1 + (i % 16));
      const off = ((i * 7919) % 900) * 65536 + 8192;
      const data = randomBytes(len);
      await h.write("a", off, data);
      written.push([off, data]);
      bytes += len;
    }
    const sa = await h.status("a");
    const dirtyRegions = sa.outOfSyncBytes / regionSize;
    assert.ok(dirtyRegions > 0);
    await h.start("b");
    await h.waitInSync();
    const [a, b] = [await h.status("a"), await h.status("b")];
    const bound = 1.1 * bytes + dirtyRegions * regionSize;
    assert.ok(
      a.stats.resyncedBytes > 0 && a.stats.resyncedBytes <= bound,
      `resynced ${a.stats.resyncedBytes} bytes for ${bytes} written (bound ${bound})`,
    );
    assert.equal(b.stats.resyncedBytes, a.stats.resyncedBytes, "the receiver counted what the sender sent");
    for (const [off, data] of written.slice(-50))
      assert.deepEqual(await h.read("b", off, data.length), await h.read("a", off, data.length));
    await Promise.all([h.flush("a"), h.flush("b")]);
    assert.equal(await h.fileHash("a"), await h.fileHash("b"));
  });

  it("after a link cut exactly one node serves, and the pair heals when the link returns", async () => {
    await startInSync();
    h.proxy.cut();
    await h.waitFor("both nodes decided", async () => {
      const [a, b] = [await h.status("a"), await h.status("b")];
      return (
        a.state === "Failed" &&
        b.state === "Failed" &&
        a.message.includes("serving") !== undefined &&
        !a.message.includes("asking") &&
        !b.message.includes("asking")
      );
    });
    const [a, b] = [await h.status("a"), await h.status("b")];
    assert.equal(
      [a.serving, b.serving].filter(Boolean).length,
      1,
      `one node serves: a=${a.message} b=${b.message}`,
    );
    const winner = a.serving ? "a" : "b";
    const loser = a.serving ? "b" : "a";
    const data = randomBytes(65536);
    await h.write(winner, 2 * MiB, data);
    const e = await refused(h.write(loser, 2 * MiB, randomBytes(4096)));
    assert.equal(e.status, 503, "the node without the witness refuses writes");
    await refused(h.read(loser, 2 * MiB, 4096));
    h.proxy.restore();
    await h.waitInSync();
    assert.deepEqual(await h.read(loser, 2 * MiB, 65536), data);
    await Promise.all([h.flush("a"), h.flush("b")]);
    assert.equal(await h.fileHash("a"), await h.fileHash("b"));
  });

  it("a node that lost the witness cannot later serve stale data alone", async () => {
    await startInSync();
    await h.kill("b");
    await h.waitFor("a serving alone", async () => (await h.status("a")).serving);
    await h.write("a", 0, randomBytes(4096));
    await h.kill("a");
    await h.start("b");
    await h.waitFor("b to give up on the witness", async () => {
      const s = await h.status("b");
      return s.state === "Failed" && !s.message.includes("asking");
    });
    assert.equal((await h.status("b")).serving, false);
    await refused(h.write("b", 0, randomBytes(4096)));
    await h.start("a");
    await h.waitInSync();
  });

  it("an interrupted resync resumes where it stopped, and the receiver never serves alone", async () => {
    const regionSize = 64 * 1024;
    await startInSync({ sizeBytes: 32 * MiB, regionSize, resyncRate: 2 * MiB });
    await h.kill("b");
    await h.waitFor("a serving alone", async () => (await h.status("a")).serving);
    const data = randomBytes(8 * MiB);
    for (let off = 0; off < data.length; off += MiB)
      await h.write("a", 4 * MiB + off, data.subarray(off, off + MiB));
    await h.stop("a");
    await h.start("a");
    await h.start("b");
    await h.waitFor("resync under way", async () => ((await h.status("b")).resync?.doneBytes ?? 0) >= MiB);
    assert.equal((await h.status("b")).state, "Pending");
    // Reads of regions not yet received are served from the source.
    assert.deepEqual(await h.read("b", 4 * MiB + 7 * MiB, 4096), data.subarray(7 * MiB, 7 * MiB + 4096));
    h.proxy.cut();
    await h.waitState("b", "Pending");
    await h.waitFor("b noticed the loss", async () => !(await h.status("b")).peer.connected);
    assert.equal((await h.status("b")).serving, false);
    await refused(h.read("b", 4 * MiB, 4096));
    await h.kill("b");
    h.proxy.restore();
    await h.start("b");
    await h.waitInSync();
    const a = await h.status("a");
    // Everything once, plus at most the regions that were in flight when the link broke.
    assert.ok(
      a.stats.resyncedBytes <= 8 * MiB + RESYNC_IN_FLIGHT * regionSize,
      `resumed instead of restarting: ${a.stats.resyncedBytes}`,
    );
    assert.deepEqual(await h.read("b", 4 * MiB, 8 * MiB), data);
    await Promise.all([h.flush("a"), h.flush("b")]);
    assert.equal(await h.fileHash("a"), await h.fileHash("b"));
  });

  it("both nodes writing alone end in SplitBrain until one side's changes are discarded", async () => {
    await startInSync({ witness: "none" });
    h.proxy.cut();
    await h.waitFor(
      "both alone",
      async () =>
        (await h.status("a")).serving &&
        (await h.status("b")).serving &&
        (await h.status("a")).state === "Failed" &&
        (await h.status("b")).state === "Failed",
    );
    const da = randomBytes(65536);
    const db = randomBytes(65536);
    await h.write("a", MiB, da);
    await h.write("b", 5 * MiB, db);
    h.proxy.restore();
    await h.waitState("a", "SplitBrain");
    await h.waitState("b", "SplitBrain");
    assert.match((await h.status("a")).message, /split brain/);
    await h.resolveSplitBrain("b", "b");
    await h.waitInSync();
    assert.deepEqual(await h.read("b", MiB, 65536), da, "a's change reached b");
    assert.deepEqual(await h.read("b", 5 * MiB, 65536), Buffer.alloc(65536), "b's own change was discarded");
    await Promise.all([h.flush("a"), h.flush("b")]);
    assert.equal(await h.fileHash("a"), await h.fileHash("b"));

    // Again, resolved from the node that keeps its data, this time discarding a's changes.
    h.proxy.cut();
    await h.waitFor("both alone again", async () => {
      const [a, b] = [await h.status("a"), await h.status("b")];
      return a.serving && b.serving && a.state === "Failed" && b.state === "Failed";
    });
    const da2 = randomBytes(4096);
    const db2 = randomBytes(4096);
    await h.write("a", 7 * MiB, da2);
    await h.write("b", 9 * MiB, db2);
    h.proxy.restore();
    await h.waitState("a", "SplitBrain");
    await h.waitState("b", "SplitBrain");
    assert.match(await h.resolveSplitBrain("b", "a"), /asked node a/);
    await h.waitInSync();
    await assert.rejects(h.resolveSplitBrain("a", "b"), /409/, "nothing to resolve once in sync");
    assert.deepEqual(await h.read("a", 9 * MiB, 4096), db2, "b's change reached a");
    assert.deepEqual(await h.read("a", 7 * MiB, 4096), Buffer.alloc(4096), "a's own change was discarded");
  });

  it("refuses a partner with the wrong secret and peers sending garbage", async () => {
    h = new PairHarness({ secrets: { a: "right-secret", b: "wrong-secret" } });
    await h.setup();
    await Promise.all([h.start("a"), h.start("b")]);
    await h.waitFor("a refused b", async () => (await h.logText("a")).includes("wrong secret"));
    assert.notEqual((await h.status("a")).state, "Working");
    assert.notEqual((await h.status("b")).state, "Working");
    // Garbage straight at b's peer port.
    const port = h.peerListenPort();
    for (const junk of [Buffer.from("GET / HTTP/1.1\r\n\r\n"), Buffer.alloc(64, 0xff), randomBytes(4096)]) {
      await new Promise<void>((resolve) => {
        const s = net.connect({ host: "127.0.0.1", port }, () => s.write(junk));
        s.on("error", () => resolve());
        s.on("close", () => resolve());
        setTimeout(() => s.destroy(), 5000);
      });
    }
    await h.waitFor("b logged the garbage", async () => (await h.logText("b")).includes("bad magic"));
    assert.ok((await h.status("b")).node === "b", "b still answers");
  });
});
