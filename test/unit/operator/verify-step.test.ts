import { strict as assert } from "node:assert";
import { afterEach, describe, it } from "node:test";
import { pino } from "pino";
import type { VerifyStatus } from "../../../target/agent/status-schema.js";
import type { VerifyRunStatus } from "../../../operator/api/status.js";
import type { KubeClient } from "../../../operator/kit/kube-client.js";
import { pairFacts } from "../../../operator/pair/facts.js";
import type { ObservedNode } from "../../../operator/pair/observed.js";
import { startPass, type ReconcileContext } from "../../../operator/reconcile/pass.js";
import { scheduleVerify } from "../../../operator/reconcile/steps/verify.js";
import {
  decideVerify,
  verifyEndedEvent,
  verifyRunStatus,
  type VerifyInput,
} from "../../../operator/reconcile/verify-decision.js";
import type { AgentTokens } from "../../../operator/status/agent-token.js";
import { node, target } from "./fixtures.js";

const MiB = 1024 * 1024;
const now = new Date("2026-12-06T15:00:00.000Z");

function run(o: Partial<VerifyStatus> = {}): VerifyStatus {
  return {
    state: "completed",
    runId: "0123456789abcdef",
    source: "a",
    rateBytesPerSecond: 64 * MiB,
    start: "2026-12-05T15:00:00.000Z",
    end: "2026-12-05T15:10:00.000Z",
    totalBytes: 1024 * MiB,
    bytesChecked: 1024 * MiB,
    regionsMismatched: 0,
    regionsRepaired: 0,
    mismatchedRegions: [],
    regionSize: 256 * 1024,
    hash: "SHA-256",
    message: "both copies identical",
    ...o,
  };
}

function input(o: Partial<VerifyInput> = {}): VerifyInput {
  return {
    now,
    spec: { schedule: "24h" },
    requested: undefined,
    previous: undefined,
    created: new Date("2026-12-01T00:00:00.000Z"),
    working: true,
    agent: undefined,
    ...o,
  };
}

describe("when the operator starts a verify", () => {
  it("due: an interval passed since the last start (or since the target was made)", () => {
    assert.deepEqual(decideVerify(input({ agent: run({ start: "2026-12-05T14:59:00.000Z" }) })), {
      start: true,
      why: "scheduled",
    });
    assert.deepEqual(decideVerify(input()), { start: true, why: "scheduled" }, "never ran, made 5 days ago");
  });

  it("not due: the interval has not passed, a run is going, or no schedule and no request", () => {
    assert.deepEqual(decideVerify(input({ agent: run({ start: "2026-12-06T01:00:00.000Z" }) })), {
      start: false,
      why: "not due",
    });
    assert.deepEqual(decideVerify(input({ agent: run({ state: "running", end: null }) })), {
      start: false,
      why: "a verify is running",
    });
    assert.equal(decideVerify(input({ spec: undefined })).start, false);
    assert.equal(
      decideVerify(
        input({ spec: { schedule: "0 3 * * *" }, agent: run({ start: "2026-12-06T03:00:00.000Z" }) }),
      ).start,
      false,
    );
    assert.equal(
      decideVerify(
        input({ spec: { schedule: "0 3 * * *" }, agent: run({ start: "2026-12-05T03:00:00.000Z" }) }),
      ).start,
      true,
    );
  });

  it("not Working: a due or requested verify waits until both nodes are Working", () => {
    assert.deepEqual(decideVerify(input({ working: false })), {
      start: false,
      why: "the pair is not Synchronized (both nodes Working)",
    });
    assert.equal(decideVerify(input({ working: false, spec: undefined, requested: "x" })).start, false);
  });

  it("the verify-now annotation starts one once per new value, with or without a schedule", () => {
    const asked = input({ spec: undefined, requested: "2026-12-06T14:59" });
    assert.deepEqual(decideVerify(asked), { start: true, why: "requested", requested: "2026-12-06T14:59" });
    const handled: VerifyRunStatus = {
      ...verifyRunStatus(asked, { runId: "feedfeedfeedfeed", requested: "2026-12-06T14:59" })!,
    };
    assert.equal(handled.lastRequest, "2026-12-06T14:59");
    assert.equal(handled.running, true);
    assert.equal(decideVerify({ ...asked, previous: handled }).start, false, "the same value again: nothing");
    assert.equal(decideVerify({ ...asked, previous: handled, requested: "again" }).start, true);
  });
});

