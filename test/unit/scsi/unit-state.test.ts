import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  LocalUnitStateStore,
  UnitOpSchema,
  applyUnitOp,
  emptyUnitState,
  itNexusId,
  unitAttentionAppliesTo,
  type NexusIdentity,
  type PrOutOp,
  type ReservationType,
  type UnitState,
} from "../../../target/scsi/unit-state.js";
import { conflictsWithReservation } from "../../../target/scsi/reservation-conflict.js";

const ident = (name: string, isid = "400000000001", port = 1): NexusIdentity => ({
  id: itNexusId(name, isid, port),
  initiatorName: name,
  isid,
  relativeTargetPort: port,
});
const A = ident("iqn.a");
const B = ident("iqn.b");
const C = ident("iqn.c");
const key = (n: number): string => n.toString(16).padStart(16, "0");

function pr(
  nexus: NexusIdentity,
  serviceAction: PrOutOp["serviceAction"],
  k: number,
  sak: number,
  extra: Partial<PrOutOp> = {},
): PrOutOp {
  return {
    kind: "pr-out",
    nexus,
    serviceAction,
    type: null,
    key: key(k),
    serviceActionKey: key(sak),
    aptpl: false,
    allTargetPorts: false,
    specIpt: false,
    transportIds: [],
    unregister: false,
    moveRelativeTargetPort: 0,
    ...extra,
  };
}

/** Applies ops in order, asserting each one succeeds; returns the final state. */
function run(state: UnitState, ...ops: PrOutOp[]): UnitState {
  for (const op of ops) {
    const r = applyUnitOp(state, op);
    assert.equal(r.outcome.status, 0, `${op.serviceAction} by ${op.nexus.initiatorName} succeeds`);
    state = r.state;
  }
  return state;
}

const registered = (): UnitState =>
  run(emptyUnitState(), pr(A, "register", 0, 0xa), pr(B, "register", 0, 0xb), pr(C, "register", 0, 0xc));

test("REGISTER: new keys, wrong keys conflict, key change, unregister, generation counts changes", () => {
  let s = emptyUnitState();
  let r = applyUnitOp(s, pr(A, "register", 5, 0xa));
  assert.equal(r.outcome.status, 0x18, "an unregistered nexus must give reservation key 0");
  r = applyUnitOp(s, pr(A, "register", 0, 0));
  assert.equal(r.outcome.status, 0);
  assert.equal(r.state.registrations.length, 0, "registering key 0 does nothing");
  s = run(s, pr(A, "register", 0, 0xa));
  assert.equal(s.prGeneration, 1);
  assert.equal(applyUnitOp(s, pr(A, "register", 0xbad, 0xa2)).outcome.status, 0x18, "wrong existing key");
  s = run(s, pr(A, "register", 0xa, 0xa2));
  assert.equal(s.registrations[0]!.key, key(0xa2));
  s = run(s, pr(A, "register-and-ignore-existing-key", 0x999, 0xa3));
  assert.equal(s.registrations[0]!.key, key(0xa3));
  s = run(s, pr(A, "register", 0xa3, 0));
  assert.equal(s.registrations.length, 0);
  assert.equal(s.prGeneration, 4);
});

test("SPEC_I_PT registers the named initiator ports; ALL_TG_PT covers every target port", () => {
  const s = run(
    emptyUnitState(),
    pr(A, "register", 0, 0xa, {
      specIpt: true,
      transportIds: [
        { initiatorName: "iqn.b", isid: "400000000001" },
        { initiatorName: "iqn.c", isid: null },
      ],
    }),
  );
  assert.deepEqual(
    s.registrations.map((r) => [r.initiatorName, r.key]),
    [
      ["iqn.a", key(0xa)],
      ["iqn.b", key(0xa)],
      ["iqn.c", key(0xa)],
    ],
  );
  // A TransportID without ISID covers every ISID of that initiator.
  const cOther = ident("iqn.c", "400000000099");
  assert.equal(applyUnitOp(s, pr(cOther, "reserve", 0xa, 0, { type: "write-exclusive" })).outcome.status, 0);

  const t = run(emptyUnitState(), pr(A, "register", 0, 0xa, { allTargetPorts: true }));
  const aOnPort2 = ident("iqn.a", "400000000001", 2);
  assert.equal(
    applyUnitOp(t, pr(aOnPort2, "reserve", 0xa, 0, { type: "exclusive-access" })).outcome.status,
    0,
  );
  const u = run(emptyUnitState(), pr(A, "register", 0, 0xa));
  assert.equal(
    applyUnitOp(u, pr(aOnPort2, "reserve", 0xa, 0, { type: "exclusive-access" })).outcome.status,
    0x18,
  );
  assert.equal(
    applyUnitOp(u, pr(A, "register", 0xa, 0xa, { specIpt: true })).outcome.status,
    0x02,
    "SPEC_I_PT from a registered nexus is an invalid field in the parameter list",
  );
});

