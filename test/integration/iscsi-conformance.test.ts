/**
 * The iSCSI-level families of libiscsi's conformance suite (CmdSN window, DataSN checking,
 * residuals, task management) against the real target process. The full suite runs in
 * conformance.test.ts; these guard the transport on their own and take seconds.
 */
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runConformance } from "../support/iscsi-test-cu.js";
import { startTarget, type TargetHandle } from "../support/target-process.js";

const FAMILIES = ["iSCSIcmdsn", "iSCSIdatasn", "iSCSIResiduals", "iSCSITMF"];

let dir: string;
let target: TargetHandle;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "hasan-iscsi-conformance-"));
  target = await startTarget({ dir, size: "64Mi" });
});

after(async () => {
  await target?.stop();
  rmSync(dir, { recursive: true, force: true });
});

for (const family of FAMILIES) {
  test(`libiscsi ${family} passes`, async () => {
    const r = await runConformance([target.url(0)], { test: `ALL.${family}`, timeoutMs: 300_000 });
    const failed = r.outcomes.filter((o) => o.result === "failed");
    assert.deepEqual(
      failed.map((o) => `${o.name}: ${o.detail}`),
      [],
      r.raw.slice(-4000),
    );
    assert.ok(r.passed > 0, `${family}: no test passed`);
  });
}
