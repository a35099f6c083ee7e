import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { CRD_FILE, renderCrdYaml } from "../../../operator/api/crd-yaml.js";
import { hasanTargetCrd } from "../../../operator/api/crd.js";
import { structuralProblems, toStructural } from "../../../operator/api/structural.js";
import { HASanTargetSpecSchema } from "../../../operator/api/spec.js";
import { z } from "zod";
import { SAMPLES, sampleFile } from "../../../operator/api/samples.js";
import { toYaml } from "../../../operator/api/yaml.js";

type Node = Record<string, unknown>;
const root = (): Node => {
  const versions = (hasanTargetCrd().spec as Node).versions as Node[];
  return (versions[0]!.schema as Node).openAPIV3Schema as Node;
};
const prop = (node: Node, ...path: string[]): Node =>
  path.reduce((n, p) => (n.properties as Record<string, Node>)[p]!, node);

test("crds/ matches the zod schemas (run `make manifests` when this fails)", () => {
  assert.equal(readFileSync(CRD_FILE, "utf8"), renderCrdYaml());
});

test("the generated schema is structural: no $ref, unions, additionalProperties:false; a type everywhere", () => {
  assert.deepEqual(structuralProblems(root()), []);
  const text = JSON.stringify(root());
  for (const forbidden of [
    '"$ref"',
    '"definitions"',
    '"patternProperties"',
    '"uniqueItems"',
    '"propertyNames"',
  ]) {
    assert.ok(!text.includes(forbidden), forbidden);
  }
});

test("the structural walker reports each forbidden construct with its path", () => {
  const bad = {
    type: "object",
    properties: {
      a: { $ref: "#/x", type: "string" },
      b: { type: "object", additionalProperties: false },
      c: { anyOf: [{ type: "string" }, { type: "integer" }] },
      d: { type: "array", items: { type: "string" }, uniqueItems: true },
      e: {
        type: "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["k"],
        items: { type: "object" },
      },
    },
  };
  assert.deepEqual(structuralProblems(bad), [
    "<root>.a: $ref",
    "<root>.b: additionalProperties: false",
    "<root>.c: no type",
    "<root>.c: anyOf outside int-or-string",
    "<root>.d: uniqueItems",
    "<root>.e: list-map key k not required",
  ]);
});

test("the post-processor refuses unions it cannot make structural and strips what zod adds", () => {
  const union = z.toJSONSchema(z.object({ u: z.union([z.string(), z.boolean()]) }), {
    target: "openapi-3.0",
  });
  assert.throws(() => toStructural(union as Node), /<root>\.u: anyOf \(a union\) is not structural/);
  const strict = z.toJSONSchema(z.strictObject({ s: z.string() }), { target: "openapi-3.0" });
  assert.equal(toStructural(strict as Node).additionalProperties, undefined);
});

test("quantities are int-or-string; conditions and nodes are list-maps", () => {
  const spec = prop(root(), "spec");
  for (const q of [
    prop(spec, "capacity"),
    prop(spec, "storage", "size"),
    prop(spec, "replication", "resyncRateLimit"),
  ]) {
    assert.equal(q["x-kubernetes-int-or-string"], true);
    assert.equal(q.type, undefined);
  }
  const status = prop(root(), "status");
  assert.equal(prop(status, "conditions")["x-kubernetes-list-type"], "map");
  assert.deepEqual(prop(status, "conditions")["x-kubernetes-list-map-keys"], ["type"]);
  assert.deepEqual(prop(status, "nodes")["x-kubernetes-list-map-keys"], ["name"]);
});

test("CEL rules name the field and the rule: grow-only capacity, immutable iqn and storage class", () => {
  const spec = prop(root(), "spec");
  const messages = [
    ...((spec["x-kubernetes-validations"] as Node[]) ?? []),
    ...((prop(spec, "capacity")["x-kubernetes-validations"] as Node[]) ?? []),
  ].map((r) => String(r.message));
  for (const expected of [
    /spec\.capacity is grow-only/,
    /spec\.iqn is immutable/,
    /spec\.storage\.storageClassName is immutable/,
    /spec\.storage\.size is grow-only/,
  ]) {
    assert.ok(
      messages.some((m) => expected.test(m)),
      `${expected} in ${messages.join(" | ")}`,
    );
  }
});

test("status subresource, short name hst and printer columns for pair state and sync", () => {
  const crd = hasanTargetCrd().spec as Node;
  assert.deepEqual((crd.names as Node).shortNames, ["hst"]);
  const version = (crd.versions as Node[])[0]!;
  assert.deepEqual(version.subresources, { status: {} });
  const columns = (version.additionalPrinterColumns as Node[]).map((c) => c.name);
  for (const c of ["Phase", "A", "B", "Sync", "Age"]) assert.ok(columns.includes(c), c);
});

test("samples in crds/samples are fresh and pass the spec schema", () => {
  for (const [name, sample] of Object.entries(SAMPLES)) {
    assert.equal(readFileSync(sampleFile(name), "utf8"), toYaml(sample), `${sampleFile(name)} is stale`);
    const parsed = HASanTargetSpecSchema.safeParse(sample.spec);
    assert.ok(parsed.success, `${name}: ${parsed.error?.message}`);
  }
});

test("the spec schema refuses bad sizes and IQNs with the field's path", () => {
  const bad = HASanTargetSpecSchema.safeParse({ capacity: "1.5", iqn: "IQN.bad" });
  assert.equal(bad.success, false);
  const paths = bad.error!.issues.map((i) => i.path.join("."));
  assert.ok(paths.includes("capacity"), paths.join());
  assert.ok(paths.includes("iqn"), paths.join());
});

test("capacity the target cannot serve is refused: under 1Mi or not a multiple of 512 bytes", () => {
  for (const capacity of ["512Ki", "1000001", 1048577]) {
    const r = HASanTargetSpecSchema.safeParse({ capacity });
    assert.equal(r.success, false, String(capacity));
    assert.match(r.error!.issues[0]!.message, /at least 1Mi and a multiple of 512 bytes/);
  }
  assert.ok(HASanTargetSpecSchema.safeParse({ capacity: "1Mi" }).success);
});

test("every field of the CRD has a description, so kubectl explain explains all of them", () => {
  const missing: string[] = [];
  const walk = (node: Node, path: string): void => {
    for (const [key, child] of Object.entries((node.properties ?? {}) as Record<string, Node>)) {
      if (typeof child.description !== "string" || child.description.length < 3)
        missing.push(`${path}.${key}`);
      walk(child, `${path}.${key}`);
    }
    if (node.items) walk(node.items as Node, `${path}[]`);
    if (typeof node.additionalProperties === "object") walk(node.additionalProperties as Node, `${path}{}`);
  };
  walk(root(), "");
  // The API server forbids a description on metadata (kubectl explain describes it anyway).
  assert.deepEqual(missing, [".metadata"]);
});

test("kubectl get hasan and kubectl get storage list HASanTargets (CRD categories)", () => {
  const names = (hasanTargetCrd().spec as Node).names as Node;
  assert.deepEqual(names.categories, ["hasan", "storage"]);
});