const ALL_TYPES: ReservationType[] = [
  "write-exclusive",
  "exclusive-access",
  "write-exclusive-registrants-only",
  "exclusive-access-registrants-only",
  "write-exclusive-all-registrants",
  "exclusive-access-all-registrants",
];

test("RESERVE of every type: holder may repeat it, others and other types conflict", () => {
  for (const type of ALL_TYPES) {
    const s = run(registered(), pr(A, "reserve", 0xa, 0, { type }));
    assert.equal(s.reservation?.type, type);
    assert.equal(s.reservation?.holderNexusId, type.endsWith("all-registrants") ? null : A.id);
    assert.equal(applyUnitOp(s, pr(A, "reserve", 0xa, 0, { type })).outcome.status, 0, `${type}: same again`);
    const other = type === "write-exclusive" ? "exclusive-access" : "write-exclusive";
    assert.equal(applyUnitOp(s, pr(A, "reserve", 0xa, 0, { type: other })).outcome.status, 0x18);
    const byB = applyUnitOp(s, pr(B, "reserve", 0xb, 0, { type })).outcome.status;
    assert.equal(byB, type.endsWith("all-registrants") ? 0 : 0x18, `${type}: another registrant`);
    assert.equal(applyUnitOp(s, pr(B, "reserve", 0xbad, 0, { type })).outcome.status, 0x18, "wrong key");
  }
});

test("RELEASE: wrong type is INVALID RELEASE, registrants-only types tell the others", () => {
  const s = run(registered(), pr(A, "reserve", 0xa, 0, { type: "write-exclusive-registrants-only" }));
  const bad = applyUnitOp(s, pr(A, "release", 0xa, 0, { type: "write-exclusive" }));
  assert.deepEqual(bad.outcome, { status: 2, senseKey: 5, asc: 0x26, ascq: 0x04 });
  const notHolder = applyUnitOp(s, pr(B, "release", 0xb, 0, { type: "write-exclusive-registrants-only" }));
  assert.equal(notHolder.outcome.status, 0);
  assert.notEqual(notHolder.state.reservation, null, "a non-holder's release changes nothing");
  const ok = applyUnitOp(s, pr(A, "release", 0xa, 0, { type: "write-exclusive-registrants-only" }));
  assert.equal(ok.state.reservation, null);
  assert.deepEqual(
    ok.unitAttentions.map((u) => [u.nexusId, u.asc, u.ascq]),
    [
      [B.id, 0x2a, 0x04],
      [C.id, 0x2a, 0x04],
    ],
  );
  const we = run(registered(), pr(A, "reserve", 0xa, 0, { type: "write-exclusive" }));
  assert.equal(
    applyUnitOp(we, pr(A, "release", 0xa, 0, { type: "write-exclusive" })).unitAttentions.length,
    0,
  );
});

test("unregistering the holder releases its reservation", () => {
  const s = run(
    registered(),
    pr(A, "reserve", 0xa, 0, { type: "exclusive-access-registrants-only" }),
    pr(A, "register", 0xa, 0),
  );
  assert.equal(s.reservation, null);
  const ar = run(
    registered(),
    pr(A, "reserve", 0xa, 0, { type: "write-exclusive-all-registrants" }),
    pr(A, "register", 0xa, 0),
  );
  assert.notEqual(ar.reservation, null, "all-registrants reservations last while any registrant remains");
});

test("CLEAR removes everything and tells the other registrants RESERVATIONS PREEMPTED", () => {
  const s = run(registered(), pr(A, "reserve", 0xa, 0, { type: "write-exclusive" }));
  const r = applyUnitOp(s, pr(B, "clear", 0xb, 0));
  assert.equal(r.outcome.status, 0);
  assert.deepEqual(r.state.registrations, []);
  assert.equal(r.state.reservation, null);
  assert.deepEqual(
    r.unitAttentions.map((u) => [u.nexusId, u.asc, u.ascq]),
    [
      [A.id, 0x2a, 0x03],
      [C.id, 0x2a, 0x03],
    ],
  );
  assert.equal(applyUnitOp(s, pr(ident("iqn.x"), "clear", 0, 0)).outcome.status, 0x18, "unregistered");
});

