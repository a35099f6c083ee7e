/**
 * How many connections the portal holds at once, in total and per source. A source is an IPv4
 * address, or an IPv6 /64 (one host usually owns a whole /64, so counting single IPv6 addresses
 * would bound nothing).
 */
import { isIPv6 } from "node:net";

export interface ConnectionLimitsOptions {
  /** Connections held at once, all sources together. */
  total: number;
  /** Connections held at once from one source. */
  perSource: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimitsOptions = { total: 1024, perSource: 64 };

/** The key connections from one source are counted under. */
export function sourceOf(address: string | undefined): string {
  if (!address) return "?";
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  return `${expandIPv6(address).slice(0, 4).join(":")}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, as hex without leading zeros. */
function expandIPv6(address: string): string[] {
  const bare = address.replace(/%.*$/, "");
  const [head, tail] = bare.includes("::") ? bare.split("::") : [bare, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  // an embedded IPv4 tail (::ffff:a.b.c.d handled above; rare otherwise) counts as two groups
  const groups = [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill("0"), ...t];
  return groups.map((g) => (/^[0-9a-f]+$/i.test(g) ? parseInt(g, 16).toString(16) : g));
}

export type Admission = "ok" | "source-full" | "total-full";

export class ConnectionLimits {
  private readonly bySource = new Map<string, number>();
  private count = 0;

  constructor(readonly limits: ConnectionLimitsOptions = DEFAULT_CONNECTION_LIMITS) {}

  get total(): number {
    return this.count;
  }

  held(source: string): number {
    return this.bySource.get(source) ?? 0;
  }

  /** Counts a connection from `source` in, or says which limit it would break. */
  admit(source: string): Admission {
    const n = this.bySource.get(source) ?? 0;
    if (n >= this.limits.perSource) return "source-full";
    if (this.count >= this.limits.total) return "total-full";
    this.bySource.set(source, n + 1);
    this.count++;
    return "ok";
  }

  release(source: string): void {
    const n = this.bySource.get(source);
    if (n === undefined) return;
    if (n <= 1) this.bySource.delete(source);
    else this.bySource.set(source, n - 1);
    this.count--;
  }
}
