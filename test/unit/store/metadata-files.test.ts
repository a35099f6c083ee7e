import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { adoptLegacyPairMetadata } from "../../../target/store/metadata-adoption.js";
import { legacyPairFiles, metadataFiles, type MetadataFiles } from "../../../target/store/metadata-files.js";

class LogCapture extends Writable {
  lines: Array<{ level: number; msg: string } & Record<string, unknown>> = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    for (const l of chunk.toString().split("\n")) if (l) this.lines.push(JSON.parse(l) as never);
    cb();
  }
}

const withDir = async (fn: (dir: string) => Promise<void>) => {
  const dir = await mkdtemp(join(tmpdir(), "hasan-meta-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

const fileNames = (f: MetadataFiles) => Object.entries(f).filter(([k]) => k !== "dir" && k !== "data");

/** The fixed-name files of an older version: a generation record with id `current`, a bitmap, a unit state. */
async function writeLegacy(dir: string, current = "0123456789abcdef"): Promise<void> {
  const legacy = legacyPairFiles(dir);
  await writeFile(legacy.generation, JSON.stringify({ version: 1, current }));
  await writeFile(legacy.dirtyBitmap, Buffer.from([0xff, 0x01]));
  await writeFile(legacy.unitState, JSON.stringify({ registrations: ["old"] }));
}

describe("metadata file names", () => {
  it("two data files in one folder get disjoint metadata names, each named after its data file", () => {
    const a = metadataFiles("/srv/san/a.img");
    const b = metadataFiles("/srv/san/b.img");
    assert.equal(a.dir, "/srv/san");
    const namesA = fileNames(a).map(([, v]) => v);
    const namesB = fileNames(b).map(([, v]) => v);
    for (const n of namesA) assert.ok(n.startsWith("/srv/san/a.img."), n);
    for (const n of namesB) assert.ok(n.startsWith("/srv/san/b.img."), n);
    assert.equal(new Set([...namesA, ...namesB]).size, namesA.length + namesB.length);
    const legacy = Object.values(legacyPairFiles("/srv/san"));
    for (const n of [...namesA, ...namesB]) assert.ok(!legacy.includes(n), n);
    assert.equal(a.generation, "/srv/san/a.img.pair-generation.json");
    assert.equal(a.generationTmp, "/srv/san/a.img.pair-generation.json.tmp");
    assert.equal(a.dirtyBitmap, "/srv/san/a.img.dirty-bitmap");
    assert.equal(a.unitState, "/srv/san/a.img.pair-unit-state.json");
    assert.equal(a.lock, "/srv/san/a.img.lock");
    assert.equal(a.reservations, "/srv/san/a.img.pr.json");
  });

  it("a relative data file keeps its metadata beside it; a path naming a directory is refused", () => {
    assert.equal(metadataFiles("a.img").generation, "a.img.pair-generation.json");
    assert.throws(() => metadataFiles("/srv/san/.."), /does not name a data file/);
  });
});

describe("adoption of the fixed names of older versions", () => {
  it("old fixed names and no new ones: renamed to the data file's names, contents kept, logged once", () =>
    withDir(async (dir) => {
      await writeLegacy(dir);
      const files = metadataFiles(join(dir, "a.img"));
      const log = new LogCapture();
      const r = await adoptLegacyPairMetadata(files, pino(log));
      assert.deepEqual(r, {
        kind: "adopted",
        moved: [files.generation, files.dirtyBitmap, files.unitState],
        generation: "0123456789abcdef",
      });
      assert.deepEqual((await readdir(dir)).sort(), [
        "a.img.dirty-bitmap",
        "a.img.pair-generation.json",
        "a.img.pair-unit-state.json",
      ]);
      assert.deepEqual(await readFile(files.dirtyBitmap), Buffer.from([0xff, 0x01]));
      assert.equal(log.lines.filter((l) => /adopted the pair metadata/.test(l.msg)).length, 1);
      // Started again: its own files are there, nothing happens.
      assert.deepEqual(await adoptLegacyPairMetadata(files, pino(log)), { kind: "own" });
    }));

  it("new names already present: the old files are not adopted and the new ones are never overwritten", () =>
    withDir(async (dir) => {
      await writeLegacy(dir, "1111111111111111");
      const files = metadataFiles(join(dir, "a.img"));
      await writeFile(files.generation, JSON.stringify({ version: 1, current: "2222222222222222" }));
      assert.deepEqual(await adoptLegacyPairMetadata(files, pino(new LogCapture())), { kind: "own" });
      assert.match(await readFile(files.generation, "utf8"), /2222222222222222/);
      assert.match(await readFile(legacyPairFiles(dir).generation, "utf8"), /1111111111111111/);
    }));

  it("a new dirty bitmap without a new generation record: the record is adopted, the new bitmap kept, the old one left", () =>
    withDir(async (dir) => {
      await writeLegacy(dir);
      const files = metadataFiles(join(dir, "a.img"));
      await writeFile(files.dirtyBitmap, Buffer.from([0x00, 0x00]));
      const log = new LogCapture();
      const r = await adoptLegacyPairMetadata(files, pino(log));
      assert.deepEqual(r, {
        kind: "adopted",
        moved: [files.generation, files.unitState],
        generation: "0123456789abcdef",
      });
      assert.deepEqual(await readFile(files.dirtyBitmap), Buffer.from([0x00, 0x00]));
      assert.deepEqual(await readFile(legacyPairFiles(dir).dirtyBitmap), Buffer.from([0xff, 0x01]));
      assert.deepEqual(log.lines.find((l) => /adopted/.test(l.msg))?.leftInPlace, [
        legacyPairFiles(dir).dirtyBitmap,
      ]);
    }));

  it("two data files in one folder with old names, adopting at once: one takes all the old files, the other starts fresh and says so", () =>
    withDir(async (dir) => {
      await writeLegacy(dir);
      const a = metadataFiles(join(dir, "a.img"));
      const b = metadataFiles(join(dir, "b.img"));
      const logs = { a: new LogCapture(), b: new LogCapture() };
      const [ra, rb] = await Promise.all([
        adoptLegacyPairMetadata(a, pino(logs.a)),
        adoptLegacyPairMetadata(b, pino(logs.b)),
      ]);
      const kinds = [ra.kind, rb.kind].sort();
      assert.deepEqual(kinds, ["adopted", "fresh"]);
      const [winner, loser, loserLog] = ra.kind === "adopted" ? [a, b, logs.b] : [b, a, logs.a];
      const left = await readdir(dir);
      const base = (f: string) => f.slice(dir.length + 1);
      assert.deepEqual(
        left.sort(),
        [winner.dirtyBitmap, winner.generation, winner.unitState].map(base).sort(),
      );
      assert.ok(!left.some((f) => f.startsWith(base(loser.data))));
      assert.ok(
        loserLog.lines.some((l) => /starts with fresh metadata.*resynced fully from its partner/.test(l.msg)),
        JSON.stringify(loserLog.lines),
      );
    }));

  it("a crash in the middle of an adoption: the other data file's node does not take the rest, the same node finishes it", () =>
    withDir(async (dir) => {
      await writeLegacy(dir);
      const a = metadataFiles(join(dir, "a.img"));
      const b = metadataFiles(join(dir, "b.img"));
      const legacy = legacyPairFiles(dir);
      // Node a claimed the old record and died before moving anything else.
      await rename(legacy.generation, a.adopting);
      assert.deepEqual(await adoptLegacyPairMetadata(b, pino(new LogCapture())), {
        kind: "fresh",
        takenByAnother: false,
      });
      assert.deepEqual(await readFile(legacy.dirtyBitmap), Buffer.from([0xff, 0x01]));
      const r = await adoptLegacyPairMetadata(a, pino(new LogCapture()));
      assert.deepEqual(r, {
        kind: "adopted",
        moved: [a.generation, a.dirtyBitmap, a.unitState],
        generation: "0123456789abcdef",
      });
      assert.deepEqual((await readdir(dir)).sort(), [
        "a.img.dirty-bitmap",
        "a.img.pair-generation.json",
        "a.img.pair-unit-state.json",
      ]);
    }));

  it("nothing old and nothing new: a fresh start, with no file created and the reason logged", () =>
    withDir(async (dir) => {
      const log = new LogCapture();
      const r = await adoptLegacyPairMetadata(metadataFiles(join(dir, "a.img")), pino(log));
      assert.deepEqual(r, { kind: "fresh", takenByAnother: false });
      assert.deepEqual(await readdir(dir), []);
      assert.ok(log.lines.some((l) => /no pair metadata of this data file/.test(l.msg)));
    }));
});
