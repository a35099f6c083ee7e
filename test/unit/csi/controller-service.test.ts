import { test } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { pino } from "pino";
import { ControllerService } from "../../../operator/csi/controller/service.js";
import { CsiError } from "../../../operator/csi/errors.js";
import { FakeStore } from "./fake-store.js";

const Gi = 1024 ** 3;
const cap = (mode = "SINGLE_NODE_WRITER") => ({ mount: { fs_type: "" }, access_mode: { mode } });
const ctx = () => ({ deadline: undefined, signal: new AbortController().signal });

function service(store = new FakeStore(), createWaitMs = 1000) {
  return new ControllerService(
    store,
    { defaultNamespace: "csi", createWaitMs, pollMs: 1 },
    pino({ level: "silent" }),
  );
}

function createRequest(over: Record<string, unknown> = {}) {
  return {
    name: "pvc-0b7c6f2e-1a2b-4c3d-8e9f-001122334455",
    capacity_range: { required_bytes: String(Gi), limit_bytes: "0" },
    volume_capabilities: [cap()],
    parameters: {
      storageClassName: "local-path",
      "csi.storage.k8s.io/pvc/name": "data-db-0",
      "csi.storage.k8s.io/pvc/namespace": "apps",
      "csi.storage.k8s.io/pv/name": "pvc-0b7c6f2e-1a2b-4c3d-8e9f-001122334455",
    },
    ...over,
  };
}

async function codeOf(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CsiError, String(e));
    return { code: e.code, message: e.message };
  }
  assert.fail("expected an error");
}

test("CreateVolume makes the HASanTarget in the PVC's namespace and answers with its volume once ready", async () => {
  const store = new FakeStore();
  store.becomesReadyAfterGets = 3;
  const r = (await service(store).createVolume(createRequest(), ctx())) as {
    volume: { volume_id: string; capacity_bytes: string; volume_context: Record<string, string> };
  };
  assert.deepEqual(store.writes, ["create apps/pvc-0b7c6f2e-1a2b-4c3d-8e9f-001122334455"]);
  assert.equal(r.volume.volume_id, "apps/pvc-0b7c6f2e-1a2b-4c3d-8e9f-001122334455");
  assert.equal(r.volume.capacity_bytes, String(Gi));
  assert.equal(r.volume.volume_context.portals, "10.214.0.10:3260,10.214.0.11:3260");
  assert.equal(r.volume.volume_context.lun, "0");
  assert.equal(r.volume.volume_context.chapSecretName, "pvc-0b7c6f2e-1a2b-4c3d-8e9f-001122334455-chap");
});

test("CreateVolume twice with the same name and parameters gives the same volume and creates once", async () => {
  const store = new FakeStore();
  const s = service(store);
  const a = await s.createVolume(createRequest(), ctx());
  const b = await s.createVolume(createRequest(), ctx());
  assert.deepEqual(a, b);
  assert.equal(store.writes.length, 1);
});

test("CreateVolume with the same name and a larger capacity is ALREADY_EXISTS", async () => {
  const s = service();
  await s.createVolume(createRequest(), ctx());
  const bigger = createRequest({
    capacity_range: { required_bytes: String(2 * Gi), limit_bytes: String(2 * Gi) },
  });
  assert.equal((await codeOf(s.createVolume(bigger, ctx()))).code, status.ALREADY_EXISTS);
});

test("CreateVolume with the same name and another backing StorageClass is ALREADY_EXISTS", async () => {
  const s = service();
  await s.createVolume(createRequest(), ctx());
  const other = createRequest();
  other.parameters.storageClassName = "fast";
  assert.equal((await codeOf(s.createVolume(other, ctx()))).code, status.ALREADY_EXISTS);
});

test("CreateVolume whose pair is not ready within the wait is ABORTED saying why, and a retry succeeds", async () => {
  const store = new FakeStore();
  store.becomesReadyAfterGets = 1_000_000;
  const s = service(store, 20);
  const e = await codeOf(s.createVolume(createRequest(), ctx()));
  assert.equal(e.code, status.ABORTED);
  assert.match(e.message, /not Ready yet/);
  store.becomesReadyAfterGets = 0;
  await s.createVolume(createRequest(), ctx());
  assert.equal(store.writes.length, 1, "the retry found the target the first call made");
});

