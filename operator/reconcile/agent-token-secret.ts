/**
 * The pair's agent token: `<name>-agent`, key `token`, 32 random bytes as 64 hex characters,
 * generated once (created-once-secret.ts). Both target pods mount it and run with
 * `--agent-token-file`; the operator sends it as `Authorization: Bearer` on every agent request
 * (operator/status/agent-token.ts). Unlike the CHAP and peer Secrets it has no user-provided form.
 */
import { randomBytes } from "node:crypto";
import { MIN_AGENT_TOKEN_BYTES } from "../../target/config.js";
import { AGENT_TOKEN_KEY, agentTokenSecretName } from "../pair/names.js";
import type { CreatedOnceSecret } from "./created-once-secret.js";

export function freshAgentToken(): string {
  return randomBytes(32).toString("hex");
}

export const AGENT_TOKEN_SECRET: CreatedOnceSecret = {
  what: "agent token Secret",
  generatedName: (t) => agentTokenSecretName(t),
  type: "Opaque",
  fresh: () => ({ [AGENT_TOKEN_KEY]: freshAgentToken() }),
  problem: (_t, values) => {
    const token = (values[AGENT_TOKEN_KEY] ?? "").replace(/\r?\n$/, "");
    if (!token) return `has no value under key '${AGENT_TOKEN_KEY}'`;
    if (Buffer.byteLength(token) < MIN_AGENT_TOKEN_BYTES)
      return `has a '${AGENT_TOKEN_KEY}' shorter than ${MIN_AGENT_TOKEN_BYTES} bytes`;
    if (/\s/.test(token)) return `has white space in '${AGENT_TOKEN_KEY}'`;
    return undefined;
  },
  remedy: "delete it to have a new token generated (both pods are then replaced to read it)",
};
