// The PromQL scanner the monitoring end-to-end test uses to check each part of a dashboard query or
// alert on its own: operands of and/or/unless, comparisons removed, grouping labels, selectors.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  groupingLabels,
  metricSelectors,
  setOperands,
  unwrap,
  withoutComparison,
} from "../../support/promql-parts.js";

describe("PromQL parts", () => {
  it("splits at top-level set operators only, with the labels each operand is joined on", () => {
    const e = `max by (namespace, target, node) (x{state="Synchronizing"}) == 1
      unless on (namespace, target, node)
      max by (namespace, target, node) (rate(y[10m])) > 0`;
    assert.deepEqual(setOperands(e), [
      {
        expr: 'max by (namespace, target, node) (x{state="Synchronizing"}) == 1',
        joinLabels: ["namespace", "target", "node"],
      },
      {
        expr: "max by (namespace, target, node) (rate(y[10m])) > 0",
        joinLabels: ["namespace", "target", "node"],
      },
    ]);
    assert.deepEqual(
      setOperands("a and on () b or vector(0)").map((o) => o.expr),
      ["a", "b", "vector(0)"],
    );
    // Inside parentheses, and inside a label value, "and" is not an operator of the whole.
    assert.deepEqual(setOperands('max(a and b) + c{x="p and q"}'), [
      { expr: 'max(a and b) + c{x="p and q"}', joinLabels: [] },
    ]);
    assert.deepEqual(setOperands("(p) and on (i) (q == 1)"), [
      { expr: "p", joinLabels: ["i"] },
      { expr: "q == 1", joinLabels: ["i"] },
    ]);
  });

  it("removes a final comparison with a number and looks inside absent()", () => {
    assert.equal(withoutComparison('max by (a) (x{p="D"}) == 1'), 'max by (a) (x{p="D"})');
    assert.equal(withoutComparison("sum(rate(x[10m])) == 0"), "sum(rate(x[10m]))");
    assert.equal(withoutComparison("count(x == 1) > 0"), "count(x == 1)");
    assert.equal(withoutComparison("absent(max(x) == 1)"), "max(x)");
    assert.equal(withoutComparison("(a > bool 3)"), "a");
    // A comparison of two vectors, or inside a label matcher, stays.
    assert.equal(withoutComparison("a > b"), "a > b");
    assert.equal(withoutComparison('a{x!="1"}'), 'a{x!="1"}');
    assert.equal(unwrap("(a) + (b)"), "(a) + (b)");
  });

  it("finds grouping labels and metric selectors", () => {
    const e =
      'histogram_quantile(0.5, sum by (le, namespace) (rate(h_bucket{kind="write"}[2m]))) and on (namespace) (max by (namespace) (s{state="Working"}) == 1)';
    assert.deepEqual(groupingLabels(e), ["namespace"]);
    assert.deepEqual(metricSelectors(e), ['h_bucket{kind="write"}', 's{state="Working"}']);
    assert.deepEqual(
      metricSelectors("max by (pod, instance) (process_resident_memory_bytes and on (instance) l)"),
      ["process_resident_memory_bytes", "l"],
    );
    assert.deepEqual(metricSelectors("sum(rate(x[5m])) or on () vector(0)"), ["x"]);
  });
});
