/**
 * Rules every shared secret the target is given must follow: CHAP secrets (RFC 7143 §12.1.3 asks
 * for at least 12 bytes, as a secret shorter than that falls to an offline search of one captured
 * exchange) and the peer link's secret alike.
 */
export const MIN_SECRET_BYTES = 12;

/** Why `secret` is unusable, or undefined when it is fine. */
export function secretProblem(secret: string | Buffer): string | undefined {
  const n = typeof secret === "string" ? Buffer.byteLength(secret, "utf8") : secret.length;
  if (n === 0) return "is empty";
  if (n < MIN_SECRET_BYTES) return `is ${n} bytes long; secrets must be at least ${MIN_SECRET_BYTES} bytes`;
  return undefined;
}
