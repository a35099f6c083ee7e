import { test } from "node:test";
import assert from "node:assert/strict";
import { driftPath } from "../../../operator/reconcile/apply.js";

const drifted = (desired: unknown, live: unknown) => driftPath(desired, live) !== undefined;

const service = {
  apiVersion: "v1",
  kind: "Service",
  metadata: { name: "db-a", namespace: "prod", labels: { "hasan.dev/node": "a" } },
  spec: { ports: [{ name: "iscsi", port: 3260, targetPort: 3260 }], publishNotReadyAddresses: true },
};

test("what the server adds is not drift", () => {
  const live = {
    ...service,
    metadata: {
      ...service.metadata,
      uid: "u",
      resourceVersion: "9",
      labels: { ...service.metadata.labels, extra: "x" },
    },
    spec: {
      ...service.spec,
      clusterIP: "10.214.0.7",
      ports: [{ name: "iscsi", port: 3260, targetPort: 3260, protocol: "TCP" }],
      sessionAffinity: "None",
    },
  };
  assert.equal(drifted(service, live), false);
});

test("a changed, removed or added-to-a-list field the operator sets is drift", () => {
  assert.equal(drifted(service, { ...service, metadata: { ...service.metadata, labels: {} } }), true);
  assert.equal(
    drifted(service, { ...service, spec: { ...service.spec, publishNotReadyAddresses: false } }),
    true,
  );
  assert.equal(
    drifted(service, {
      ...service,
      spec: { ...service.spec, ports: [...service.spec.ports, { name: "x", port: 1, targetPort: 1 }] },
    }),
    true,
  );
  assert.equal(drifted(service, undefined), true);
});

test("numbers spelled as strings by the server and Secret stringData against base64 data", () => {
  assert.equal(
    drifted({ spec: { port: 3260, size: "64Mi" } }, { spec: { port: "3260", size: "64Mi" } }),
    false,
  );
  const secret = { kind: "Secret", stringData: { secret: "s3cr3t" } };
  assert.equal(
    drifted(secret, { kind: "Secret", data: { secret: Buffer.from("s3cr3t").toString("base64") } }),
    false,
  );
  assert.equal(
    drifted(secret, { kind: "Secret", data: { secret: Buffer.from("other").toString("base64") } }),
    true,
  );
});

test("the drift check names the first field that drifted", () => {
  assert.equal(
    driftPath(service, { ...service, spec: { ...service.spec, publishNotReadyAddresses: false } }),
    "spec.publishNotReadyAddresses",
  );
  assert.equal(driftPath(service, { ...service, spec: { ...service.spec, ports: [] } }), "spec.ports");
  assert.equal(
    driftPath(service, { ...service, spec: { ...service.spec, ports: [{ name: "iscsi", port: 3261 }] } }),
    "spec.ports[0].port",
  );
  assert.equal(driftPath(service, undefined), "(root)");
  assert.equal(driftPath(service, service), undefined);
});

test("a zero value the server omitted (omitempty) is not drift; another value is", () => {
  const pv = { spec: { iscsi: { lun: 0, readOnly: false, fsType: "ext4" } } };
  assert.equal(driftPath(pv, { spec: { iscsi: { fsType: "ext4" } } }), undefined);
  assert.equal(driftPath(pv, { spec: { iscsi: { readOnly: true, fsType: "ext4" } } }), "spec.iscsi.readOnly");
  assert.equal(driftPath(pv, { spec: { iscsi: { lun: 3, fsType: "ext4" } } }), "spec.iscsi.lun");
});
