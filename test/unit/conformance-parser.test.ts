import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConformanceOutput } from "../support/iscsi-test-cu.js";

const sample = `
Suite: CompareAndWrite
  Test: Simple ...    [SKIPPED] COMPAREANDWRITE is not implemented.
    [SKIPPED] COMPAREANDWRITE is not implemented.
passed
Suite: GetLBAStatus
  Test: Simple ...passed
  Test: BeyondEol ...    [FAILED] GET_LBA_STATUS successful but should have failed
FAILED
Suite: iSCSIdatasn
  Test: iSCSIDataSnInvalid ...FAILED
    1. test_iscsi_datasn_invalid.c:95  - CU_FAIL("unexpected")
Run Summary:    Type  Total    Ran Passed Failed Inactive
               tests    230    230    222      8        0
`;

test("skips, passes and failures are told apart, named SUITE.TEST", () => {
  const r = parseConformanceOutput(sample);
  assert.deepEqual(
    r.outcomes.map((o) => [o.name, o.result]),
    [
      ["CompareAndWrite.Simple", "skipped"],
      ["GetLBAStatus.Simple", "passed"],
      ["GetLBAStatus.BeyondEol", "failed"],
      ["iSCSIdatasn.iSCSIDataSnInvalid", "failed"],
    ],
  );
  assert.equal(r.passed, 1);
  assert.equal(r.failed, 2);
  assert.equal(r.skipped, 1);
});
