import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { checkGrowth, GrowthRefusedError, LunGrowth } from "../../../target/replication/lun-growth.js";
import { planLink, viewOf } from "../../../target/replication/link-plan.js";
import { PairCore } from "../../../target/replication/pair-core.js";
import {
  encodeFrame,
  FrameDecoder,
  ProtocolError,
  RECEIVERS,
  PEER_PROTOCOL_VERSION,
} from "../../../target/replication/protocol.js";
import { DirtyBitmap, DirtyRegionStore, regionCount } from "../../../target/store/dirty-bitmap.js";
import { FileBlockDevice } from "../../../target/store/file-device.js";
import { metadataFiles, type MetadataFiles } from "../../../target/store/metadata-files.js";
import {
  freshGeneration,
  loadGeneration,
  type GenerationRecord,
} from "../../../target/store/pair-generation.js";

const MiB = 1024 * 1024;
const REGION = 64 * 1024;
const quiet = pino({ level: "silent" });

describe("peer messages of the growth", () => {
  it("grow and forwardGrow round-trip; a malformed size is refused at the boundary", () => {
    assert.ok(PEER_PROTOCOL_VERSION >= 4, "grow and forwardGrow came with peer protocol 4");
    const d = new FrameDecoder();
    const got = d.push(
      Buffer.concat([
        ...encodeFrame("grow", 3, { sizeBytes: 256 * MiB }),
        ...encodeFrame("forwardGrow", 4, { sizeBytes: 512 * MiB }),
      ]),
    );
    assert.deepEqual(
      got.map((m) => [m.type, m.id, m.body]),
      [
        ["grow", 3, { sizeBytes: 256 * MiB }],
        ["forwardGrow", 4, { sizeBytes: 512 * MiB }],
      ],
    );
    for (const body of [{ sizeBytes: -1 }, { sizeBytes: 1.5 }, { sizeBytes: 1, extra: true }, {}]) {
      const bad = encodeFrame("grow", 5, body as never);
      assert.throws(() => new FrameDecoder().push(Buffer.concat(bad)), ProtocolError);
    }
    assert.throws(() => encodeFrame("grow", 1, { sizeBytes: MiB }, Buffer.alloc(1)), /carries no data/);
  });

  it("grow goes to the node that does not sequence, forwardGrow to the sequencer", () => {
    assert.equal(RECEIVERS.grow, "follower");
    assert.equal(RECEIVERS.forwardGrow, "sequencer");
  });
});

describe("checkGrowth", () => {
  it("grows, keeps the same size as a no-op, refuses shrinking and sizes that are not whole sectors", () => {
    assert.deepEqual(checkGrowth(64 * MiB, 128 * MiB), { kind: "grow" });
    assert.deepEqual(checkGrowth(64 * MiB, 64 * MiB), { kind: "same" });
    const shrink = checkGrowth(64 * MiB, 32 * MiB);
    assert.equal(shrink.kind, "refuse");
    assert.match(shrink.kind === "refuse" ? shrink.reason : "", /shrinking it to 33554432 would lose data/);
    assert.equal(checkGrowth(64 * MiB, 128 * MiB + 100).kind, "refuse");
    assert.equal(checkGrowth(64 * MiB, 0).kind, "refuse");
    assert.equal(checkGrowth(64 * MiB, Number.MAX_SAFE_INTEGER + 1).kind, "refuse");
  });
});

