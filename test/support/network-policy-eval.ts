// Decides whether NetworkPolicies (networking.k8s.io/v1) admit a connection, by the API's ingress
// semantics: a pod selected by no Ingress policy admits everything; a selected pod admits a
// connection only when some rule of some selecting policy matches both its port and its source.
// A rule without ports matches every port, a rule without `from` every source. A peer's
// podSelector alone means pods of the policy's namespace; namespaceSelector alone every pod in the
// matching namespaces; both together pods matching both; ipBlock matches the source address
// (NetworkPolicy leaves it to the plugin whether pod addresses match ipBlocks: here they do).
// Host-network sources (kubelet, the node) are no pod and match no selector. Egress is not modelled.
import { BlockList, isIP } from "node:net";

export interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

export interface Peer {
  podSelector?: Selector;
  namespaceSelector?: Selector;
  ipBlock?: { cidr: string; except?: string[] };
}

export interface PolicyPort {
  protocol?: string;
  port?: number | string;
  endPort?: number;
}

export interface NetworkPolicy {
  metadata: { name: string; namespace?: string };
  spec: {
    podSelector: Selector;
    policyTypes?: string[];
    ingress?: { from?: Peer[]; ports?: PolicyPort[] }[];
    egress?: unknown[];
  };
}

export interface PodEndpoint {
  kind: "pod";
  namespace: string;
  namespaceLabels: Record<string, string>;
  labels: Record<string, string>;
  ip: string;
  /** named container ports, for policies that name a port */
  ports?: Record<string, number>;
}

export interface HostEndpoint {
  kind: "host";
  ip: string;
}

export type Source = PodEndpoint | HostEndpoint;

export function selects(s: Selector | undefined, labels: Record<string, string>): boolean {
  if (!s) return false;
  for (const [k, v] of Object.entries(s.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of s.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const inValues = has && (e.values ?? []).includes(labels[e.key]!);
    const ok =
      e.operator === "In"
        ? inValues
        : e.operator === "NotIn"
          ? !inValues
          : e.operator === "Exists"
            ? has
            : e.operator === "DoesNotExist"
              ? !has
              : false;
    if (!ok) return false;
  }
  return true;
}

function inCidr(ip: string, cidr: string): boolean {
  const [net, prefix] = cidr.split("/");
  const family = isIP(ip) === 6 ? "ipv6" : "ipv4";
  if (!net || prefix === undefined || (isIP(net) === 6 ? "ipv6" : "ipv4") !== family) return false;
  const list = new BlockList();
  list.addSubnet(net, Number(prefix), family);
  return list.check(ip, family);
}

function peerMatches(peer: Peer, policyNamespace: string, src: Source): boolean {
  if (peer.ipBlock) {
    return inCidr(src.ip, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((e) => inCidr(src.ip, e));
  }
  if (src.kind !== "pod") return false;
  const nsOk = peer.namespaceSelector
    ? selects(peer.namespaceSelector, src.namespaceLabels)
    : src.namespace === policyNamespace;
  const podOk = peer.podSelector ? selects(peer.podSelector, src.labels) : true;
  return nsOk && podOk;
}

function portMatches(p: PolicyPort, port: number, protocol: string, dest: PodEndpoint): boolean {
  if ((p.protocol ?? "TCP") !== protocol) return false;
  if (p.port === undefined) return true;
  const start = typeof p.port === "number" ? p.port : dest.ports?.[p.port];
  if (start === undefined) return false;
  return p.endPort !== undefined ? port >= start && port <= p.endPort : port === start;
}

function isIngressPolicy(p: NetworkPolicy): boolean {
  return p.spec.policyTypes ? p.spec.policyTypes.includes("Ingress") : true;
}

/** Whether src may open a connection to dest on port (TCP unless given). */
export function ingressAllowed(
  policies: readonly NetworkPolicy[],
  dest: PodEndpoint,
  src: Source,
  port: number,
  protocol = "TCP",
): boolean {
  const selecting = policies.filter(
    (p) =>
      (p.metadata.namespace ?? dest.namespace) === dest.namespace &&
      isIngressPolicy(p) &&
      selects(p.spec.podSelector, dest.labels),
  );
  if (selecting.length === 0) return true;
  return selecting.some((p) =>
    (p.spec.ingress ?? []).some(
      (rule) =>
        (rule.ports === undefined ||
          rule.ports.length === 0 ||
          rule.ports.some((pp) => portMatches(pp, port, protocol, dest))) &&
        (rule.from === undefined ||
          rule.from.length === 0 ||
          rule.from.some((peer) => peerMatches(peer, p.metadata.namespace ?? dest.namespace, src))),
    ),
  );
}
