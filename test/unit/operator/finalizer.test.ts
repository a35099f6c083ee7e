import { test } from "node:test";
import assert from "node:assert/strict";
import { finalize, storageReclaimPolicyOf } from "../../../operator/reconcile/finalizer.js";
import type { KubeClient } from "../../../operator/kit/kube-client.js";
import { target } from "./fixtures.js";

/** Records the calls finalize makes; only the two methods it uses. */
function recordingClient(): { client: KubeClient; calls: string[] } {
  const calls: string[] = [];
  const fake = {
    delete: async (_v: string, kind: string, _ns: string | undefined, name: string) => {
      calls.push(`delete ${kind}/${name}`);
    },
    mergePatch: async (_v: string, kind: string, _ns: string | undefined, name: string) => {
      calls.push(`patch ${kind}/${name}`);
    },
  };
  return { client: fake as unknown as KubeClient, calls };
}

test("storage reclaim policy: unset everywhere gives Retain", () => {
  assert.equal(storageReclaimPolicyOf(target()), "Retain");
});

test("storage reclaim policy: the exported PV's Delete applies to the PVCs when storage says nothing", () => {
  assert.equal(
    storageReclaimPolicyOf(target({ export: { persistentVolume: { reclaimPolicy: "Delete" } } })),
    "Delete",
  );
});

test("storage reclaim policy: spec.storage.reclaimPolicy wins over the exported PV's", () => {
  const t = target({
    storage: { reclaimPolicy: "Retain" },
    export: { persistentVolume: { reclaimPolicy: "Delete" } },
  });
  assert.equal(storageReclaimPolicyOf(t), "Retain");
});

test("finalize with storage.reclaimPolicy Delete and no export deletes both backing PVCs", async () => {
  const { client, calls } = recordingClient();
  const done = await finalize(client, target({ storage: { reclaimPolicy: "Delete" } }));
  assert.deepEqual(calls, [
    "delete Pod/data-a",
    "delete Pod/data-b",
    "delete PersistentVolumeClaim/data-a-data",
    "delete PersistentVolumeClaim/data-b-data",
  ]);
  assert.deepEqual(done, [
    "deleted PersistentVolumeClaim/data-a-data",
    "deleted PersistentVolumeClaim/data-b-data",
  ]);
});

test("finalize without any reclaim policy keeps the backing PVCs (drops their owner references)", async () => {
  const { client, calls } = recordingClient();
  await finalize(client, target());
  assert.deepEqual(calls.slice(2), [
    "patch PersistentVolumeClaim/data-a-data",
    "patch PersistentVolumeClaim/data-b-data",
  ]);
});
