import { test } from "node:test";
import assert from "node:assert/strict";
import {
  encodeTransportId,
  parsePrOut,
  parseTransportId,
} from "../../../target/scsi/commands/persistent-reservation.js";
import { ScsiError } from "../../../target/scsi/sense.js";
import { A } from "./harness.js";

function cdb(sa: number, type: number, length: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x5f;
  c[1] = sa;
  c[2] = type;
  c.writeUInt32BE(length, 5);
  return c;
}

const senseAsc = (fn: () => unknown): number => {
  try {
    fn();
  } catch (e) {
    if (e instanceof ScsiError) return e.asc;
    throw e;
  }
  return -1;
};

test("iSCSI TransportIDs round-trip in both formats", () => {
  const withIsid = encodeTransportId("iqn.2026-11.dev.hasan:init1", "400000000001");
  assert.equal(withIsid.length % 4, 0);
  assert.deepEqual(parseTransportId(withIsid, 0).id, {
    initiatorName: "iqn.2026-11.dev.hasan:init1",
    isid: "400000000001",
  });
  const nameOnly = encodeTransportId("iqn.2026-11.dev.hasan:init2", "");
  assert.deepEqual(parseTransportId(nameOnly, 0).id, {
    initiatorName: "iqn.2026-11.dev.hasan:init2",
    isid: null,
  });
  const fc = Buffer.from(nameOnly);
  fc[0] = 0x00; // protocol identifier 0 (Fibre Channel)
  assert.equal(
    senseAsc(() => parseTransportId(fc, 0)),
    0x26,
  );
});

test("PR OUT parameter lists decode into operations, with SPEC_I_PT TransportIDs", () => {
  const tid = encodeTransportId("iqn.b", "400000000002");
  const p = Buffer.alloc(28 + tid.length);
  p.writeBigUInt64BE(0n, 0);
  p.writeBigUInt64BE(0xabcn, 8);
  p[20] = 0x08 | 0x04 | 0x01; // SPEC_I_PT, ALL_TG_PT, APTPL
  p.writeUInt32BE(tid.length, 24);
  tid.copy(p, 28);
  const op = parsePrOut(cdb(0, 0, p.length), p, A);
  assert.equal(op.serviceAction, "register");
  assert.equal(op.serviceActionKey, "0000000000000abc");
  assert.deepEqual([op.specIpt, op.allTargetPorts, op.aptpl], [true, true, true]);
  assert.deepEqual(op.transportIds, [{ initiatorName: "iqn.b", isid: "400000000002" }]);
  assert.equal(op.nexus.initiatorName, A.initiatorName);

  const basic = Buffer.alloc(24);
  basic[20] = 0x04;
  const reserve = parsePrOut(cdb(1, 5, 24), basic, A);
  assert.equal(reserve.type, "write-exclusive-registrants-only");
  assert.equal(reserve.allTargetPorts, false, "ALL_TG_PT is ignored outside REGISTER");
  assert.equal(
    senseAsc(() => parsePrOut(cdb(1, 2, 24), basic, A)),
    0x24,
    "type 2 is not a reservation type",
  );
  assert.equal(
    senseAsc(() => parsePrOut(cdb(1, 0x11, 24), basic, A)),
    0x24,
    "scope must be the LU",
  );
  assert.equal(
    senseAsc(() => parsePrOut(cdb(0, 0, 20), basic, A)),
    0x1a,
    "short list",
  );
  assert.equal(
    senseAsc(() => parsePrOut(cdb(0, 0, 32), Buffer.alloc(32), A)),
    0x1a,
    "long list",
  );
  assert.equal(
    senseAsc(() => parsePrOut(cdb(9, 0, 24), basic, A)),
    0x24,
    "unknown service action",
  );
  const spec = Buffer.from(basic);
  spec[20] = 0x08;
  assert.equal(
    senseAsc(() => parsePrOut(cdb(1, 1, 24), spec, A)),
    0x26,
    "SPEC_I_PT outside REGISTER",
  );
});

test("REGISTER AND MOVE carries the destination port and UNREG", () => {
  const tid = encodeTransportId("iqn.d", "400000000009");
  const p = Buffer.alloc(24 + tid.length);
  p.writeBigUInt64BE(0xan, 0);
  p.writeBigUInt64BE(0xdn, 8);
  p[17] = 0x02; // UNREG
  p.writeUInt16BE(2, 18);
  p.writeUInt32BE(tid.length, 20);
  tid.copy(p, 24);
  const op = parsePrOut(cdb(7, 1, p.length), p, A);
  assert.equal(op.serviceAction, "register-and-move");
  assert.deepEqual([op.unregister, op.moveRelativeTargetPort], [true, 2]);
  assert.deepEqual(op.transportIds, [{ initiatorName: "iqn.d", isid: "400000000009" }]);
});
