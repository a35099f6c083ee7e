// The generated CRD on the real API server: it is accepted (structural), and the API server refuses
// bad specs with messages that name the field and the rule.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { OperatorHarness } from "./operator-harness.js";
import { KubeApiError } from "../../operator/kit/kube-client.js";

let h: OperatorHarness;

before(async () => {
  h = await OperatorHarness.create("hst-crd");
});

after(async () => {
  await h?.cleanup();
});

async function refusal(name: string, spec: Record<string, unknown>): Promise<string> {
  try {
    await h.applyTarget(name, spec);
  } catch (e) {
    assert.ok(e instanceof KubeApiError, String(e));
    assert.equal(e.code, 422, e.message);
    return e.message;
  }
  assert.fail(`spec ${JSON.stringify(spec)} was accepted`);
}

test("creation refuses malformed fields with their path", async () => {
  assert.match(await refusal("bad-size", { capacity: "lots" }), /spec\.capacity/);
  assert.match(await refusal("bad-iqn", { capacity: "1Gi", iqn: "IQN.Bad" }), /spec\.iqn/);
  assert.match(
    await refusal("bad-policy", {
      capacity: "1Gi",
      export: { persistentVolume: { reclaimPolicy: "Recycle" } },
    }),
    /spec\.export\.persistentVolume\.reclaimPolicy/,
  );
  assert.match(await refusal("no-capacity", {}), /spec\.capacity: Required value/);
  assert.match(
    await refusal("small-pvc", { capacity: "2Gi", storage: { size: "1Gi" } }),
    /spec\.storage\.size must be larger than spec\.capacity/,
  );
});

test("limits the target would refuse are refused at admission: per-source connections above the total, session write memory below 16Mi or above the target's", async () => {
  assert.match(
    await refusal("bad-conns", {
      capacity: "1Gi",
      limits: { maxConnections: 10, maxConnectionsPerSource: 20 },
    }),
    /spec\.limits\.maxConnectionsPerSource cannot exceed spec\.limits\.maxConnections/,
  );
  assert.match(
    await refusal("small-session", { capacity: "1Gi", limits: { sessionWriteMemory: "1Mi" } }),
    /spec\.limits\.sessionWriteMemory must be at least 16Mi/,
  );
  assert.match(
    await refusal("big-session", {
      capacity: "1Gi",
      limits: { writeMemory: "32Mi", sessionWriteMemory: "64Mi" },
    }),
    /spec\.limits\.sessionWriteMemory cannot exceed spec\.limits\.writeMemory/,
  );
  await h.applyTarget("good-limits", {
    capacity: "1Gi",
    limits: {
      maxConnections: 100,
      maxConnectionsPerSource: 100,
      writeMemory: "64Mi",
      sessionWriteMemory: "64Mi",
    },
  });
});

test("capacity below 1Mi or not a whole number of 512-byte blocks is refused by the API server", async () => {
  for (const capacity of ["1000Ki", 1048577, "1.0000001Gi", "512"]) {
    assert.match(
      await refusal("odd-size", { capacity }),
      /spec\.capacity must be at least 1Mi and a whole number of 512-byte blocks/,
      `capacity ${capacity}`,
    );
  }
  await h.applyTarget("block-size", { capacity: 1048576 + 512 });
  await h.applyTarget("fraction", { capacity: "1.5Gi" });
  assert.match(await refusal("odd-fraction", { capacity: "1.0001Gi" }), /whole number of 512-byte blocks/);
});

test("capacity grows but never shrinks; int and string quantities compare by value", async () => {
  await h.applyTarget("grow", { capacity: "1Gi" });
  await h.applyTarget("grow", { capacity: 2147483648 });
  assert.equal((await h.target("grow"))?.spec.capacity, 2147483648);
  assert.match(await refusal("grow", { capacity: "1Gi" }), /spec\.capacity is grow-only/);
  await h.applyTarget("grow", { capacity: "2Gi" }); // same size, other spelling
});

test("iqn, storage class and PV name are immutable once set", async () => {
  await h.applyTarget("fixed", {
    capacity: "1Gi",
    iqn: "iqn.2024-01.dev.hasan:test.fixed",
    storage: { storageClassName: "local" },
    export: { persistentVolume: { name: "fixed-pv" } },
  });
  assert.match(
    await refusal("fixed", {
      capacity: "1Gi",
      iqn: "iqn.2024-01.dev.hasan:test.other",
      storage: { storageClassName: "local" },
      export: { persistentVolume: { name: "fixed-pv" } },
    }),
    /spec\.iqn is immutable/,
  );
  assert.match(
    await refusal("fixed", {
      capacity: "1Gi",
      iqn: "iqn.2024-01.dev.hasan:test.fixed",
      storage: { storageClassName: "fast" },
      export: { persistentVolume: { name: "fixed-pv" } },
    }),
    /spec\.storage\.storageClassName is immutable/,
  );
  assert.match(
    await refusal("fixed", {
      capacity: "1Gi",
      storage: { storageClassName: "local" },
      export: { persistentVolume: { name: "fixed-pv" } },
    }),
    /spec\.iqn is immutable/,
  );
});

test("the status subresource and printer columns are served", async () => {
  await h.applyTarget("cols", { capacity: "1Gi" });
  const out = await h.cluster.kubectlOk(["get", "hst", "cols", "-n", h.namespace]);
  assert.match(out.split("\n")[0] ?? "", /NAME\s+PHASE\s+A\s+B\s+SYNC\s+AGE/);
  // No operator watches this namespace: the list says so instead of showing an empty phase.
  assert.match(out.split("\n")[1] ?? "", /^cols\s+Unreconciled\s/);
  // A fresh discovery cache: kubectl keeps one for minutes, from before the CRD had categories.
  const cacheDir = mkdtempSync(path.join(tmpdir(), "kubectl-cache-"));
  for (const category of ["hasan", "storage"]) {
    const listed = await h.cluster.kubectlOk([
      "get",
      category,
      "-n",
      h.namespace,
      "-o",
      "name",
      `--cache-dir=${cacheDir}`,
    ]);
    assert.match(listed, /hasantarget\.hasan\.dev\/cols/, `kubectl get ${category}`);
  }
});

test("CHAP can only be turned off on its own: chap Disabled with chapSecretRef or mutual is refused", async () => {
  assert.match(
    await refusal("off-with-secret", {
      capacity: "1Gi",
      auth: { chap: "Disabled", chapSecretRef: { name: "x" } },
    }),
    /spec\.auth\.chapSecretRef.*cannot be set with spec\.auth\.chap: Disabled/,
  );
  assert.match(
    await refusal("off-mutual", { capacity: "1Gi", auth: { chap: "Disabled", mutual: true } }),
    /spec\.auth\.mutual.*needs CHAP/,
  );
  assert.match(await refusal("off-typo", { capacity: "1Gi", auth: { chap: "Off" } }), /spec\.auth\.chap/);
  await h.applyTarget("off", { capacity: "1Gi", auth: { chap: "Disabled" } });
  await h.applyTarget("on", { capacity: "1Gi", auth: { chap: "Required", chapSecretRef: { name: "x" } } });
});
