import assert from "node:assert/strict";
import { test } from "node:test";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { PairUnitStateStore } from "../../../target/replication/pair-unit-state.js";
import { metadataFiles } from "../../../target/store/metadata-files.js";

const files = (dir: string) => metadataFiles(join(dir, "lun.img"));
import {
  UnitAttentionSchema,
  UnitOpResultSchema,
  UnitOpSchema,
  UnitStateSchema,
  type UnitAttention,
} from "../../../target/scsi/unit-state.js";

const log = pino({ level: "silent" });
const A = "iqn.2026-11.dev.hasan:a,i,0x400000000001|1";

/**
 * Two stores wired as a pair's nodes are: `a` sequences, `b` forwards its operations to `a`; the
 * operation, the new state and the result cross as JSON and are parsed with the schemas the peer
 * link uses.
 */
async function pairOfStores(dirA: string, dirB: string) {
  const a = await PairUnitStateStore.open(files(dirA), log);
  const b = await PairUnitStateStore.open(files(dirB), log);
  const wire = <T>(schema: { parse(x: unknown): T }, x: unknown): T =>
    schema.parse(JSON.parse(JSON.stringify(x)));
  a.route = {
    apply: (op) =>
      a.applyHere(wire(UnitOpSchema, op), (state, uas) =>
        b.replace(
          wire(UnitStateSchema, state),
          uas.map((u) => wire(UnitAttentionSchema, u)),
        ),
      ),
  };
  b.route = { apply: async (op) => wire(UnitOpResultSchema, await a.route!.apply(op)) };
  const heard = { a: [] as UnitAttention[], b: [] as UnitAttention[] };
  a.onUnitAttention((u) => heard.a.push(u));
  b.onUnitAttention((u) => heard.b.push(u));
  return { a, b, heard };
}

test("pair store: WCE=0 applied through the forwarding node is held, persisted and heard on both nodes", async () => {
  const dirA = await mkdtemp(join(tmpdir(), "hasan-pus-a-"));
  const dirB = await mkdtemp(join(tmpdir(), "hasan-pus-b-"));
  try {
    const { a, b, heard } = await pairOfStores(dirA, dirB);
    assert.equal(a.get().writeCacheEnabled, true);
    const r = await b.apply({ kind: "set-write-cache", nexusId: A, enabled: false });
    assert.equal(r.outcome.status, 0);
    assert.equal(a.get().writeCacheEnabled, false);
    assert.equal(b.get().writeCacheEnabled, false);
    for (const node of [heard.a, heard.b]) {
      assert.deepEqual(
        node.map((u) => [u.asc, u.ascq, u.allNexuses, u.exceptNexusId]),
        [[0x2a, 0x01, true, A]],
      );
    }
    for (const dir of [dirA, dirB]) {
      assert.equal(JSON.parse(await readFile(files(dir).unitState, "utf8")).writeCacheEnabled, false);
      assert.equal(
        (await PairUnitStateStore.open(files(dir), log)).get().writeCacheEnabled,
        false,
        `reopened ${dir}`,
      );
    }
    await b.apply({ kind: "set-write-cache", nexusId: A, enabled: false });
    assert.equal(heard.b.length, 1, "setting it again raises nothing");
  } finally {
    await rm(dirA, { recursive: true, force: true });
    await rm(dirB, { recursive: true, force: true });
  }
});

test("pair store: a state file from before WCE was kept loads with WCE=1; a non-boolean WCE is refused", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hasan-pus-"));
  try {
    const path = files(dir).unitState;
    const old = { registrations: [], reservation: null, prGeneration: 3, aptpl: false, spc2Holder: null };
    await writeFile(path, JSON.stringify(old) + "\n");
    const s = (await PairUnitStateStore.open(files(dir), log)).get();
    assert.equal(s.writeCacheEnabled, true);
    assert.equal(s.prGeneration, 3);
    await writeFile(path, JSON.stringify({ ...old, writeCacheEnabled: "false" }) + "\n");
    await assert.rejects(
      PairUnitStateStore.open(files(dir), log),
      /pair-unit-state\.json is invalid: writeCacheEnabled/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
