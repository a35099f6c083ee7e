import { TargetStatusSchema, type TargetStatus } from "../../target/agent/status-schema.js";

export type AgentRead = { ok: true; status: TargetStatus } | { ok: false; error: string };

/** GET /status of a target agent, validated against the shared contract. Never throws. */
export async function readAgentStatus(baseUrl: string, timeoutMs = 1500): Promise<AgentRead> {
  try {
    const res = await fetch(`${baseUrl}/status`, { signal: AbortSignal.timeout(timeoutMs) });
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

/** POST /split-brain/resolve on an agent. */
export async function resolveSplitBrain(baseUrl: string, discard: "a" | "b"): Promise<string> {
  const res = await fetch(`${baseUrl}/split-brain/resolve`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ discard }),
    signal: AbortSignal.timeout(5000),
  });
  const body = (await res.json().catch(() => ({}))) as { message?: string; error?: string };
  if (!res.ok) throw new Error(body.error ?? `split-brain/resolve answered ${res.status}`);
  return body.message ?? "resolution accepted";
}

/** Reads agents at most once per maxAgeMs per URL; concurrent callers share one request. */
export class AgentStatusCache {
  private readonly entries = new Map<string, { at: number; read: Promise<AgentRead> }>();

  constructor(
    private readonly read: (url: string) => Promise<AgentRead> = readAgentStatus,
    private readonly now: () => number = Date.now,
  ) {}

  get(url: string, maxAgeMs: number): Promise<AgentRead> {
    const e = this.entries.get(url);
    if (e && this.now() - e.at <= maxAgeMs) return e.read;
    const read = this.read(url);
    this.entries.set(url, { at: this.now(), read });
    return read;
  }

  forget(url: string): void {
    this.entries.delete(url);
  }
}