test("PREEMPT takes the holder's reservation, removes its registration and raises REGISTRATIONS PREEMPTED", () => {
  const s = run(registered(), pr(A, "reserve", 0xa, 0, { type: "write-exclusive" }));
  const r = applyUnitOp(s, pr(B, "preempt", 0xb, 0xa, { type: "exclusive-access" }));
  assert.equal(r.outcome.status, 0);
  assert.deepEqual(r.state.reservation, {
    holderNexusId: B.id,
    type: "exclusive-access",
    scope: "logical-unit",
  });
  assert.deepEqual(
    r.state.registrations.map((x) => x.initiatorName),
    ["iqn.b", "iqn.c"],
  );
  assert.deepEqual(
    r.unitAttentions.map((u) => [u.nexusId, u.asc, u.ascq]),
    [
      [A.id, 0x2a, 0x05],
      [C.id, 0x2a, 0x04],
    ],
    "the preempted registrant, and (type changed) the remaining one",
  );
  assert.equal(r.abortNexusIds, undefined);

  // Preempting a non-holder only removes its registration.
  const n = applyUnitOp(s, pr(B, "preempt-and-abort", 0xb, 0xc, { type: "write-exclusive" }));
  assert.equal(n.state.reservation?.holderNexusId, A.id);
  assert.deepEqual(n.abortNexusIds, [C.id]);
  assert.equal(applyUnitOp(s, pr(B, "preempt", 0xb, 0x77, { type: "write-exclusive" })).outcome.status, 0x18);
  assert.equal(applyUnitOp(s, pr(B, "preempt", 0xb, 0, { type: "write-exclusive" })).outcome.status, 0x02);
});

test("PREEMPT with key 0 of an all-registrants reservation removes every other registrant", () => {
  const s = run(registered(), pr(A, "reserve", 0xa, 0, { type: "exclusive-access-all-registrants" }));
  const r = applyUnitOp(s, pr(B, "preempt", 0xb, 0, { type: "write-exclusive" }));
  assert.equal(r.outcome.status, 0);
  assert.deepEqual(
    r.state.registrations.map((x) => x.initiatorName),
    ["iqn.b"],
  );
  assert.deepEqual(r.state.reservation, {
    holderNexusId: B.id,
    type: "write-exclusive",
    scope: "logical-unit",
  });
});

test("REGISTER AND MOVE hands the reservation to another I_T nexus", () => {
  const s = run(registered(), pr(A, "reserve", 0xa, 0, { type: "write-exclusive" }));
  const dest = ident("iqn.d", "400000000002", 2);
  const move = pr(A, "register-and-move", 0xa, 0xd, {
    transportIds: [{ initiatorName: "iqn.d", isid: "400000000002" }],
    moveRelativeTargetPort: 2,
    unregister: true,
  });
  const r = applyUnitOp(s, move);
  assert.equal(r.outcome.status, 0);
  assert.equal(r.state.reservation?.holderNexusId, dest.id);
  assert.ok(!r.state.registrations.some((x) => x.initiatorName === "iqn.a"), "UNREG removed the source");
  assert.ok(r.state.registrations.some((x) => x.initiatorName === "iqn.d" && x.key === key(0xd)));
  assert.equal(
    applyUnitOp(s, { ...move, nexus: B, key: key(0xb) }).outcome.status,
    0x18,
    "only the holder moves",
  );
});

