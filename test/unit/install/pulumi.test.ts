// The Pulumi component with Pulumi's mocks (no engine, no cluster): what it declares and the
// checks it makes before declaring anything.
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";

interface Declared {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}
const declared: Declared[] = [];

pulumi.runtime.setMocks(
  {
    newResource: (a) => {
      declared.push({ type: a.type, name: a.name, inputs: a.inputs as Record<string, unknown> });
      const state: Record<string, unknown> = { ...(a.inputs as Record<string, unknown>) };
      if (a.type === "kubernetes:helm.sh/v3:Release") {
        state.status = { namespace: state.namespace, status: "deployed", name: state.name };
      }
      return { id: `${a.name}-id`, state };
    },
    call: (a) => a.inputs as Record<string, unknown>,
  },
  "hasan",
  "test",
  false,
);

// Imported after setMocks so every resource goes to the mocks.
const { HasanOperator, HasanOperatorValuesError, HASanTarget, HASanTargetSpecError, defaultChartPath } =
  await import("../../../operator/pulumi/index.js");

const value = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply(resolve));
const settle = async () => {
  // Resource registration is asynchronous; let the mocks see everything declared so far.
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

describe("Pulumi component", () => {
  before(() => {
    declared.length = 0;
  });

  it("finds the chart of this repository", () => {
    assert.ok(existsSync(path.join(defaultChartPath(), "Chart.yaml")), defaultChartPath());
  });

  it("HasanOperator installs the chart as a Helm release with the given values", async () => {
    const op = new HasanOperator("hasan", {
      namespace: "storage-system",
      values: { operator: { replicas: 3, watchNamespace: "san" }, webhook: { failurePolicy: "Fail" } },
    });
    assert.equal(await value(op.namespace), "storage-system");
    assert.equal(await value(op.status), "deployed");
    await settle();
    const component = declared.find((d) => d.type === "hasan:index:HasanOperator");
    assert.ok(component, "a HasanOperator component");
    const release = declared.find((d) => d.type === "kubernetes:helm.sh/v3:Release" && d.name === "hasan");
    assert.ok(release, "a helm.v3.Release");
    assert.equal(release.inputs.chart, defaultChartPath());
    assert.equal(release.inputs.namespace, "storage-system");
    assert.equal(release.inputs.createNamespace, true);
    assert.equal(release.inputs.name, "hasan");
    assert.equal(release.inputs.atomic, true);
    assert.deepEqual(release.inputs.values, {
      operator: { replicas: 3, watchNamespace: "san" },
      webhook: { failurePolicy: "Fail" },
    });
  });

  it("HasanOperator refuses values the chart's schema refuses, before declaring anything", async () => {
    await settle();
    const before = declared.length;
    assert.throws(
      () => new HasanOperator("bad", { values: { operator: { replicas: 0 } } }),
      (e: unknown) => e instanceof HasanOperatorValuesError && /values\.operator\.replicas/.test(e.message),
    );
    assert.throws(
      // A misspelt key is a mistake, not a value to pass through silently.
      () => new HasanOperator("typo", { values: { operator: { replica: 2 } } as never }),
      HasanOperatorValuesError,
    );
    await settle();
    assert.equal(declared.filter((d) => d.name === "bad" || d.name === "typo").length, 0);
    assert.ok(declared.length >= before);
  });

  it("HASanTarget declares the custom resource with its typed spec", async () => {
    const spec = {
      capacity: "10Gi",
      auth: { chapSecretRef: { name: "db-chap" }, mutual: false },
      replication: { resyncRateLimit: "100Mi" },
      export: { persistentVolume: { reclaimPolicy: "Retain" as const, fsType: "xfs" } },
    };
    const t = new HASanTarget("db", { name: "db", namespace: "san", spec });
    assert.equal(await value(t.apiVersion), "hasan.dev/v1alpha1");
    assert.equal(await value(t.kind), "HASanTarget");
    await settle();
    const cr = declared.find((d) => d.type === "kubernetes:hasan.dev/v1alpha1:HASanTarget");
    assert.ok(cr, JSON.stringify(declared.map((d) => d.type)));
    assert.deepEqual(cr.inputs.metadata, { name: "db", namespace: "san" });
    assert.deepEqual(cr.inputs.spec, spec);
  });

  it("HASanTarget refuses a spec the CRD would refuse, naming the field", () => {
    assert.throws(
      () => new HASanTarget("x", { namespace: "san", spec: { capacity: "lots" } }),
      (e: unknown) => e instanceof HASanTargetSpecError && /spec\.capacity/.test(e.message),
    );
    assert.throws(
      () =>
        new HASanTarget("y", {
          namespace: "san",
          spec: { capacity: "1Gi", splitBrainResolution: { discard: "c" as "a" } },
        }),
      /spec\.splitBrainResolution\.discard/,
    );
  });
});