test("CreateVolume with the caller's deadline already near answers ABORTED before it", async () => {
  const store = new FakeStore();
  store.becomesReadyAfterGets = 1_000_000;
  const started = Date.now();
  const e = await codeOf(
    service(store, 60_000).createVolume(createRequest(), {
      deadline: Date.now() + 1200,
      signal: new AbortController().signal,
    }),
  );
  assert.equal(e.code, status.ABORTED);
  assert.ok(Date.now() - started < 1200, "answered within the deadline");
});

test("CreateVolume with an unknown StorageClass parameter is INVALID_ARGUMENT naming it, and creates nothing", async () => {
  const store = new FakeStore();
  const req = createRequest();
  (req.parameters as Record<string, string>).replicaCount = "3";
  const e = await codeOf(service(store).createVolume(req, ctx()));
  assert.equal(e.code, status.INVALID_ARGUMENT);
  assert.match(e.message, /unknown StorageClass parameter "replicaCount"/);
  assert.deepEqual(store.writes, []);
});

test("CreateVolume with a multi-node access mode is INVALID_ARGUMENT", async () => {
  const e = await codeOf(
    service().createVolume(createRequest({ volume_capabilities: [cap("MULTI_NODE_MULTI_WRITER")] }), ctx()),
  );
  assert.equal(e.code, status.INVALID_ARGUMENT);
  assert.match(e.message, /MULTI_NODE_MULTI_WRITER/);
});

test("CreateVolume without a name, or without capabilities, is INVALID_ARGUMENT naming the field", async () => {
  const noName = await codeOf(service().createVolume(createRequest({ name: "" }), ctx()));
  assert.equal(noName.code, status.INVALID_ARGUMENT);
  assert.match(noName.message, /^name: required/);
  const noCaps = await codeOf(service().createVolume(createRequest({ volume_capabilities: [] }), ctx()));
  assert.match(noCaps.message, /^volume_capabilities: required/);
});

test("CreateVolume from a snapshot or clone is INVALID_ARGUMENT", async () => {
  const e = await codeOf(
    service().createVolume(createRequest({ volume_content_source: { volume: { volume_id: "a/b" } } }), ctx()),
  );
  assert.equal(e.code, status.INVALID_ARGUMENT);
});

test("CreateVolume for a name held by a HASanTarget the driver did not make is ALREADY_EXISTS", async () => {
  const store = new FakeStore();
  store.put({
    apiVersion: "hasan.dev/v1alpha1",
    kind: "HASanTarget",
    metadata: { name: "pvc-0b7c6f2e-1a2b-4c3d-8e9f-001122334455", namespace: "apps", uid: "u" },
    spec: { capacity: "1Gi" },
  });
  assert.equal(
    (await codeOf(service(store).createVolume(createRequest(), ctx()))).code,
    status.ALREADY_EXISTS,
  );
});

test("DeleteVolume of an unknown or malformed id succeeds and deletes nothing", async () => {
  const store = new FakeStore();
  const s = service(store);
  assert.deepEqual(await s.deleteVolume({ volume_id: "apps/nope" }), {});
  assert.deepEqual(await s.deleteVolume({ volume_id: "not an id" }), {});
  assert.deepEqual(store.writes, []);
});

test("DeleteVolume without a volume id is INVALID_ARGUMENT", async () => {
  assert.equal((await codeOf(service().deleteVolume({ volume_id: "" }))).code, status.INVALID_ARGUMENT);
});

test("DeleteVolume deletes the driver's HASanTarget but never one a user made", async () => {
  const store = new FakeStore();
  const s = service(store);
  await s.createVolume(createRequest(), ctx());
  store.put({
    apiVersion: "hasan.dev/v1alpha1",
    kind: "HASanTarget",
    metadata: { name: "db", namespace: "apps", uid: "u" },
    spec: { capacity: "1Gi" },
  });
  await s.deleteVolume({ volume_id: "apps/pvc-0b7c6f2e-1a2b-4c3d-8e9f-001122334455" });
  await s.deleteVolume({ volume_id: "apps/db" });
  assert.deepEqual(store.writes.slice(1), ["delete apps/pvc-0b7c6f2e-1a2b-4c3d-8e9f-001122334455"]);
  assert.ok(store.targets.has("apps/db"));
});

