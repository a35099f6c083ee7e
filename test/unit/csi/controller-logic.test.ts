import { test } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { CsiError } from "../../../operator/csi/errors.js";
import {
  capacityFits,
  capacityFor,
  DEFAULT_CAPACITY,
  MiB,
} from "../../../operator/csi/controller/capacity.js";
import { MAX_TARGET_NAME, parseVolumeId, targetNameFor } from "../../../operator/csi/controller/naming.js";
import { parseParameters } from "../../../operator/csi/controller/parameters.js";
import {
  desiredTarget,
  readinessOf,
  volumeContextOf,
  wwidOf,
} from "../../../operator/csi/controller/volume.js";
import { naaFromSerial } from "../../../target/scsi/logical-unit.js";
import { HASanTargetSpecSchema } from "../../../operator/api/spec.js";
import type { HASanTarget } from "../../../operator/api/target.js";
import { readyStatus } from "./fake-store.js";

function codeOf(f: () => unknown): { code: number; message: string } {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof CsiError, String(e));
    return { code: e.code, message: e.message };
  }
  assert.fail("expected an error");
}
const range = (required: bigint, limit = 0n) => ({ required_bytes: required, limit_bytes: limit });

test("parameters: every known key with good values parses; the PVC metadata keys are accepted", () => {
  const p = parseParameters({
    storageClassName: "local-path",
    resyncRateLimit: "100Mi",
    fsType: "xfs",
    peerTls: "db-peer-tls",
    "csi.storage.k8s.io/pvc/name": "data",
    "csi.storage.k8s.io/pvc/namespace": "apps",
    "csi.storage.k8s.io/pv/name": "pvc-1",
  });
  assert.equal(p.fsType, "xfs");
  assert.equal(p["csi.storage.k8s.io/pvc/namespace"], "apps");
});

test("parameters: two unknown keys are INVALID_ARGUMENT naming both and listing the known ones", () => {
  const e = codeOf(() => parseParameters({ replicas: "2", fstype: "ext4" }));
  assert.equal(e.code, status.INVALID_ARGUMENT);
  assert.match(e.message, /unknown StorageClass parameters "fstype", "replicas"/);
  assert.match(e.message, /fsType, peerRecords, peerTls, resyncRateLimit, storageClassName/);
});

test("parameters: fsType btrfs is INVALID_ARGUMENT naming fsType", () => {
  const e = codeOf(() => parseParameters({ fsType: "btrfs" }));
  assert.equal(e.code, status.INVALID_ARGUMENT);
  assert.match(e.message, /fsType/);
});

test("parameters: resyncRateLimit 'fast' and 1.5 bytes are INVALID_ARGUMENT", () => {
  assert.equal(codeOf(() => parseParameters({ resyncRateLimit: "fast" })).code, status.INVALID_ARGUMENT);
  assert.equal(codeOf(() => parseParameters({ resyncRateLimit: "1.5" })).code, status.INVALID_ARGUMENT);
});

test("parameters: a storageClassName with upper case is INVALID_ARGUMENT", () => {
  assert.match(codeOf(() => parseParameters({ storageClassName: "Fast" })).message, /storageClassName/);
});

test("capacity: 1000 bytes rounds up to 1 MiB; 10 MiB + 1 byte to 11 MiB; none to the default", () => {
  assert.equal(capacityFor(range(1000n)), MiB);
  assert.equal(capacityFor(range(10n * MiB + 1n)), 11n * MiB);
  assert.equal(capacityFor(undefined), DEFAULT_CAPACITY);
  assert.equal(capacityFor(range(0n, 64n * MiB)), 64n * MiB, "a limit below the default caps it");
});

test("capacity: limit below required is INVALID_ARGUMENT; rounding above the limit is OUT_OF_RANGE", () => {
  assert.equal(codeOf(() => capacityFor(range(2n * MiB, MiB))).code, status.INVALID_ARGUMENT);
  assert.equal(codeOf(() => capacityFor(range(MiB + 1n, MiB + 2n))).code, status.OUT_OF_RANGE);
  assert.equal(codeOf(() => capacityFor(range(-1n))).code, status.INVALID_ARGUMENT);
});

test("capacity: an existing size fits a range when within [required, limit]", () => {
  assert.ok(capacityFits(2n * MiB, range(MiB)));
  assert.ok(!capacityFits(2n * MiB, range(MiB, MiB)));
  assert.ok(!capacityFits(MiB, range(2n * MiB)));
});

test("names: a PV name from external-provisioner is the HASanTarget name as it is", () => {
  assert.equal(
    targetNameFor("pvc-0b7c6f2e-1a2b-4c3d-8e9f-001122334455"),
    "pvc-0b7c6f2e-1a2b-4c3d-8e9f-001122334455",
  );
});

