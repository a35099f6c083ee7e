// The driver's services over a real unix socket, as a sidecar calls them: requests decoded by
// proto-loader from csi.proto, errors arriving as gRPC status codes.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { ControllerService } from "../../../operator/csi/controller/service.js";
import { identityHandlers } from "../../../operator/csi/identity.js";
import { csiClients, loadCsiServices } from "../../../operator/csi/proto.js";
import { serve, shutdown } from "../../../operator/csi/server.js";
import { parseCsiArgs } from "../../../operator/csi/config.js";
import { FakeStore } from "./fake-store.js";

const dir = mkdtempSync(path.join(tmpdir(), "hasan-csi-"));
const endpoint = `unix://${path.join(dir, "csi.sock")}`;
const log = pino({ level: "silent" });
const store = new FakeStore();
const services = loadCsiServices();
const server = await serve(
  endpoint,
  [
    { definition: services.Identity, handlers: identityHandlers("1.2.3", async () => true) },
    {
      definition: services.Controller,
      handlers: new ControllerService(
        store,
        { defaultNamespace: "csi", createWaitMs: 1000, pollMs: 1 },
        log,
      ).handlers(),
    },
  ],
  log,
);
const clients = csiClients();
const controller = new clients.Controller(endpoint, grpc.credentials.createInsecure());
const identity = new clients.Identity(endpoint, grpc.credentials.createInsecure());

after(async () => {
  controller.close();
  identity.close();
  await shutdown(server);
  rmSync(dir, { recursive: true, force: true });
});

function call(client: grpc.Client, method: string, req: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const f = (
      client as unknown as Record<string, (r: object, cb: (e: unknown, r: unknown) => void) => void>
    )[method]!;
    f.call(client, req, (e, r) => (e ? reject(e) : resolve(r as Record<string, unknown>)));
  });
}

const capability = { mount: { fs_type: "ext4" }, access_mode: { mode: "SINGLE_NODE_WRITER" } };

test("over gRPC: CreateVolume with an unknown StorageClass parameter is INVALID_ARGUMENT naming it", async () => {
  await assert.rejects(
    call(controller, "CreateVolume", {
      name: "pvc-9",
      capacity_range: { required_bytes: 1 << 20 },
      volume_capabilities: [capability],
      parameters: { storageClassName: "local-path", replicationFactor: "3" },
    }),
    (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
      assert.match(e.details, /unknown StorageClass parameter "replicationFactor"/);
      return true;
    },
  );
  assert.deepEqual(store.writes, []);
});

test("over gRPC: CreateVolume makes a volume; int64 capacity comes back as a decimal string", async () => {
  const r = await call(controller, "CreateVolume", {
    name: "pvc-10",
    capacity_range: { required_bytes: 5 * (1 << 20) + 1 },
    volume_capabilities: [capability],
    parameters: { "csi.storage.k8s.io/pvc/namespace": "apps" },
  });
  const v = r.volume as { volume_id: string; capacity_bytes: string };
  assert.equal(v.volume_id, "apps/pvc-10");
  assert.equal(v.capacity_bytes, String(6 * (1 << 20)));
});

test("over gRPC: a method the driver does not offer (GetCapacity) is UNIMPLEMENTED", async () => {
  await assert.rejects(
    call(controller, "GetCapacity", {}),
    (e: grpc.ServiceError) => e.code === grpc.status.UNIMPLEMENTED,
  );
});

test("over gRPC: GetPluginInfo names the driver and its version", async () => {
  const r = await call(identity, "GetPluginInfo", {});
  assert.equal(r.name, "iscsi.hasan.dev");
  assert.equal(r.vendor_version, "1.2.3");
});

test("flags: node mode without --node-id is refused naming the flag", () => {
  assert.throws(() => parseCsiArgs(["--mode", "node"], {}), /--node-id: is required in node mode/);
});

test("flags: a tcp endpoint off the loopback is refused; a loopback one, a unix one and the environment are taken", () => {
  for (const e of [
    "tcp://0.0.0.0:10000",
    "tcp://10.0.0.5:10000",
    "tcp://127.0.0.1:70000",
    "http://127.0.0.1:1",
  ])
    assert.throws(() => parseCsiArgs(["--mode", "controller", "--endpoint", e], {}), /--endpoint/, e);
  assert.equal(
    parseCsiArgs(["--mode", "controller", "--endpoint", "tcp://127.0.0.1:10000"], {}).endpoint,
    "tcp://127.0.0.1:10000",
  );
  const c = parseCsiArgs(["--mode", "node"], {
    HASAN_CSI_NODE_ID: "n1",
    HASAN_CSI_ENDPOINT: "unix:///csi/x.sock",
  });
  assert.equal(c.nodeId, "n1");
  assert.equal(c.endpoint, "unix:///csi/x.sock");
});

test("over gRPC: a loopback tcp endpoint serves the same services", async () => {
  const probe = await import("node:net").then(
    (net) =>
      new Promise<number>((resolve) => {
        const s = net.createServer().listen(0, "127.0.0.1", () => {
          const port = (s.address() as { port: number }).port;
          s.close(() => resolve(port));
        });
      }),
  );
  const tcp = await serve(
    `tcp://127.0.0.1:${probe}`,
    [{ definition: services.Identity, handlers: identityHandlers("1.2.3", async () => true) }],
    log,
  );
  const client = new clients.Identity(`127.0.0.1:${probe}`, grpc.credentials.createInsecure());
  try {
    assert.equal((await call(client, "GetPluginInfo", {})).name, "iscsi.hasan.dev");
  } finally {
    client.close();
    await shutdown(tcp);
  }
});
