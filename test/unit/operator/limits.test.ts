import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { HASanTargetSpecSchema } from "../../../operator/api/spec.js";
import { targetArgs } from "../../../operator/reconcile/desired-children.js";
import { parseServeArgs } from "../../../target/config.js";
import { target } from "./fixtures.js";

const observed = { serviceIPs: { a: "10.0.0.1", b: "10.0.0.2" }, bothWorking: true };

/** The pod's command line as the target would parse it, its mounted secret files replaced by local ones. */
function parsePodArgs(args: string[]) {
  const dir = mkdtempSync(path.join(tmpdir(), "hasan-limits-"));
  const local = args.slice(1).map((a) => {
    if (!a.startsWith("/etc/hasan/")) return a;
    const file = path.join(dir, a.replace(/\//g, "_"));
    writeFileSync(file, "0123456789abcdef0123456789abcdef\n");
    return file;
  });
  return parseServeArgs(local);
}

test("spec.limits become the target's flags, and the target parses them to the values asked for", () => {
  const t = target({
    limits: {
      maxConnections: 200,
      maxConnectionsPerSource: 10,
      writeMemory: "512Mi",
      sessionWriteMemory: "32Mi",
      loginTimeoutSeconds: 5,
      allowColdReset: true,
    },
  });
  const args = targetArgs(t, "a", "10.0.0.2", observed);
  const c = parsePodArgs(args);
  assert.equal(c.maxConnections, 200);
  assert.equal(c.maxConnectionsPerSource, 10);
  assert.equal(c.writeMemory, 512 * 1024 * 1024);
  assert.equal(c.sessionWriteMemory, 32 * 1024 * 1024);
  assert.equal(c.loginTimeout, 5);
  assert.equal(c.allowColdReset, true);
});

test("without spec.limits the target runs with its own defaults (no limit flags)", () => {
  const args = targetArgs(target(), "a", "10.0.0.2", observed);
  for (const flag of ["--max-connections", "--write-memory", "--session-write-memory", "--login-timeout"])
    assert.ok(!args.includes(flag), flag);
  assert.ok(!args.includes("--allow-cold-reset"));
  const c = parsePodArgs(args);
  assert.equal(c.maxConnections, 1024);
  assert.equal(c.allowColdReset, false);
});

test("limits a target would refuse are spec errors naming the field: per source above total, session memory below 16Mi or above the target's", () => {
  const issues = (limits: Record<string, unknown>) => {
    const r = HASanTargetSpecSchema.safeParse({ capacity: "1Gi", limits });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };
  assert.deepEqual(issues({ maxConnections: 10, maxConnectionsPerSource: 11 }), [
    "limits.maxConnectionsPerSource: cannot exceed maxConnections",
  ]);
  assert.deepEqual(issues({ sessionWriteMemory: "8Mi" }), [
    "limits.sessionWriteMemory: must be at least 16Mi (the largest write a target announces)",
  ]);
  assert.deepEqual(issues({ writeMemory: "32Mi", sessionWriteMemory: "64Mi" }), [
    "limits.sessionWriteMemory: cannot exceed writeMemory",
  ]);
  assert.equal(issues({ maxConnections: 0 }).length, 1);
  assert.deepEqual(issues({ maxConnections: 10, maxConnectionsPerSource: 10, writeMemory: "64Mi" }), []);
});
