// The chart's generated files are what their sources say (stale files fail here), and the values
// schema accepts what the chart documents and refuses what it cannot render.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CRD_SOURCE, CRD_TEMPLATE, crdTemplate } from "../../../hack/gen-manifests.js";
import { VALUES_SCHEMA_PATH, valuesSchemaText } from "../../../hack/gen-values-schema.js";
import { ChartValuesSchema } from "../../../operator/pulumi/chart-values.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
const read = (p: string) => readFileSync(path.join(repoRoot, p), "utf8");

describe("chart generated files", () => {
  it("values.schema.json is generated from the zod schema (run make manifests-plain when this fails)", async () => {
    assert.equal(read(VALUES_SCHEMA_PATH), await valuesSchemaText());
  });

  it("templates/crd.yaml is crds/ wrapped for the chart (run make manifests-plain when this fails)", () => {
    assert.equal(read(CRD_TEMPLATE), crdTemplate(read(CRD_SOURCE)));
  });

  it("the CRD template keeps the whole CRD, adds the keep policy and sits behind crds.enabled", () => {
    const source = read(CRD_SOURCE);
    const tpl = crdTemplate(source);
    const lines = tpl.split("\n");
    assert.equal(lines[0], "{{- if .Values.crds.enabled }}");
    assert.equal(lines.at(-2), "{{- end }}");
    assert.match(
      tpl,
      /\{\{- if \.Values\.crds\.keep \}\}\n {2}annotations:\n.*\n {4}helm\.sh\/resource-policy: keep/,
    );
    // Every line of the CRD body (after metadata.name) is carried over unchanged and in order.
    const body = source.split("\n").filter((l) => !l.startsWith("#"));
    const after = body.slice(body.indexOf("spec:")).filter(Boolean);
    const start = lines.indexOf("spec:");
    assert.deepEqual(lines.slice(start, start + after.length), after);
  });

  it("refuses a CRD without metadata.name or with template delimiters", () => {
    assert.throws(() => crdTemplate("apiVersion: v1\nkind: X\nspec: {}\n"), /metadata\.name/);
    assert.throws(() => crdTemplate("metadata:\n  name: x\nspec:\n  d: '{{ x }}'\n"), /template delimiters/);
  });
});

describe("chart values schema", () => {
  it("accepts the chart's documented settings", () => {
    const r = ChartValuesSchema.safeParse({
      image: { repository: "registry.example/hasan", tag: "1.2.3", pullPolicy: "Always" },
      crds: { enabled: false, keep: true },
      operator: {
        replicas: 3,
        watchNamespace: "san",
        leaderElection: { enabled: true, id: "hasan" },
        agentAddress: "service",
        statusPollActiveMs: 500,
        podDisruptionBudget: { enabled: true, minAvailable: "50%" },
        tolerations: [{ key: "storage", operator: "Exists" }],
      },
      webhook: {
        failurePolicy: "Fail",
        certManager: { enabled: true, issuerRef: { name: "ca", kind: "ClusterIssuer" } },
      },
      metrics: { serviceMonitor: { enabled: true, interval: "15s", labels: { release: "prom" } } },
    });
    assert.equal(r.success, true, JSON.stringify(r.error?.issues));
  });

  for (const [what, values, where] of [
    ["zero replicas", { operator: { replicas: 0 } }, "operator.replicas"],
    ["an unknown agent address", { operator: { agentAddress: "node" } }, "operator.agentAddress"],
    ["a misspelt key", { operator: { replica: 2 } }, "operator"],
    ["a poll period below 100 ms", { operator: { statusPollSteadyMs: 10 } }, "operator.statusPollSteadyMs"],
    ["a privileged webhook port", { webhook: { port: 443 } }, "webhook.port"],
    ["an unknown failure policy", { webhook: { failurePolicy: "Retry" } }, "webhook.failurePolicy"],
    [
      "a bad scrape interval",
      { metrics: { serviceMonitor: { interval: "often" } } },
      "metrics.serviceMonitor.interval",
    ],
  ] as const) {
    it(`refuses ${what}`, () => {
      const r = ChartValuesSchema.safeParse(values);
      assert.equal(r.success, false);
      assert.ok(
        r.error.issues.some(
          (i) => i.path.join(".") === where || (i.code === "unrecognized_keys" && i.path.join(".") === where),
        ),
        JSON.stringify(r.error.issues),
      );
    });
  }
});