describe("dirty bitmap growth", () => {
  it("a bitmap grows in place: old bits kept, new regions clear, the tail of the old last byte too", () => {
    const b = new DirtyBitmap(13);
    b.setRange(10, 12);
    const same = b;
    b.grow(40);
    assert.equal(same.regions, 40);
    assert.deepEqual([...b.iterate()], [10, 11, 12]);
    b.set(39);
    assert.deepEqual([...b.iterate()], [10, 11, 12, 39]);
    assert.throws(() => b.grow(20), /cannot become 20/);
  });

  it("the bitmap file grows with its bits durable, and reopens at the new size", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hasan-grow-"));
    try {
      const files = metadataFiles(join(dir, "lun.img"));
      const s = await DirtyRegionStore.open(files, 100);
      await s.markDurable(3, 5);
      await s.grow(70_000);
      assert.equal((await stat(files.dirtyBitmap)).size, Math.ceil(70_000 / 8));
      await s.markDurable(69_999, 69_999);
      await s.close();
      const onDisk = new DirtyBitmap(70_000, await readFile(files.dirtyBitmap));
      assert.deepEqual([...onDisk.iterate()], [3, 4, 5, 69_999]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

async function nodeCore(dir: string, sizeBytes: number): Promise<{ core: PairCore; files: MetadataFiles }> {
  const files = metadataFiles(join(dir, "lun.img"));
  const local = await FileBlockDevice.open(join(dir, "lun.img"), sizeBytes);
  const core = new PairCore({
    node: "a",
    local,
    metadata: files,
    regionSize: REGION,
    regions: regionCount(sizeBytes, REGION),
    logger: quiet,
  });
  await core.setGeneration({ ...freshGeneration(REGION, sizeBytes), initialized: true });
  core.store = await DirtyRegionStore.open(files, core.regions);
  core.outOfSync = core.store.image.clone();
  return { core, files };
}

describe("one node's growth", () => {
  it("grows the LUN file, the dirty bitmaps (memory and file) and the generation record, then tells its listeners", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hasan-grow-"));
    try {
      const { core, files } = await nodeCore(dir, 4 * MiB);
      core.outOfSync.set(2);
      await core.store.markDurable(2, 2);
      const growth = new LunGrowth(core);
      const heard: number[] = [];
      growth.onGrown((s) => heard.push(s));
      await core.local.write(MiB, Buffer.alloc(4096, 0x5a));

      await growth.growLocal(10 * MiB);
      assert.equal(core.sizeBytes, 10 * MiB);
      assert.equal(core.local.sizeBytes, 10 * MiB);
      assert.equal(core.regions, 160);
      assert.equal(core.outOfSync.regions, 160);
      assert.equal(core.hot.regions, 160);
      assert.deepEqual(
        [...core.outOfSync.iterate()],
        [2],
        "the dirty regions stay dirty, the new ones are clear",
      );
      assert.equal((await stat(join(dir, "lun.img"))).size, 10 * MiB);
      assert.equal((await stat(files.dirtyBitmap)).size, 20);
      assert.equal((await loadGeneration(files))?.sizeBytes, 10 * MiB);
      assert.deepEqual(heard, [10 * MiB]);
      assert.deepEqual(await core.local.read(MiB, 4096), Buffer.alloc(4096, 0x5a), "data kept");
      assert.deepEqual(await core.local.read(9 * MiB, 4096), Buffer.alloc(4096), "new space reads zeros");
      // Bits of the new regions can be made durable now.
      await core.store.markDurable(159, 159);

      await growth.growLocal(10 * MiB);
      assert.deepEqual(heard, [10 * MiB], "growing to the same size does nothing");
      await assert.rejects(growth.growLocal(8 * MiB), GrowthRefusedError);
      assert.equal(core.sizeBytes, 10 * MiB);
      await core.store.close();
      await core.local.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses shrinking before asking anyone", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hasan-grow-"));
    try {
      const { core } = await nodeCore(dir, 4 * MiB);
      await assert.rejects(new LunGrowth(core).grow(2 * MiB), (e: Error) => {
        assert.ok(e instanceof GrowthRefusedError);
        assert.match(e.message, /the LUN holds 4194304 bytes; shrinking it to 2097152 would lose data/);
        return true;
      });
      await core.store.close();
      await core.local.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("the handshake's size agreement", () => {
  const gen = (sizeBytes: number): GenerationRecord => ({
    ...freshGeneration(REGION, sizeBytes),
    current: "0000000000000001",
    initialized: true,
  });
  const bitsOf = (regions: number, ...set: number[]) => {
    const b = new DirtyBitmap(regions);
    for (const r of set) b.set(r);
    return b.bytes;
  };

  it("the node that grew plans with the partner's smaller bitmap; the partner, grown, plans the same", () => {
    // Node a served alone and grew from 16 to 32 regions, writing region 20 (new space) and 3.
    const big = 32 * REGION;
    const small = 16 * REGION;
    const aBits = bitsOf(32, 3, 20);
    const bBitsBefore = bitsOf(16, 7); // sent by b before it grew
    const aGen = { ...gen(big), current: "0000000000000002", bitmapUuid: "0000000000000001", history: [] };
    const bGen = gen(small);
    const planA = planLink({
      node: "a",
      gen: aGen,
      mine: { regionSize: REGION, sizeBytes: big, bits: aBits },
      theirs: { generation: viewOf(bGen), regionSize: REGION, sizeBytes: small, bits: bBitsBefore },
      wasAlone: true,
    });
    // Node b grew to a's size before planning (handshake.ts); its own bits are the ones it sent.
    const planB = planLink({
      node: "b",
      gen: { ...bGen, sizeBytes: big },
      mine: { regionSize: REGION, sizeBytes: big, bits: bBitsBefore },
      theirs: { generation: viewOf(aGen), regionSize: REGION, sizeBytes: big, bits: aBits },
      wasAlone: false,
    });
    assert.equal(planA.kind, "link");
    assert.equal(planB.kind, "link");
    if (planA.kind !== "link" || planB.kind !== "link") return;
    assert.equal(planA.role, "source");
    assert.equal(planB.role, "target");
    assert.equal(planA.bits.regions, 32);
    assert.deepEqual([...planA.bits.iterate()], [3, 7, 20], "the new space written alone resyncs");
    assert.deepEqual([...planB.bits.iterate()], [...planA.bits.iterate()], "both copy the same regions");
  });

  it("a node smaller than its partner must grow before planning: planned as is, it is refused", () => {
    const r = planLink({
      node: "b",
      gen: gen(16 * REGION),
      mine: { regionSize: REGION, sizeBytes: 16 * REGION, bits: bitsOf(16) },
      theirs: {
        generation: viewOf(gen(32 * REGION)),
        regionSize: REGION,
        sizeBytes: 32 * REGION,
        bits: bitsOf(32),
      },
      wasAlone: false,
    });
    assert.equal(r.kind, "refuse");
  });

  it("a partner's bitmap that does not match its announced size is refused", () => {
    const r = planLink({
      node: "a",
      gen: gen(32 * REGION),
      mine: { regionSize: REGION, sizeBytes: 32 * REGION, bits: bitsOf(32) },
      theirs: {
        generation: viewOf(gen(16 * REGION)),
        regionSize: REGION,
        sizeBytes: 16 * REGION,
        bits: bitsOf(32),
      },
      wasAlone: false,
    });
    assert.deepEqual(r, { kind: "refuse", reason: "partner's bitmap has the wrong size" });
  });
});
