import { createHash } from "node:crypto";
import type { EndpointSlice, Service } from "../kube/schemas.js";
import { gatewayIP } from "./pod-network.js";

// Pure translation of Services + EndpointSlices (+ cut links) into iptables-restore input, the
// way kube-proxy's iptables mode does it, in chains of our own (HASAN-*).

export interface Backend {
  ip: string;
  port: number;
}

export interface ServiceRule {
  key: string; // namespace/name:port
  clusterIP: string;
  port: number;
  protocol: "tcp" | "udp" | "sctp";
  backends: Backend[];
}

export interface RuleInputs {
  services: Service[];
  slices: EndpointSlice[];
  /**
   * Service ports served on the host's loopback instead of by pods, keyed "namespace/name:port"
   * (port name, or number when unnamed): the API server for `default/kubernetes`, cluster DNS.
   */
  fixed: Record<string, Backend>;
  serviceCidr: string;
  podCidr: string;
  podIPs: string[];
  cutLinks: [string, string][];
}

/** Resolves each Service port to the ready endpoints of its EndpointSlices. */
export function serviceRules(
  services: Service[],
  slices: EndpointSlice[],
  fixed: Record<string, Backend>,
): ServiceRule[] {
  const rules: ServiceRule[] = [];
  for (const svc of services) {
    const ns = svc.metadata.namespace ?? "default";
    const ip = svc.spec.clusterIP;
    if (!ip || ip === "None" || svc.spec.type === "ExternalName") continue;
    const own = slices.filter(
      (s) =>
        s.metadata.namespace === ns &&
        s.metadata.labels?.["kubernetes.io/service-name"] === svc.metadata.name &&
        s.addressType === "IPv4",
    );
    for (const p of svc.spec.ports ?? []) {
      const protocol = (p.protocol ?? "TCP").toLowerCase() as ServiceRule["protocol"];
      const key = `${ns}/${svc.metadata.name}:${p.name ?? p.port}`;
      let backends: Backend[] = [];
      const local = fixed[key];
      if (local) {
        backends = [local];
      } else {
        for (const slice of own) {
          const sp = (slice.ports ?? []).find((x) => (x.name ?? "") === (p.name ?? ""));
          if (!sp?.port) continue;
          for (const ep of slice.endpoints ?? []) {
            if (ep.conditions?.ready === false) continue;
            for (const addr of ep.addresses) backends.push({ ip: addr, port: sp.port });
          }
        }
      }
      backends.sort((a, b) => (a.ip + a.port).localeCompare(b.ip + b.port));
      rules.push({ key, clusterIP: ip, port: p.port, protocol, backends });
    }
  }
  return rules.sort((a, b) => a.key.localeCompare(b.key));
}

export function chainName(key: string): string {
  return `HASAN-SVC-${createHash("sha256")
    .update(key)
    .digest("base64url")
    .slice(0, 16)
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, "X")}`;
}

export interface RuleSet {
  nat: string;
  filter: string;
  serviceChains: string[];
}

/** iptables-restore --noflush input for the nat and filter tables. */
export function renderRules(inputs: RuleInputs): RuleSet {
  const rules = serviceRules(inputs.services, inputs.slices, inputs.fixed);
  const nat: string[] = ["*nat", ":HASAN-SERVICES - [0:0]", ":HASAN-POSTROUTING - [0:0]"];
  const natRules: string[] = [];
  const serviceChains: string[] = [];
  const filterRules: string[] = [];
  for (const r of rules) {
    const match = `-d ${r.clusterIP}/32 -p ${r.protocol} -m ${r.protocol} --dport ${r.port}`;
    if (r.backends.length === 0) {
      filterRules.push(`-A HASAN-SERVICES ${match} -j REJECT`);
      continue;
    }
    const chain = chainName(r.key);
    serviceChains.push(chain);
    nat.push(`:${chain} - [0:0]`);
    natRules.push(`-A HASAN-SERVICES ${match} -m comment --comment "${r.key}" -j ${chain}`);
    r.backends.forEach((b, i) => {
      const left = r.backends.length - i;
      const pick = left > 1 ? `-m statistic --mode random --probability ${(1 / left).toFixed(5)} ` : "";
      natRules.push(`-A ${chain} ${pick}-p ${r.protocol} -j DNAT --to-destination ${b.ip}:${b.port}`);
    });
  }
  // Hairpin: a pod reaching itself through a Service would see its own address as the source.
  for (const ip of [...inputs.podIPs].sort()) {
    natRules.push(`-A HASAN-POSTROUTING -s ${ip}/32 -d ${ip}/32 -j SNAT --to-source ${gatewayIP}`);
  }
  const filter = ["*filter", ":HASAN-SERVICES - [0:0]", ":HASAN-FORWARD - [0:0]"];
  for (const [a, b] of inputs.cutLinks) {
    filterRules.push(`-A HASAN-FORWARD -s ${a}/32 -d ${b}/32 -j DROP`);
    filterRules.push(`-A HASAN-FORWARD -s ${b}/32 -d ${a}/32 -j DROP`);
  }
  // Anything still addressed to the service range was not translated: answer locally, never route it out.
  filterRules.push(`-A HASAN-SERVICES -d ${inputs.serviceCidr} -j REJECT`);
  // Pods talk to pods and to the host only: nothing they send is forwarded off the machine.
  filterRules.push(`-A HASAN-FORWARD -s ${inputs.podCidr} ! -d ${inputs.podCidr} -j REJECT`);
  return {
    nat: [...nat, ...natRules, "COMMIT", ""].join("\n"),
    filter: [...filter, ...filterRules, "COMMIT", ""].join("\n"),
    serviceChains,
  };
}

/** Jumps from the built-in chains into ours: [table, builtin chain, our chain]. */
export const hookJumps: [string, string, string][] = [
  ["nat", "PREROUTING", "HASAN-SERVICES"],
  ["nat", "OUTPUT", "HASAN-SERVICES"],
  ["nat", "POSTROUTING", "HASAN-POSTROUTING"],
  ["filter", "OUTPUT", "HASAN-SERVICES"],
  ["filter", "FORWARD", "HASAN-SERVICES"],
  ["filter", "FORWARD", "HASAN-FORWARD"],
];
