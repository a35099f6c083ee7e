import { status as Code } from "@grpc/grpc-js";
import type { z } from "zod";
import { KubeApiError } from "../kit/kube-client.js";

export { Code };

/** An error a CSI call answers with: a gRPC status code and a message a person can act on. */
export class CsiError extends Error {
  override name = "CsiError";
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
  }
}

export const invalidArgument = (m: string) => new CsiError(Code.INVALID_ARGUMENT, m);
export const notFound = (m: string) => new CsiError(Code.NOT_FOUND, m);
export const alreadyExists = (m: string) => new CsiError(Code.ALREADY_EXISTS, m);
export const aborted = (m: string) => new CsiError(Code.ABORTED, m);
export const outOfRange = (m: string) => new CsiError(Code.OUT_OF_RANGE, m);
export const failedPrecondition = (m: string) => new CsiError(Code.FAILED_PRECONDITION, m);
export const unavailable = (m: string) => new CsiError(Code.UNAVAILABLE, m);
export const internal = (m: string) => new CsiError(Code.INTERNAL, m);

/** "field.path: message" for each zod issue, joined: what INVALID_ARGUMENT says about a bad request. */
export function describeZodError(e: z.ZodError): string {
  return e.issues
    .map((i) => (i.path.length ? `${i.path.map(String).join(".")}: ${i.message}` : i.message))
    .join("; ");
}

/**
 * The gRPC code for an answer of the Kubernetes API: the object refused (400/422) is the caller's
 * argument; a conflict (409) is worth retrying; authorization failures, throttling and server
 * trouble keep their meaning.
 */
export function codeOfKubeError(e: KubeApiError): Code {
  if (e.code === 400 || e.code === 422) return Code.INVALID_ARGUMENT;
  if (e.code === 401) return Code.UNAUTHENTICATED;
  if (e.code === 403) return Code.PERMISSION_DENIED;
  if (e.code === 404) return Code.NOT_FOUND;
  if (e.code === 409) return Code.ABORTED;
  if (e.code === 429) return Code.RESOURCE_EXHAUSTED;
  return Code.UNAVAILABLE;
}

/** Any thrown value as a CsiError; unknown failures (network errors, bugs) become UNAVAILABLE or INTERNAL. */
export function toCsiError(e: unknown): CsiError {
  if (e instanceof CsiError) return e;
  if (e instanceof KubeApiError) return new CsiError(codeOfKubeError(e), `Kubernetes API: ${e.message}`);
  const err = e as { code?: unknown; message?: unknown };
  const message = typeof err?.message === "string" ? err.message : String(e);
  // Node's network errors (ECONNREFUSED, ETIMEDOUT, ...) mean the API server is out of reach.
  if (typeof err?.code === "string" && /^E[A-Z]+$/.test(err.code)) return unavailable(message);
  return internal(message);
}