test("ControllerExpandVolume grows spec.capacity, never shrinks it, and asks for node expansion", async () => {
  const store = new FakeStore();
  const s = service(store);
  await s.createVolume(createRequest(), ctx());
  const id = "apps/pvc-0b7c6f2e-1a2b-4c3d-8e9f-001122334455";
  const grown = await s.expandVolume({ volume_id: id, capacity_range: { required_bytes: String(2 * Gi) } });
  assert.deepEqual(grown, { capacity_bytes: String(2 * Gi), node_expansion_required: true });
  const smaller = await s.expandVolume({ volume_id: id, capacity_range: { required_bytes: String(Gi) } });
  assert.deepEqual(smaller, { capacity_bytes: String(2 * Gi), node_expansion_required: true });
  assert.deepEqual(store.writes.slice(1), [`capacity ${id} 2048Mi`]);
});

test("ControllerExpandVolume of a missing volume is NOT_FOUND; without capacity_range INVALID_ARGUMENT", async () => {
  const s = service();
  assert.equal(
    (await codeOf(s.expandVolume({ volume_id: "apps/x", capacity_range: { required_bytes: "1" } }))).code,
    status.NOT_FOUND,
  );
  assert.equal((await codeOf(s.expandVolume({ volume_id: "apps/x" }))).code, status.INVALID_ARGUMENT);
});

test("ValidateVolumeCapabilities confirms single-node Filesystem and Block, refuses multi-node with a message", async () => {
  const s = service();
  await s.createVolume(createRequest(), ctx());
  const id = "apps/pvc-0b7c6f2e-1a2b-4c3d-8e9f-001122334455";
  const okBlock = (await s.validateVolumeCapabilities({
    volume_id: id,
    volume_capabilities: [{ block: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } }],
  })) as { confirmed?: unknown };
  assert.ok(okBlock.confirmed);
  const multi = (await s.validateVolumeCapabilities({
    volume_id: id,
    volume_capabilities: [cap("MULTI_NODE_READER_ONLY")],
  })) as { confirmed?: unknown; message?: string };
  assert.equal(multi.confirmed, undefined);
  assert.match(multi.message ?? "", /one node at a time/);
  assert.equal(
    (await codeOf(s.validateVolumeCapabilities({ volume_id: "apps/none", volume_capabilities: [cap()] })))
      .code,
    status.NOT_FOUND,
  );
});

test("ListVolumes pages through the driver's volumes with tokens and leaves out other HASanTargets", async () => {
  const store = new FakeStore();
  const s = service(store);
  for (const n of ["pvc-a", "pvc-b", "pvc-c"]) await s.createVolume(createRequest({ name: n }), ctx());
  store.put({
    apiVersion: "hasan.dev/v1alpha1",
    kind: "HASanTarget",
    metadata: { name: "db", namespace: "apps", uid: "u" },
    spec: { capacity: "1Gi" },
  });
  type Page = { entries: { volume: { volume_id: string } }[]; next_token: string };
  const first = (await s.listVolumes({ max_entries: 2 })) as Page;
  assert.deepEqual(
    first.entries.map((e) => e.volume.volume_id),
    ["apps/pvc-a", "apps/pvc-b"],
  );
  const rest = (await s.listVolumes({ starting_token: first.next_token })) as Page;
  assert.deepEqual(
    rest.entries.map((e) => e.volume.volume_id),
    ["apps/pvc-c"],
  );
  assert.equal(rest.next_token, "");
  assert.equal((await codeOf(s.listVolumes({ starting_token: "bogus" }))).code, status.ABORTED);
});

test("a second call for a volume while the first still runs is ABORTED", async () => {
  const store = new FakeStore();
  store.becomesReadyAfterGets = 1_000_000;
  const s = service(store, 200);
  const first = s.createVolume(createRequest(), ctx());
  const second = await codeOf(s.createVolume(createRequest(), ctx()));
  assert.equal(second.code, status.ABORTED);
  assert.match(second.message, /already in progress/);
  await codeOf(first);
});
