import { TargetStatusSchema, type TargetStatus } from "../../target/agent/status-schema.js";

export type AgentRead =
  | { ok: true; status: TargetStatus }
  /** authFailed: the agent refused the token (401 or 403): read the token again before retrying */
  | { ok: false; error: string; authFailed?: true };

/** Headers that carry the pair's agent token, when there is one. */
export function agentHeaders(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

const refused = (status: number) => status === 401 || status === 403;

/** GET /status of a target agent, validated against the shared contract. Never throws. */
export async function readAgentStatus(baseUrl: string, timeoutMs = 1500, token?: string): Promise<AgentRead> {
  try {
    const res = await fetch(`${baseUrl}/status`, {
      headers: agentHeaders(token),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (refused(res.status)) {
      await res.body?.cancel();
      return {
        ok: false,
        error: `GET /status answered ${res.status}: the agent refused ${token === undefined ? "a request without a token" : "the pair's agent token"}`,
        authFailed: true,
      };
    }
    if (!res.ok) return { ok: false, error: `GET /status answered ${res.status}` };
    const parsed = TargetStatusSchema.safeParse(await res.json());
    if (!parsed.success)
      return { ok: false, error: `invalid /status body: ${parsed.error.issues[0]?.message}` };
    return { ok: true, status: parsed.data };
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    return { ok: false, error: err.cause?.code ?? err.cause?.message ?? err.message };
  }
}

/** The agent refused the token (401/403) of a POST. */
export class AgentAuthError extends Error {
  override name = "AgentAuthError";
}

/** POST /split-brain/resolve on an agent. */
export async function resolveSplitBrain(
  baseUrl: string,
  discard: "a" | "b",
  token?: string,
): Promise<string> {
  const res = await fetch(`${baseUrl}/split-brain/resolve`, {
    method: "POST",
    headers: { "content-type": "application/json", ...agentHeaders(token) },
    body: JSON.stringify({ discard }),
    signal: AbortSignal.timeout(5000),
  });
  const body = (await res.json().catch(() => ({}))) as { message?: string; error?: string };
  if (refused(res.status))
    throw new AgentAuthError(body.error ?? `split-brain/resolve answered ${res.status}`);
  if (!res.ok) throw new Error(body.error ?? `split-brain/resolve answered ${res.status}`);
  return body.message ?? "resolution accepted";
}

/** Reads agents at most once per maxAgeMs per URL; concurrent callers share one request. */
export class AgentStatusCache {
  private readonly entries = new Map<string, { at: number; read: Promise<AgentRead> }>();

  constructor(
    private readonly read: (url: string, token?: string) => Promise<AgentRead> = (url, token) =>
      readAgentStatus(url, undefined, token),
    private readonly now: () => number = Date.now,
  ) {}

  get(url: string, maxAgeMs: number, token?: string): Promise<AgentRead> {
    const e = this.entries.get(url);
    if (e && this.now() - e.at <= maxAgeMs) return e.read;
    const read = this.read(url, token);
    this.entries.set(url, { at: this.now(), read });
    return read;
  }

  forget(url: string): void {
    this.entries.delete(url);
  }
}
