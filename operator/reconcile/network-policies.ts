/**
 * One NetworkPolicy per target pod, so a pair reaches nothing beyond itself and answers only who
 * needs it: the peer port (3261) only the partner pod, the agent port (8080) only the operator's
 * pods and, when the chart's PodMonitor is on, the metrics scrapers it names (everything on that
 * port but probes and /metrics needs the agent token), the iSCSI port (3260) whoever spec.network.iscsiFrom names (everyone when unset: kubelet
 * logs in from the node's host network, which no selector matches, and CHAP guards the port).
 * Kubelet's probes come from the node; network plugins let a node reach its own pods.
 * Egress stays open: a target connects to its partner's Service, the API server (witness Lease)
 * and nothing else, and the API server's address is not portable to express.
 */
import type { NetworkPolicyPeer } from "../api/network.js";
import type { HASanTarget } from "../api/target.js";
import type { KubeObject } from "./desired-children.js";
import { ownerReference } from "./desired-children.js";
import {
  LABEL_NODE,
  NODE_NAMES,
  PORT_AGENT,
  PORT_ISCSI,
  PORT_PEER,
  childName,
  nodeLabels,
  selectorLabels,
  type NodeName,
} from "../pair/names.js";

/** Where the operator runs, so the agent port admits it and nobody else. */
export interface OperatorPods {
  namespace: string;
  podLabels: Record<string, string>;
}

export interface NetworkPolicyOptions {
  /** unknown when the operator runs outside the cluster: then no pod may reach the agent port */
  operator?: OperatorPods;
  /** who scrapes the target pods' /metrics (Prometheus), as NetworkPolicyPeers */
  metricsScrapers?: NetworkPolicyPeer[];
}

/** The label every namespace carries with its own name (Kubernetes sets it). */
export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

function podOf(t: HASanTarget, n: NodeName): Record<string, string> {
  return { ...selectorLabels(t.metadata), [LABEL_NODE]: n };
}

function tcp(port: number) {
  return [{ protocol: "TCP", port }];
}

function policy(t: HASanTarget, n: NodeName, o: NetworkPolicyOptions): KubeObject {
  const partner: NodeName = n === "a" ? "b" : "a";
  const iscsiFrom = t.spec.network?.iscsiFrom;
  const ingress: Record<string, unknown>[] = [
    // No `from`: every source (see the module comment).
    iscsiFrom ? { ports: tcp(PORT_ISCSI), from: iscsiFrom } : { ports: tcp(PORT_ISCSI) },
    { ports: tcp(PORT_PEER), from: [{ podSelector: { matchLabels: podOf(t, partner) } }] },
  ];
  if (o.operator) {
    ingress.push({
      ports: tcp(PORT_AGENT),
      from: [
        {
          namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: o.operator.namespace } },
          podSelector: { matchLabels: o.operator.podLabels },
        },
      ],
    });
  }
  if (o.metricsScrapers?.length) ingress.push({ ports: tcp(PORT_AGENT), from: o.metricsScrapers });
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: {
      name: childName.networkPolicy(t.metadata, n),
      namespace: t.metadata.namespace,
      labels: nodeLabels(t.metadata, n),
      ownerReferences: [ownerReference(t)],
    },
    spec: { podSelector: { matchLabels: podOf(t, n) }, policyTypes: ["Ingress"], ingress },
  };
}

/** The pair's NetworkPolicies; none when the operator's policies are switched off (undefined). */
export function networkPolicies(t: HASanTarget, o: NetworkPolicyOptions | undefined): KubeObject[] {
  return o ? NODE_NAMES.map((n) => policy(t, n, o)) : [];
}