describe("status.verify and the Event when a run ends", () => {
  it("status carries the agent's run and the next scheduled start", () => {
    const s = verifyRunStatus(
      input({ agent: run({ start: "2026-12-06T10:00:00.000Z", end: "2026-12-06T10:05:00.000Z" }) }),
      null,
    );
    assert.deepEqual(s, {
      running: false,
      runId: "0123456789abcdef",
      lastStart: "2026-12-06T10:00:00.000Z",
      lastEnd: "2026-12-06T10:05:00.000Z",
      result: "Clean",
      bytesChecked: 1024 * MiB,
      regionsMismatched: 0,
      regionsRepaired: 0,
      message: "both copies identical",
      schedule: "24h",
      nextRun: "2026-12-07T10:00:00.000Z",
    });
    assert.equal(
      verifyRunStatus(input({ spec: undefined }), null),
      undefined,
      "nothing configured, nothing ran",
    );
  });

  it("VerifyClean (Normal) and VerifyMismatch (Warning) with the counts, once per run", () => {
    const clean = verifyEndedEvent(undefined, run());
    assert.deepEqual(clean, {
      type: "Normal",
      reason: "VerifyClean",
      message: "verify 0123456789abcdef: both copies identical (1.0 GiB compared in 10m)",
    });
    const mismatch = verifyEndedEvent(
      { running: true, runId: "0123456789abcdef", bytesChecked: 0, regionsMismatched: 0, regionsRepaired: 0 },
      run({ regionsMismatched: 3, regionsRepaired: 3, mismatchedRegions: [3, 100, 201] }),
    );
    assert.deepEqual(mismatch, {
      type: "Warning",
      reason: "VerifyMismatch",
      message:
        "verify 0123456789abcdef: 3 regions of 256 KiB differed (3, 100, 201); 3 repaired from node a (1.0 GiB compared in 10m)",
    });
    const reported: VerifyRunStatus = {
      running: false,
      runId: "0123456789abcdef",
      bytesChecked: 0,
      regionsMismatched: 0,
      regionsRepaired: 0,
    };
    assert.equal(verifyEndedEvent(reported, run()), null, "already reported");
    assert.equal(verifyEndedEvent(undefined, run({ state: "running" })), null);
    assert.equal(
      verifyEndedEvent(undefined, run({ state: "failed", message: "verify failed: EIO" }))?.reason,
      "VerifyFailed",
    );
  });
});

describe("the reconcile step", () => {
  const realFetch = globalThis.fetch;
  afterEach(() => {
    globalThis.fetch = realFetch;
  });

  function context(events: unknown[]): ReconcileContext {
    return {
      client: { create: async (o: unknown) => (events.push(o), o) } as unknown as KubeClient,
      options: { agentAddress: "service", identity: "op-1" },
      tokens: {
        call: (_o: unknown, fn: (t: string | undefined) => Promise<unknown>) => fn(undefined),
      } as unknown as AgentTokens,
    } as unknown as ReconcileContext;
  }

  function pass(
    nodes: [ObservedNode, ObservedNode],
    spec = { schedule: "24h", rateLimit: "8Mi", source: "b" as const },
  ) {
    const t = target({ verify: spec });
    t.metadata.creationTimestamp = "2026-12-01T00:00:00.000Z";
    const p = startPass(t, pino({ level: "silent" }));
    p.target = t;
    p.nodes = nodes;
    p.facts = pairFacts(nodes);
    p.children = { pods: {}, serviceIPs: { a: "10.0.0.1", b: "10.0.0.2" } };
    return p;
  }

  it("due and Working: POST /verify with the spec's source and rate; status says running", async () => {
    const posted: { url: string; body: unknown }[] = [];
    globalThis.fetch = (async (url: string, init: { body: string }) => {
      posted.push({ url, body: JSON.parse(init.body) });
      return new Response(JSON.stringify(run({ state: "running", runId: "feedfeedfeedfeed", end: null })), {
        status: 202,
      });
    }) as typeof fetch;
    const p = pass([node("a", { state: "Working" }), node("b", { state: "Working" })]);
    await scheduleVerify(p, context([]));
    assert.deepEqual(posted, [
      { url: "http://10.0.0.1:8080/verify", body: { source: "b", rateBytesPerSecond: 8 * MiB } },
    ]);
    assert.equal(p.verify?.running, true);
    assert.equal(p.verify?.runId, "feedfeedfeedfeed");
  });

  it("not Working: nothing is posted", async () => {
    let posts = 0;
    globalThis.fetch = (async () => {
      posts++;
      return new Response("{}", { status: 500 });
    }) as typeof fetch;
    const p = pass([node("a", { state: "Failed" }), node("b")]);
    await scheduleVerify(p, context([]));
    assert.equal(posts, 0);
    assert.equal(p.verify?.running, false);
  });

  it("a run that ended is recorded as an Event", async () => {
    const events: { reason?: string; type?: string; message?: string }[] = [];
    const a = node("a", { state: "Working" });
    a.agent!.replication!.verify = run({
      start: "2026-12-06T14:00:00.000Z",
      end: "2026-12-06T14:01:00.000Z",
      regionsMismatched: 1,
      regionsRepaired: 1,
      mismatchedRegions: [7],
    });
    const p = pass([a, node("b", { state: "Working" })]);
    p.target.status = {
      verify: {
        running: true,
        runId: "0123456789abcdef",
        bytesChecked: 0,
        regionsMismatched: 0,
        regionsRepaired: 0,
      },
    };
    await scheduleVerify(p, context(events));
    assert.equal(events.length, 1);
    assert.equal(events[0]!.type, "Warning");
    assert.equal(events[0]!.reason, "VerifyMismatch");
    assert.match(events[0]!.message!, /1 region of 256 KiB differed \(7\); 1 repaired from node a/);
    assert.equal(p.verify?.result, "Mismatch");
  });
});