test("names: a long name with upper case becomes a short DNS label, the same every time, distinct per name", () => {
  const long = `sanity-controller-create-maxlen-0123ABCD-${"a".repeat(90)}`;
  const n = targetNameFor(long);
  assert.ok(n.length <= MAX_TARGET_NAME, n);
  assert.match(n, /^[a-z]([-a-z0-9]*[a-z0-9])?$/);
  assert.equal(targetNameFor(long), n);
  assert.notEqual(targetNameFor(`${long}b`), n);
  assert.match(targetNameFor("0-start"), /^[a-z]/);
});

test("volume ids: <namespace>/<name> parses; anything else does not", () => {
  assert.deepEqual(parseVolumeId("apps/pvc-1"), { namespace: "apps", name: "pvc-1" });
  for (const bad of ["pvc-1", "a/b/c", "Apps/x", "apps/", "/x", "some-vol-id"])
    assert.equal(parseVolumeId(bad), undefined, bad);
});

const request = {
  volumeName: "pvc-1",
  targetName: "pvc-1",
  namespace: "apps",
  capacityBytes: 1536n * MiB,
  parameters: parseParameters({
    storageClassName: "local-path",
    resyncRateLimit: "50Mi",
    peerTls: "peer-tls",
    peerRecords: "Authenticated",
    fsType: "xfs",
    "csi.storage.k8s.io/pvc/name": "data-db-0",
    "csi.storage.k8s.io/pvc/namespace": "apps",
  }),
};

test("desired target: capacity in MiB, backing class, reclaim Delete, resync rate, peer TLS and records, no auth, no export", () => {
  const m = desiredTarget(request);
  assert.deepEqual(m.spec, {
    capacity: "1536Mi",
    storage: { storageClassName: "local-path", reclaimPolicy: "Delete" },
    replication: {
      resyncRateLimit: "50Mi",
      tls: { secretRef: { name: "peer-tls" } },
      records: "Authenticated",
    },
  });
  assert.ok(HASanTargetSpecSchema.safeParse(m.spec).success, "the spec passes the CRD's own schema");
  assert.deepEqual(m.metadata.labels, {
    "csi.hasan.dev/driver": "iscsi.hasan.dev",
    "csi.hasan.dev/pvc-name": "data-db-0",
    "csi.hasan.dev/pvc-namespace": "apps",
  });
  assert.equal(m.metadata.annotations["csi.hasan.dev/volume-name"], "pvc-1");
  assert.equal(
    m.metadata.annotations["csi.hasan.dev/parameters"],
    '{"fsType":"xfs","peerRecords":"Authenticated","peerTls":"peer-tls","resyncRateLimit":"50Mi","storageClassName":"local-path"}',
  );
});

function made(status?: HASanTarget["status"]): HASanTarget {
  const m = desiredTarget(request);
  const t: HASanTarget = { ...m, metadata: { ...m.metadata, uid: "0b7c6f2e-1a2b-4c3d-8e9f-001122334455" } };
  return status ? { ...t, status } : t;
}

test("readiness: no status is not ready; Ready and Synchronized is; Ready after an earlier sync still is", () => {
  assert.equal(readinessOf(made()).ready, false);
  const ready = made(readyStatus(made()));
  assert.equal(readinessOf(ready).ready, true);
  const degraded = structuredClone(ready);
  degraded.status!.conditions![1] = {
    ...degraded.status!.conditions![1]!,
    status: "False",
    reason: "PartnerLost",
  };
  assert.equal(readinessOf(degraded).ready, true);
  const fresh = structuredClone(ready);
  fresh.status!.conditions![1] = {
    ...fresh.status!.conditions![1]!,
    status: "False",
    reason: "NotYetSynchronized",
  };
  assert.equal(readinessOf(fresh).ready, false);
});

test("volume context: IQN, both portals, LUN 0, the WWID the target reports, the CHAP Secret and fsType", () => {
  const t = made(readyStatus(made()));
  assert.deepEqual(volumeContextOf(t), {
    iqn: "iqn.2024-01.dev.hasan:apps.pvc-1",
    portals: "10.214.0.10:3260,10.214.0.11:3260",
    lun: "0",
    wwid: wwidOf(t),
    chapSecretName: "pvc-1-chap",
    fsType: "xfs",
  });
});

test("WWID: 3 then the NAA designator of VPD 0x83 for the serial made from the uid", () => {
  const t = made();
  assert.equal(wwidOf(t), `3${naaFromSerial("0b7c6f2e1a2b4c3d8e9f001122334455").toString("hex")}`);
  assert.match(wwidOf(t), /^36[0-9a-f]{31}$/);
});