test("SPC-2 RESERVE/RELEASE, nexus loss and LUN reset", () => {
  let s = emptyUnitState();
  let r = applyUnitOp(s, { kind: "spc2-reserve", nexusId: A.id });
  s = r.state;
  assert.equal(s.spc2Holder, A.id);
  assert.equal(applyUnitOp(s, { kind: "spc2-reserve", nexusId: B.id }).outcome.status, 0x18);
  assert.equal(applyUnitOp(s, { kind: "spc2-release", nexusId: B.id }).state.spc2Holder, A.id);
  assert.equal(applyUnitOp(s, pr(B, "register", 0, 0xb)).outcome.status, 0x18, "PR conflicts with SPC-2");
  r = applyUnitOp(s, { kind: "nexus-lost", nexusId: A.id });
  assert.equal(r.state.spc2Holder, null);
  assert.deepEqual(r.unitAttentions, [{ nexusId: A.id, asc: 0x29, ascq: 0x07 }]);
  r = applyUnitOp(s, { kind: "lun-reset", nexusId: B.id });
  assert.equal(r.state.spc2Holder, null);
  assert.equal(r.unitAttentions[0]!.allNexuses, true);
  assert.ok(unitAttentionAppliesTo(r.unitAttentions[0]!, A));
  assert.ok(unitAttentionAppliesTo(r.unitAttentions[0]!, B), "the nexus that reset too");
  const withReg = run(emptyUnitState(), pr(B, "register", 0, 0xb));
  assert.equal(applyUnitOp(withReg, { kind: "spc2-reserve", nexusId: A.id }).outcome.status, 0x18);
});

test("reservation conflicts follow SPC-4 for every type, for readers and writers", () => {
  const cdb = Buffer.alloc(16);
  const outsider = ident("iqn.outsider");
  for (const type of ALL_TYPES) {
    const s = run(registered(), pr(A, "reserve", 0xa, 0, { type }));
    const we = type.startsWith("write-exclusive");
    const registrantsAllowed = type !== "write-exclusive" && type !== "exclusive-access";
    for (const [who, isRegistered] of [
      [B, true],
      [outsider, false],
    ] as const) {
      const write = conflictsWithReservation(s, who, "write", cdb, false);
      const read = conflictsWithReservation(s, who, "read", cdb, false);
      const mayAll = isRegistered && registrantsAllowed;
      assert.equal(write, !mayAll, `${type}: write by ${who.initiatorName}`);
      assert.equal(read, !mayAll && !we, `${type}: read by ${who.initiatorName}`);
      assert.equal(conflictsWithReservation(s, who, "allowed", cdb, false), false);
    }
    assert.equal(conflictsWithReservation(s, A, "write", cdb, false), false, "the holder");
  }
});

