/**
 * On the local cluster, with the operator: the hasan.dev/verify-now annotation starts an online
 * verify of a Synchronized pair; status.verify reports it to the end (Clean, every byte checked)
 * and a Normal VerifyClean Event is recorded; the same value again starts nothing.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { OperatorHarness } from "./operator-harness.js";

const MiB = 1024 * 1024;
const name = "verify";
let h: OperatorHarness;

before(async () => {
  h = await OperatorHarness.create("hst-verify");
  await h.startOperator(["--status-poll-steady-ms", "1000"]);
});

after(async () => {
  await h?.cleanup();
});

async function verifyEvents(): Promise<{ type: string; reason: string; message: string }[]> {
  const list = await h.client.list<{
    type: string;
    reason: string;
    message: string;
    involvedObject: { name: string };
  }>("v1", "Event", h.namespace);
  return list.items.filter((x) => x.involvedObject.name === name && x.reason.startsWith("Verify"));
}

test("hasan.dev/verify-now starts a verify; status.verify and a VerifyClean Event report it", () =>
  h.guard(async () => {
    await h.applyTarget(name, { capacity: "64Mi", verify: { rateLimit: "32Mi" } });
    await h.waitSynchronized(name);
    const idle = (await h.target(name))?.status?.verify;
    assert.equal(idle?.running, false, "spec.verify without a schedule starts nothing by itself");
    assert.equal(idle?.runId, undefined);

    const annotate = await h.cluster.kubectl([
      "annotate",
      `hst/${name}`,
      "-n",
      h.namespace,
      "--overwrite",
      "hasan.dev/verify-now=first",
    ]);
    assert.equal(annotate.code, 0, annotate.stderr);
    const done = await h.waitFor(
      "status.verify reports a finished run",
      async () => {
        const v = (await h.target(name))?.status?.verify;
        return v && !v.running && v.result ? v : undefined;
      },
      120_000,
    );
    assert.equal(done.result, "Clean", JSON.stringify(done));
    assert.equal(done.bytesChecked, 64 * MiB);
    assert.equal(done.regionsMismatched, 0);
    assert.equal(done.lastRequest, "first");
    assert.ok(done.lastStart && done.lastEnd && done.runId);
    const events = await h.waitFor("the VerifyClean Event", async () => {
      const e = await verifyEvents();
      return e.length ? e : undefined;
    });
    assert.deepEqual(
      events.map((e) => [e.type, e.reason]),
      [["Normal", "VerifyClean"]],
    );
    assert.match(events[0]!.message, /both copies identical \(64 MiB compared/);

    // The same value again (a pass, a restart of the operator) starts nothing new.
    await new Promise((res) => setTimeout(res, 5000));
    assert.equal((await h.target(name))?.status?.verify?.runId, done.runId);
  }));
