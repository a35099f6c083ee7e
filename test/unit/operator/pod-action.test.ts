import { test } from "node:test";
import assert from "node:assert/strict";
import { podAction, protocolUpgradeReplaces } from "../../../operator/pair/pod-action.js";
import type { KubeObject } from "../../../operator/reconcile/desired-children.js";

const desired: KubeObject = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "data-a", annotations: { "hasan.dev/template-hash": "new" } },
};
const pod = (hash: string, deleting = false) => ({
  metadata: {
    name: "data-a",
    annotations: { "hasan.dev/template-hash": hash },
    ...(deleting ? { deletionTimestamp: "2026-01-01T00:00:00Z" } : {}),
  },
});

test("a missing pod is created (a deleted pod comes back)", () => {
  assert.equal(podAction(desired, undefined, false).kind, "create");
});

test("an unchanged pod is left alone: no churn", () => {
  assert.equal(podAction(desired, pod("new"), true).kind, "keep");
});

test("a changed template replaces the pod only when the pair can spare it", () => {
  assert.equal(podAction(desired, pod("old"), false).kind, "wait");
  assert.equal(podAction(desired, pod("old"), true).kind, "replace");
});

test("a terminating pod is waited for, not re-created on top", () => {
  assert.equal(podAction(desired, pod("new", true), true).kind, "wait");
});

test("a pod that ended (Failed or Succeeded) is replaced, since it will never run again", () => {
  for (const phase of ["Failed", "Succeeded"]) {
    const ended = { ...pod("new"), status: { phase } };
    assert.equal(podAction(desired, ended, false).kind, "replace", phase);
  }
});

test("an image change across peer protocol versions: the outdated pod is replaced once its updated partner refuses its version", () => {
  const partnerDesired: KubeObject = { ...desired, metadata: { ...desired.metadata, name: "data-b" } };
  // b already runs the new template and reports that a speaks another protocol version.
  assert.equal(protocolUpgradeReplaces(desired, pod("old"), partnerDesired, pod("new"), "version"), true);
  // Any other refusal (a wrong secret) or a partner not yet updated does not replace a pod the pair needs.
  assert.equal(protocolUpgradeReplaces(desired, pod("old"), partnerDesired, pod("new"), "secret"), false);
  assert.equal(protocolUpgradeReplaces(desired, pod("old"), partnerDesired, pod("old"), "version"), false);
  assert.equal(protocolUpgradeReplaces(desired, pod("old"), partnerDesired, pod("new"), undefined), false);
  // An up-to-date pod is never replaced for this.
  assert.equal(protocolUpgradeReplaces(desired, pod("new"), partnerDesired, pod("new"), "version"), false);
});