test("the local store persists registrations across restarts but not SPC-2 reservations", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hasan-pr-"));
  try {
    const path = join(dir, "lun.pr.json");
    const store = await LocalUnitStateStore.open(path);
    const uas: string[] = [];
    store.onUnitAttention((u) => uas.push(`${u.nexusId}:${u.asc.toString(16)}/${u.ascq}`));
    await store.apply(pr(A, "register", 0, 0xa, { aptpl: true }));
    await store.apply(pr(B, "register", 0, 0xb));
    await store.apply(pr(A, "reserve", 0xa, 0, { type: "write-exclusive-registrants-only" }));
    await store.apply({ kind: "spc2-reserve", nexusId: C.id }); // conflicts: registrations exist
    const released = await store.apply(
      pr(A, "release", 0xa, 0, { type: "write-exclusive-registrants-only" }),
    );
    assert.equal(released.outcome.status, 0);
    assert.deepEqual(uas, [`${B.id}:2a/4`]);
    await store.apply(pr(A, "reserve", 0xa, 0, { type: "exclusive-access" }));
    JSON.parse(await readFile(path, "utf8"));

    const reopened = await LocalUnitStateStore.open(path);
    const s = reopened.get();
    assert.deepEqual(
      s.registrations.map((r) => r.key),
      [key(0xa), key(0xb)],
    );
    assert.deepEqual(s.reservation, { holderNexusId: A.id, type: "exclusive-access", scope: "logical-unit" });
    assert.equal(s.aptpl, false, "the last REGISTER set APTPL to 0");
    assert.equal(s.prGeneration, store.get().prGeneration);

    const mem = LocalUnitStateStore.inMemory();
    await mem.apply({ kind: "spc2-reserve", nexusId: A.id });
    assert.equal(mem.get().spc2Holder, A.id);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the local store refuses a corrupt state file instead of forgetting reservations", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hasan-pr-"));
  try {
    const path = join(dir, "lun.pr.json");
    const { writeFile } = await import("node:fs/promises");
    await writeFile(path, JSON.stringify({ registrations: "nope" }));
    await assert.rejects(LocalUnitStateStore.open(path), /is invalid/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("set-write-cache WCE=0 by nexus A: state changes, every nexus but A hears MODE PARAMETERS CHANGED", () => {
  const before = emptyUnitState();
  assert.equal(before.writeCacheEnabled, true, "WCE=1 by default");
  const r = applyUnitOp(before, { kind: "set-write-cache", nexusId: A.id, enabled: false });
  assert.equal(r.outcome.status, 0);
  assert.equal(r.state.writeCacheEnabled, false);
  assert.equal(before.writeCacheEnabled, true, "the reducer does not change its input");
  assert.equal(r.unitAttentions.length, 1);
  const ua = r.unitAttentions[0]!;
  assert.deepEqual([ua.asc, ua.ascq], [0x2a, 0x01]);
  assert.equal(unitAttentionAppliesTo(ua, A), false, "not the nexus that changed it");
  assert.equal(unitAttentionAppliesTo(ua, B), true);
  assert.equal(
    unitAttentionAppliesTo(ua, ident("iqn.a", "400000000002")),
    true,
    "another ISID of A's initiator",
  );
  assert.equal(
    unitAttentionAppliesTo(ua, ident("iqn.a", "400000000001", 2)),
    true,
    "A through the other port",
  );
  const back = applyUnitOp(r.state, { kind: "set-write-cache", nexusId: B.id, enabled: true });
  assert.equal(back.state.writeCacheEnabled, true, "set back to 1");
  assert.equal(unitAttentionAppliesTo(back.unitAttentions[0]!, A), true, "A hears B's change");
});

test("set-write-cache to the value WCE already has: same state, GOOD, no unit attention", () => {
  for (const enabled of [true, false]) {
    const s = { ...emptyUnitState(), writeCacheEnabled: enabled };
    const r = applyUnitOp(s, { kind: "set-write-cache", nexusId: A.id, enabled });
    assert.equal(r.outcome.status, 0);
    assert.equal(r.state, s, `WCE=${Number(enabled)}: the state object is unchanged (nothing to persist)`);
    assert.deepEqual(r.unitAttentions, []);
  }
});

test("set-write-cache is a unit operation the peer protocol accepts; a non-boolean value is refused", () => {
  const op = { kind: "set-write-cache", nexusId: A.id, enabled: false };
  assert.deepEqual(UnitOpSchema.parse(JSON.parse(JSON.stringify(op))), op);
  assert.equal(UnitOpSchema.safeParse({ ...op, enabled: "no" }).success, false);
});

test("the local store keeps WCE=0 across a reopen, in the same file as the reservations", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hasan-pr-"));
  try {
    const path = join(dir, "lun.pr.json");
    const store = await LocalUnitStateStore.open(path);
    await store.apply(pr(A, "register", 0, 0xa));
    const r = await store.apply({ kind: "set-write-cache", nexusId: A.id, enabled: false });
    assert.equal(r.unitAttentions.length, 1);
    assert.equal(JSON.parse(await readFile(path, "utf8")).writeCacheEnabled, false);
    const reopened = await LocalUnitStateStore.open(path);
    assert.equal(reopened.get().writeCacheEnabled, false);
    assert.equal(reopened.get().registrations.length, 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a state file from before WCE was kept loads with WCE=1; a non-boolean WCE is refused at load", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hasan-pr-"));
  try {
    const path = join(dir, "lun.pr.json");
    const { writeFile } = await import("node:fs/promises");
    // What an earlier version wrote: reservations only.
    const old = {
      registrations: [
        {
          nexusId: A.id,
          initiatorName: A.initiatorName,
          isid: A.isid,
          relativeTargetPort: 1,
          key: key(0xa),
          allTargetPorts: false,
        },
      ],
      reservation: null,
      prGeneration: 1,
      aptpl: true,
      spc2Holder: null,
    };
    await writeFile(path, JSON.stringify(old, null, 2) + "\n");
    const s = (await LocalUnitStateStore.open(path)).get();
    assert.equal(s.writeCacheEnabled, true);
    assert.equal(s.registrations[0]?.key, key(0xa));
    for (const bad of ["off", 0, null]) {
      await writeFile(path, JSON.stringify({ ...old, writeCacheEnabled: bad }));
      await assert.rejects(
        LocalUnitStateStore.open(path),
        (e: Error) => e.message.includes(path) && /is invalid: .*writeCacheEnabled/.test(e.message),
        `writeCacheEnabled ${JSON.stringify(bad)}`,
      );
    }
    await writeFile(path, '{"registrations": [');
    await assert.rejects(LocalUnitStateStore.open(path), /is invalid: not JSON/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
