/**
 * The agent's bearer token check (`--agent-token-file`): every endpoint but the kubelet's probes
 * and /metrics asks for `Authorization: Bearer <token>`. A request without a token gets 401 with
 * `WWW-Authenticate: Bearer`, one with another token 403; both are JSON errors, logged at warn
 * without the token. Wrong tokens are paced per source address like failed CHAP logins
 * (auth-throttle.ts), so guessing is as slow as against the iSCSI port.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { Logger } from "../log.js";
import { AuthFailureThrottle } from "../iscsi/auth-throttle.js";

/** Paths the kubelet and Prometheus call without credentials; none of them names an initiator. */
export const OPEN_PATHS: ReadonlySet<string> = new Set([
  "/healthz",
  "/readyz",
  "/disruption-safe",
  "/metrics",
]);

const digest = (s: string): Buffer => createHash("sha256").update(s, "utf8").digest();

/** Constant-time comparison: equal-length digests, so neither content nor length leaks. */
export function tokenMatches(expected: string, presented: string): boolean {
  return timingSafeEqual(digest(expected), digest(presented));
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header ?? "");
  return m?.[1];
}

export interface BearerAuthOptions {
  token: string;
  logger: Logger;
  /** how long the answer to a wrong token waits, and how often one source gets such an answer */
  failureDelayMs?: number;
  /** a source further behind than this gets 429 at once */
  maxWaitMs?: number;
}

export function bearerAuth(o: BearerAuthOptions): RequestHandler {
  const throttle = new AuthFailureThrottle(o.failureDelayMs ?? 500, o.maxWaitMs ?? 5000);
  return (req: Request, res: Response, next: NextFunction) => {
    if (OPEN_PATHS.has(req.path)) {
      next();
      return;
    }
    const presented = bearerToken(req.headers.authorization);
    const source = req.socket.remoteAddress ?? "unknown";
    if (presented !== undefined && tokenMatches(o.token, presented)) {
      next();
      return;
    }
    const missing = presented === undefined;
    o.logger.warn(
      { source, method: req.method, path: req.path, reason: missing ? "no bearer token" : "wrong token" },
      "agent request refused",
    );
    if (missing) {
      res
        .status(401)
        .set("WWW-Authenticate", 'Bearer realm="hasan-agent"')
        .json({ error: "this agent requires Authorization: Bearer <token> (the pair's agent token)" });
      return;
    }
    const wait = throttle.delay(source);
    if (wait === undefined) {
      res.status(429).set("Retry-After", "5").json({ error: "too many requests with a wrong token" });
      return;
    }
    setTimeout(() => {
      if (!res.headersSent) res.status(403).json({ error: "wrong agent token" });
    }, wait).unref();
  };
}
