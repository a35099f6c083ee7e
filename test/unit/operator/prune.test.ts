import { test } from "node:test";
import assert from "node:assert/strict";
import { unwanted } from "../../../operator/reconcile/prune.js";
import type { KubeObject } from "../../../operator/reconcile/desired-children.js";
import { persistentVolumeLabels } from "../../../operator/reconcile/pv-ownership.js";
import { target } from "./fixtures.js";

const t = target();
const mine = (name: string) => ({
  metadata: { name, uid: `u-${name}`, ownerReferences: [{ uid: t.metadata.uid, controller: true }] },
});
const want = (kind: string, name: string): KubeObject => ({ apiVersion: "v1", kind, metadata: { name } });

test("owned objects that are no longer desired are pruned; desired and foreign ones stay", () => {
  const foreign = {
    metadata: { name: "other", uid: "x", ownerReferences: [{ uid: "someone-else", controller: true }] },
  };
  assert.deepEqual(
    unwanted(t, "Secret", [mine("data-peer"), mine("keep"), foreign], [want("Secret", "keep")]),
    ["data-peer"],
  );
});

test("PVs (cluster-scoped, matched by labels) are pruned when export is removed or renamed", () => {
  const pv = { metadata: { name: "hasan-prod-data", uid: "p", labels: persistentVolumeLabels(t) } };
  assert.deepEqual(unwanted(t, "PersistentVolume", [pv], []), ["hasan-prod-data"]);
  assert.deepEqual(unwanted(t, "PersistentVolume", [pv], [want("PersistentVolume", "hasan-prod-data")]), []);
});

test("a PV the label selector lists but whose uid label names another target is never pruned", () => {
  const kept = {
    metadata: {
      name: "hasan-prod-data",
      uid: "p",
      labels: { ...persistentVolumeLabels(t), "hasan.dev/target-uid": "an-earlier-target" },
    },
  };
  assert.deepEqual(unwanted(t, "PersistentVolume", [kept], []), []);
});
