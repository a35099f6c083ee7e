// Whose is a PersistentVolume of the exported name: only one labelled with this target's uid (or
// a pre-uid PV labelled with its namespace and name) is changed, pruned or deleted.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  persistentVolumeLabels,
  pvAction,
  pvCleanup,
  pvOwnership,
  type LivePersistentVolume,
} from "../../../operator/reconcile/pv-ownership.js";
import { desiredChildren } from "../../../operator/reconcile/desired-children.js";
import { target } from "./fixtures.js";

const t = target({ export: { persistentVolume: { name: "shared" } } });
const pv = (labels?: Record<string, string>, resourceVersion = "41"): LivePersistentVolume => ({
  metadata: { name: "shared", uid: "pv-uid", resourceVersion, ...(labels ? { labels } : {}) },
});
const ours = pv(persistentVolumeLabels(t));

test("the exported PV carries the target's namespace, name and uid as labels", () => {
  const d = desiredChildren(
    t,
    { serviceIPs: { a: "10.0.0.1", b: "10.0.0.2" }, bothWorking: false, chap: { username: "data" } },
    { image: "img" },
  ).find((x) => x.kind === "PersistentVolume");
  assert.ok(d);
  assert.equal(d.metadata.labels?.["hasan.dev/namespace"], "prod");
  assert.equal(d.metadata.labels?.["hasan.dev/target"], "data");
  assert.equal(d.metadata.labels?.["hasan.dev/target-uid"], t.metadata.uid);
});

test("no PV of that name: absent, and it is applied without a precondition", () => {
  assert.deepEqual(pvOwnership(t, "shared", undefined), { kind: "absent" });
  assert.deepEqual(pvAction(t, "shared", undefined), { kind: "apply" });
});

test("a PV with this target's uid label is ours and is applied with its resourceVersion as precondition", () => {
  assert.deepEqual(pvOwnership(t, "shared", ours), { kind: "ours" });
  assert.deepEqual(pvAction(t, "shared", ours), { kind: "apply", resourceVersion: "41" });
});

test("a PV without labels (someone else's) is foreign: refused with a message naming the field and the PV", () => {
  const a = pvAction(t, "shared", pv());
  assert.equal(a.kind, "refuse");
  assert.match(
    a.kind === "refuse" ? a.message : "",
    /^spec\.export\.persistentVolume\.name: PersistentVolume shared exists and belongs to something else; choose another name$/,
  );
});

test("a PV of another HASanTarget (other namespace) is foreign, even if its labels name this target's name", () => {
  const other = pv({
    ...persistentVolumeLabels(t),
    "hasan.dev/namespace": "dev",
    "hasan.dev/target-uid": "x",
  });
  assert.equal(pvOwnership(t, "shared", other).kind, "foreign");
  const spoofedName = pv({ "hasan.dev/namespace": "dev", "hasan.dev/target": "data" });
  assert.equal(pvOwnership(t, "shared", spoofedName).kind, "foreign");
});

test("a PV kept from an earlier target of the same namespace and name (other uid) is foreign, and the message says so", () => {
  const kept = pv({ ...persistentVolumeLabels(t), "hasan.dev/target-uid": "an-older-uid" });
  const o = pvOwnership(t, "shared", kept);
  assert.equal(o.kind, "foreign");
  assert.match(
    o.kind === "foreign" ? o.message : "",
    /kept from an earlier HASanTarget prod\/data with uid an-older-uid/,
  );
});

test("a PV labelled with this namespace and name but no uid label (made before uid labels) is ours", () => {
  const legacy = pv({ "hasan.dev/namespace": "prod", "hasan.dev/target": "data" });
  assert.deepEqual(pvOwnership(t, "shared", legacy), { kind: "ours" });
});

test("on deletion: ours is deleted under Delete (with its uid as precondition) and kept under Retain", () => {
  assert.deepEqual(pvCleanup(t, "shared", ours, "Delete"), { kind: "delete", uid: "pv-uid" });
  assert.deepEqual(pvCleanup(t, "shared", ours, "Retain"), { kind: "keep", why: "reclaimPolicy Retain" });
  assert.deepEqual(pvCleanup(t, "shared", undefined, "Delete"), { kind: "none" });
});

test("on deletion with reclaimPolicy Delete, a foreign PV of that name is kept", () => {
  assert.deepEqual(pvCleanup(t, "shared", pv(), "Delete"), {
    kind: "keep",
    why: "not created for this HASanTarget",
  });
});
