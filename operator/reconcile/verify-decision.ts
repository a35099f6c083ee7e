/**
 * When a pair's online verify starts, what status.verify says, and the Event when one ends: pure
 * functions of spec.verify, the verify-now annotation, the previous status and what the agents
 * report (the step that acts on them is steps/verify.ts).
 */
import type { VerifyStatus } from "../../target/agent/status-schema.js";
import type { VerifySpec } from "../api/spec.js";
import type { VerifyRunStatus } from "../api/status.js";
import { nextRun, parseSchedule } from "../api/verify-schedule.js";
import type { ObservedNode } from "../pair/observed.js";
import { formatBytes } from "../pair/format.js";

export interface VerifyInput {
  now: Date;
  spec: VerifySpec | undefined;
  /** the verify-now annotation's value */
  requested: string | undefined;
  previous: VerifyRunStatus | undefined;
  /** the target's creationTimestamp: a schedule's first run counts from it */
  created: Date | undefined;
  /** both nodes Working (Synchronized) */
  working: boolean;
  /** the run the agents report (freshestVerify) */
  agent: VerifyStatus | undefined;
}

export type VerifyStart =
  { start: false; why: string } | { start: true; why: "requested" | "scheduled"; requested?: string };

/** The run the nodes report: the one that started last (both hold the sequencer's record). */
export function freshestVerify(nodes: readonly ObservedNode[]): VerifyStatus | undefined {
  let best: VerifyStatus | undefined;
  for (const n of nodes) {
    const v = n.agent?.replication?.verify;
    if (!v || v.state === "idle") continue;
    if (
      !best ||
      (v.start ?? "") > (best.start ?? "") ||
      (v.start === best.start && (v.state !== "running") > (best.state !== "running")) ||
      (v.start === best.start && v.state === best.state && v.bytesChecked > best.bytesChecked)
    )
      best = v;
  }
  return best;
}

/** When the schedule next starts a verify (undefined: no schedule). */
export function scheduledRun(i: VerifyInput): Date | undefined {
  const text = i.spec?.schedule;
  if (!text) return undefined;
  const s = parseSchedule(text);
  if ("error" in s) return undefined;
  const lastStart = i.agent?.start ?? i.previous?.lastStart;
  if (lastStart) return nextRun(s, new Date(lastStart)) ?? undefined;
  // Never ran: counted from when the schedule was first seen (kept in the status) or the target made.
  if (i.previous?.nextRun && i.previous.schedule === text) return new Date(i.previous.nextRun);
  return nextRun(s, i.created ?? i.now) ?? undefined;
}

export function decideVerify(i: VerifyInput): VerifyStart {
  if (i.agent?.state === "running") return { start: false, why: "a verify is running" };
  const requested = i.requested !== undefined && i.requested !== i.previous?.lastRequest;
  const next = scheduledRun(i);
  const due = next !== undefined && i.now.getTime() >= next.getTime();
  if (!requested && !due) return { start: false, why: "not due" };
  if (!i.working) return { start: false, why: "the pair is not Synchronized (both nodes Working)" };
  return requested
    ? { start: true, why: "requested", requested: i.requested! }
    : { start: true, why: "scheduled" };
}

/** status.verify after this pass; undefined when no verify was configured, asked for or run. */
export function verifyRunStatus(
  i: VerifyInput,
  started: { runId?: string; requested?: string } | null,
): VerifyRunStatus | undefined {
  const a = started ? undefined : i.agent;
  const prev = i.previous;
  if (!i.spec && i.requested === undefined && !i.agent && !prev) return undefined;
  const out: VerifyRunStatus = {
    running: started !== null || a?.state === "running",
    bytesChecked: a?.bytesChecked ?? (started ? 0 : (prev?.bytesChecked ?? 0)),
    regionsMismatched: a?.regionsMismatched ?? (started ? 0 : (prev?.regionsMismatched ?? 0)),
    regionsRepaired: a?.regionsRepaired ?? (started ? 0 : (prev?.regionsRepaired ?? 0)),
  };
  const runId = started?.runId ?? a?.runId ?? prev?.runId ?? undefined;
  if (runId) out.runId = runId;
  const lastStart = started ? i.now.toISOString() : (a?.start ?? prev?.lastStart);
  if (lastStart) out.lastStart = lastStart;
  const lastEnd = a ? (a.end ?? undefined) : started ? prev?.lastEnd : prev?.lastEnd;
  if (lastEnd) out.lastEnd = lastEnd;
  const result = a ? resultOf(a) : prev?.result;
  if (result) out.result = result;
  const message = a?.message ?? (started ? "verify started" : prev?.message);
  if (message) out.message = message;
  const lastRequest = started?.requested ?? prev?.lastRequest;
  if (lastRequest !== undefined) out.lastRequest = lastRequest;
  if (i.spec?.schedule) {
    out.schedule = i.spec.schedule;
    const next = scheduledRun(started ? { ...i, agent: undefined, previous: out } : i);
    if (next) out.nextRun = next.toISOString();
  }
  return out;
}

function resultOf(v: VerifyStatus): VerifyRunStatus["result"] | undefined {
  if (v.state === "failed") return "Failed";
  if (v.state !== "completed") return undefined;
  return v.regionsMismatched === 0 ? "Clean" : "Mismatch";
}

export interface VerifyEvent {
  type: "Normal" | "Warning";
  reason: "VerifyClean" | "VerifyMismatch" | "VerifyFailed";
  message: string;
}

/** The Event for a run that ended since the previous status (null when none did). */
export function verifyEndedEvent(
  previous: VerifyRunStatus | undefined,
  agent: VerifyStatus | undefined,
): VerifyEvent | null {
  if (!agent || agent.state === "running" || agent.state === "idle" || !agent.runId) return null;
  if (previous && previous.runId === agent.runId && !previous.running) return null;
  const took = agent.start && agent.end ? ` in ${seconds(agent.start, agent.end)}` : "";
  const checked = `${formatBytes(agent.bytesChecked)} compared${took}`;
  if (agent.state === "failed") {
    return {
      type: "Warning",
      reason: "VerifyFailed",
      message: `verify ${agent.runId} failed: ${agent.message} (${checked})`,
    };
  }
  if (agent.regionsMismatched === 0) {
    return {
      type: "Normal",
      reason: "VerifyClean",
      message: `verify ${agent.runId}: both copies identical (${checked})`,
    };
  }
  const regions = agent.mismatchedRegions.slice(0, 8).join(", ");
  const more = agent.regionsMismatched > 8 ? ", …" : "";
  return {
    type: "Warning",
    reason: "VerifyMismatch",
    message:
      `verify ${agent.runId}: ${agent.regionsMismatched} region${agent.regionsMismatched === 1 ? "" : "s"} ` +
      `of ${formatBytes(agent.regionSize)} differed ` +
      `(${regions}${more}); ${agent.regionsRepaired} repaired from node ${agent.source ?? "?"} (${checked})`,
  };
}

function seconds(from: string, to: string): string {
  const s = Math.max(0, Math.round((Date.parse(to) - Date.parse(from)) / 1000));
  return s < 120 ? `${s}s` : `${Math.round(s / 60)}m`;
}
