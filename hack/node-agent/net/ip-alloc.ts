// Pure address arithmetic for pod and service ranges.

export function ipToInt(ip: string): number {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`not an IPv4 address: ${ip}`);
  }
  return parts.reduce((acc, p) => acc * 256 + p, 0);
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join(".");
}

export function parseCidr(cidr: string): { base: number; bits: number } {
  const [ip, bits] = cidr.split("/");
  const b = Number(bits);
  if (!ip || !Number.isInteger(b) || b < 8 || b > 30) throw new Error(`bad CIDR: ${cidr}`);
  const mask = b === 0 ? 0 : (0xffffffff << (32 - b)) >>> 0;
  return { base: (ipToInt(ip) & mask) >>> 0, bits: b };
}

/** Node n (1-based) gets the n-th /24 of the pod range: 10.213.n.0/24 for 10.213.0.0/16. */
export function nodePodCidr(podCidr: string, index: number): string {
  const { base, bits } = parseCidr(podCidr);
  if (bits > 24 || index >= 2 ** (24 - bits))
    throw new Error(`pod range ${podCidr} too small for node ${index}`);
  return `${intToIp(base + index * 256)}/24`;
}

/** The first service IP: the `kubernetes` Service's cluster IP. */
export function firstServiceIP(serviceCidr: string): string {
  return intToIp(parseCidr(serviceCidr).base + 1);
}

/** Lowest free host address (.2 to .254) in a /24, or undefined when full. */
export function allocateIP(nodeCidr: string, used: ReadonlySet<string>): string | undefined {
  const { base } = parseCidr(nodeCidr);
  for (let i = 2; i < 255; i++) {
    const ip = intToIp(base + i);
    if (!used.has(ip)) return ip;
  }
  return undefined;
}
