/**
 * The operator's side of the agent token: each pair's token is read from its Secret
 * (`<name>-agent`, agent-token-secret.ts) once and cached by the target's uid; an agent that
 * refuses it (401/403) makes the operator read the Secret again and retry once.
 */
import type { KubeClient } from "../kit/kube-client.js";
import { AGENT_TOKEN_KEY, agentTokenSecretName } from "../pair/names.js";
import type { AgentRead, AgentStatusCache } from "./agent-client.js";
import { AgentAuthError } from "./agent-client.js";

/** Which target a token belongs to. */
export interface TokenOwner {
  namespace: string;
  name: string;
  uid: string;
}

export class AgentTokens {
  private readonly cache = new Map<string, Promise<string | undefined>>();

  constructor(private readonly client: KubeClient) {}

  /** The pair's token, or undefined while its Secret does not exist (the agent then answers 401). */
  get(owner: TokenOwner): Promise<string | undefined> {
    let p = this.cache.get(owner.uid);
    if (!p) {
      p = this.readSecret(owner);
      this.cache.set(owner.uid, p);
      // An error or a missing Secret is not cached: the next call asks again.
      p.then(
        (v) => v === undefined && this.cache.delete(owner.uid),
        () => this.cache.delete(owner.uid),
      );
    }
    return p;
  }

  forget(uid: string): void {
    this.cache.delete(uid);
  }

  private async readSecret(owner: TokenOwner): Promise<string | undefined> {
    const s = await this.client.getOrUndefined<{ data?: Record<string, string> }>(
      "v1",
      "Secret",
      owner.namespace,
      agentTokenSecretName({ metadata: owner } as Parameters<typeof agentTokenSecretName>[0]),
    );
    const b64 = s?.data?.[AGENT_TOKEN_KEY];
    if (!b64) return undefined;
    return Buffer.from(b64, "base64")
      .toString("utf8")
      .replace(/\r?\n$/, "");
  }

  /** GET /status through the cache with the pair's token; on 401/403 the token is read again once. */
  async readStatus(
    agents: AgentStatusCache,
    owner: TokenOwner,
    url: string,
    maxAgeMs: number,
  ): Promise<AgentRead> {
    const token = await this.get(owner).catch(() => undefined);
    const r = await agents.get(url, maxAgeMs, token);
    if (r.ok || !r.authFailed) return r;
    this.forget(owner.uid);
    agents.forget(url);
    const fresh = await this.get(owner).catch(() => undefined);
    if (fresh === token) return r;
    return await agents.get(url, maxAgeMs, fresh);
  }

  /** Runs a call that sends the token; on AgentAuthError the token is read again and the call retried once. */
  async call<T>(owner: TokenOwner, fn: (token: string | undefined) => Promise<T>): Promise<T> {
    const token = await this.get(owner);
    try {
      return await fn(token);
    } catch (e) {
      if (!(e instanceof AgentAuthError)) throw e;
      this.forget(owner.uid);
      const fresh = await this.get(owner);
      if (fresh === token) throw e;
      return await fn(fresh);
    }
  }
}
