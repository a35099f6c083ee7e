/**
 * SendTargets (RFC 7143 §13.3 / Appendix C): which targets and portals a text request reports.
 */
import type { KeyValues } from "./text-keys.js";

export interface Portal {
  /** host:port; IPv6 hosts in brackets */
  address: string;
  portalGroupTag: number;
}

export function formatPortal(host: string, port: number): string {
  const h = host.startsWith("::ffff:") && host.includes(".") ? host.slice(7) : host;
  return h.includes(":") ? `[${h}]:${port}` : `${h}:${port}`;
}

/**
 * Answers SendTargets=<value>. "All" is only valid in a discovery session; an empty value (or in
 * a normal session) reports the session's own target; an IQN reports that target if it is ours.
 * The portal the initiator connected to comes first.
 */
export function sendTargets(
  value: string,
  sessionType: "Normal" | "Discovery",
  targetName: string,
  portals: readonly Portal[],
): KeyValues {
  const wanted = value === "All" ? sessionType === "Discovery" : value === "" || value === targetName;
  if (!wanted) return [];
  const seen = new Set<string>();
  const out: KeyValues = [["TargetName", targetName]];
  for (const p of portals) {
    const v = `${p.address},${p.portalGroupTag}`;
    if (seen.has(v)) continue;
    seen.add(v);
    out.push(["TargetAddress", v]);
  }
  return out;
}
