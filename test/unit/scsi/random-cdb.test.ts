import { test } from "node:test";
import assert from "node:assert/strict";
import { COMMANDS } from "../../../target/scsi/opcodes.js";
import { A, B, makeHarness } from "./harness.js";

/** Small deterministic generator so a failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

test("random CDBs for every command end in a SCSI status, never an internal failure", async () => {
  const h = await makeHarness(4 * 1024 * 1024);
  const rnd = prng(20261127);
  const byte = () => Math.floor(rnd() * 256);
  try {
    for (let i = 0; i < 3000; i++) {
      const spec = COMMANDS[Math.floor(rnd() * COMMANDS.length)]!;
      const cdb = Buffer.alloc(16);
      for (let j = 1; j < 16; j++) {
        // Mostly small values so that some commands get past validation and do real work.
        cdb[j] = rnd() < 0.7 ? byte() & 0x07 : byte();
      }
      cdb[0] = spec.opcode;
      if (spec.serviceAction !== undefined) cdb[1] = (cdb[1]! & 0xe0) | spec.serviceAction;
      const dataOut = Buffer.alloc(rnd() < 0.5 ? 0 : Math.floor(rnd() * 4096));
      for (let j = 0; j < dataOut.length; j++) dataOut[j] = rnd() < 0.8 ? 0 : byte();
      const r = await h.run(rnd() < 0.5 ? A : B, cdb, dataOut, rnd() < 0.05 ? 1 : 0);
      const what = `${spec.name} ${cdb.toString("hex")} with ${dataOut.length} bytes`;
      assert.ok([0x00, 0x02, 0x18].includes(r.status), `${what}: status ${r.status}`);
      if (r.status === 0x02) {
        assert.ok(r.sense && r.sense.length >= 18, `${what}: sense present`);
        assert.notEqual(r.sense[2]! & 0x0f, 0x04, `${what}: no HARDWARE ERROR`);
      }
    }
  } finally {
    await h.close();
  }
});
