// The operator's /metrics: what a dashboard and the alerts read, in a format Prometheus accepts.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { OperatorMetrics } from "../../../operator/http/metrics.js";

function promtoolCheck(text: string): string {
  const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  assert.equal(r.error, undefined, "promtool (Debian package prometheus) must be installed: hack/deps.sh");
  // Exit 0: clean; 3: only lint remarks (printed); anything else: the text does not parse.
  assert.ok(r.status === 0 || r.status === 3, `promtool check metrics failed (${r.status}): ${r.stderr}`);
  return `${r.stdout}${r.stderr}`;
}

test("reconcile durations are a histogram, errors are per target, the queue has depth and wait time", async () => {
  const m = new OperatorMetrics();
  let depth = 3;
  m.watchQueue(() => depth);
  m.observeReconcile("san/db", 0.02, true);
  m.observeReconcile("san/ok", 0.02, true);
  m.observeReconcile("san/db", 0.3, false);
  m.queueWait.observe(0.004);
  const text = await m.render();
  assert.match(text, /^hasan_operator_reconcile_duration_seconds_bucket\{le="0.025",result="success"\} 2$/m);
  assert.match(text, /^hasan_operator_reconcile_duration_seconds_count\{result="error"\} 1$/m);
  assert.match(text, /^hasan_operator_reconciles_total\{result="success"\} 2$/m);
  assert.match(text, /^hasan_operator_reconciles_total\{result="error"\} 1$/m);
  assert.match(text, /^hasan_operator_reconcile_errors_total\{namespace="san",target="db"\} 1$/m);
  // A target that never failed has its series at 0, so increase() sees its first error.
  assert.match(text, /^hasan_operator_reconcile_errors_total\{namespace="san",target="ok"\} 0$/m);
  assert.match(text, /^hasan_operator_workqueue_depth 3$/m);
  assert.match(text, /^hasan_operator_workqueue_wait_seconds_bucket\{le="0.005"\} 1$/m);
  depth = 0;
  assert.match(await m.render(), /^hasan_operator_workqueue_depth 0$/m);
  const lint = promtoolCheck(text);
  assert.doesNotMatch(lint, /error/i, lint);
});

test("each pair's node states and phase are one series per value, labelled namespace and target, and go with the target", async () => {
  const m = new OperatorMetrics();
  m.setNodeStates("san/db", { a: "Working", b: "Pending" });
  m.setPhase("san/db", "Resyncing");
  m.setNodeStates("other/x", { a: "Failed", b: "Unknown" });
  let text = await m.render();
  assert.match(text, /^hasan_target_node_state\{namespace="san",target="db",node="a",state="Working"\} 1$/m);
  assert.match(text, /^hasan_target_node_state\{namespace="san",target="db",node="a",state="Failed"\} 0$/m);
  assert.match(text, /^hasan_target_node_state\{namespace="san",target="db",node="b",state="Pending"\} 1$/m);
  assert.match(text, /^hasan_target_phase\{namespace="san",target="db",phase="Resyncing"\} 1$/m);
  assert.match(text, /^hasan_target_phase\{namespace="san",target="db",phase="Ready"\} 0$/m);
  m.forgetTarget("san/db");
  text = await m.render();
  assert.doesNotMatch(text, /target="db"/);
  assert.match(text, /target="x",node="a",state="Failed"\} 1/);
});

test("the process itself: CPU, memory, event loop lag, like every Node.js service", async () => {
  const text = await new OperatorMetrics().render();
  for (const name of [
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "nodejs_eventloop_lag_seconds",
    "nodejs_heap_size_used_bytes",
  ]) {
    assert.match(text, new RegExp(`^${name}[ {]`, "m"), name);
  }
  assert.match(text, /^hasan_operator_leader 0$/m);
});
