import { z } from "zod";
import { VerifyStatusSchema } from "../../../target/agent/status-schema.js";
import { quantityBytes } from "../../api/quantity.js";
import { VERIFY_NOW_ANNOTATION } from "../../api/spec.js";
import { AgentAuthError, agentHeaders } from "../../status/agent-client.js";
import { recordEvent } from "../../status/events.js";
import { agentUrl } from "../../status/observe.js";
import type { Step } from "../pass.js";
import {
  decideVerify,
  freshestVerify,
  verifyEndedEvent,
  verifyRunStatus,
  type VerifyInput,
} from "../verify-decision.js";

/**
 * Starts an online verify when spec.verify.schedule says it is due or the verify-now annotation
 * changed (only while both nodes are Working), reads the run into status.verify and records an
 * Event when one ends (verify-decision.ts). Needs: agents, children.
 */
export const scheduleVerify: Step = async (pass, c) => {
  const t = pass.target;
  const created = t.metadata.creationTimestamp;
  const input: VerifyInput = {
    now: new Date(),
    spec: t.spec.verify,
    requested: t.metadata.annotations?.[VERIFY_NOW_ANNOTATION],
    previous: t.status?.verify,
    created: created ? new Date(created) : undefined,
    working: pass.facts.bothWorking,
    agent: freshestVerify(pass.nodes),
  };
  const decision = decideVerify(input);
  let started: { runId?: string; requested?: string } | null = null;
  if (decision.start) {
    const node = pass.nodes.find((n) => n.agent?.replication?.state === "Working");
    const url =
      node &&
      agentUrl(c.options.agentAddress, pass.children.pods[node.name], pass.children.serviceIPs[node.name]);
    const rate = t.spec.verify?.rateLimit;
    const body = {
      ...(t.spec.verify?.source ? { source: t.spec.verify.source } : {}),
      ...(rate !== undefined ? { rateBytesPerSecond: quantityBytes(rate) } : {}),
    };
    if (node && url) {
      try {
        const r = await c.tokens.call(t.metadata, async (token) => {
          const answer = await postVerify(url, body, agentHeaders(token));
          if (answer.status === 401 || answer.status === 403) throw new AgentAuthError(answer.message);
          return answer;
        });
        if (r.status !== 202) throw new Error(r.message);
        started = {
          ...(r.runId ? { runId: r.runId } : {}),
          ...(decision.why === "requested" ? { requested: decision.requested } : {}),
        };
        pass.log.info({ node: node.name, why: decision.why, runId: r.runId, ...body }, "verify started");
      } catch (e) {
        pass.log.warn({ node: node.name, err: (e as Error).message }, "verify not started");
      }
    }
  }
  pass.verify = verifyRunStatus(input, started);
  const ended = verifyEndedEvent(input.previous, input.agent);
  if (ended && !started) {
    pass.log.info({ reason: ended.reason }, ended.message);
    await recordEvent(c.client, t, ended.type, ended.reason, ended.message, c.options.identity).catch(
      (e: unknown) => pass.log.warn({ err: e }, "could not record event"),
    );
  }
};

/** POST /verify on an agent: 202 with the run, or the agent's error. */
export async function postVerify(
  baseUrl: string,
  body: { source?: string; rateBytesPerSecond?: number },
  headers: Record<string, string>,
  timeoutMs = 30_000,
): Promise<{ status: number; message: string; runId?: string }> {
  const res = await fetch(`${baseUrl}/verify`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const answer: unknown = await res.json().catch(() => ({}));
  const ok = VerifyStatusSchema.safeParse(answer);
  if (res.status === 202 && ok.success) {
    return {
      status: res.status,
      message: ok.data.message,
      ...(ok.data.runId ? { runId: ok.data.runId } : {}),
    };
  }
  const error = z.object({ error: z.string() }).safeParse(answer);
  return { status: res.status, message: error.success ? error.data.error : `answered ${res.status}` };
}
