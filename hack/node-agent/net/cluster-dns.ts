import dgram from "node:dgram";
import type { EndpointSlice, Service } from "../kube/schemas.js";
import { buildAnswer, formatError, parseQuery, RCODE_NXDOMAIN, RCODE_OK, TYPE_A } from "./dns-message.js";
import type { Logger } from "../../../target/log.js";

export const clusterDomain = "cluster.local";

export interface DnsSources {
  services: () => Service[];
  slices: () => EndpointSlice[];
}

/**
 * Names the cluster answers for: <svc>.<ns>.svc.cluster.local (cluster IP, or ready endpoint IPs
 * for headless Services), <hostname>.<svc>.<ns>.svc.cluster.local and
 * <a-b-c-d>.<ns>.pod.cluster.local. Returns undefined for names outside the cluster domain.
 */
export function resolveName(name: string, src: DnsSources): string[] | undefined {
  const suffix = `.${clusterDomain}`;
  if (!name.endsWith(suffix)) return undefined;
  const parts = name.slice(0, -suffix.length).split(".");
  if (parts.length === 3 && parts[1] && parts[2] === "pod") {
    const ip = (parts[0] ?? "").replace(/-/g, ".");
    return /^\d+\.\d+\.\d+\.\d+$/.test(ip) ? [ip] : [];
  }
  if (parts.at(-1) !== "svc" || parts.length < 3 || parts.length > 4) return [];
  const [host, svcName, ns] = parts.length === 4 ? parts : [undefined, parts[0], parts[1]];
  const svc = src.services().find((s) => s.metadata.name === svcName && s.metadata.namespace === ns);
  if (!svc) return [];
  const endpoints = src
    .slices()
    .filter(
      (s) => s.metadata.namespace === ns && s.metadata.labels?.["kubernetes.io/service-name"] === svcName,
    )
    .flatMap((s) => s.endpoints ?? [])
    .filter((e) => e.conditions?.ready !== false);
  if (host !== undefined) {
    return endpoints.filter((e) => e.hostname === host).flatMap((e) => e.addresses);
  }
  const ip = svc.spec.clusterIP;
  if (ip && ip !== "None") return [ip];
  return [...new Set(endpoints.flatMap((e) => e.addresses))].sort();
}

/** Answers cluster names only; everything else is NXDOMAIN, nothing is forwarded anywhere. */
export function startClusterDns(
  host: string,
  port: number,
  src: DnsSources,
  log: Logger,
): Promise<dgram.Socket> {
  const sock = dgram.createSocket("udp4");
  sock.on("message", (msg, peer) => {
    const q = parseQuery(msg);
    let reply: Buffer;
    if (!q) {
      reply = formatError(msg);
    } else {
      const ips = resolveName(q.name, src);
      if (ips === undefined || (ips.length === 0 && q.type === TYPE_A))
        reply = buildAnswer(q, RCODE_NXDOMAIN, []);
      else reply = buildAnswer(q, RCODE_OK, q.type === TYPE_A ? ips : []);
    }
    sock.send(reply, peer.port, peer.address);
  });
  sock.on("error", (err) => log.error({ err: String(err) }, "cluster DNS socket error"));
  return new Promise((resolve, reject) => {
    sock.once("error", reject);
    sock.bind(port, host, () => {
      log.info({ host, port }, "cluster DNS listening");
      resolve(sock);
    });
  });
}
