import { createHash } from "node:crypto";
import type { HASanTarget } from "../api/target.js";

export const NODE_NAMES = ["a", "b"] as const;
export type NodeName = (typeof NODE_NAMES)[number];

export const FIELD_MANAGER = "hasan-operator";
export const LABEL_APP = "app.kubernetes.io/name";
export const APP_TARGET = "hasan-target";
export const LABEL_TARGET = "hasan.dev/target";
export const LABEL_NODE = "hasan.dev/node";
export const LABEL_NAMESPACE = "hasan.dev/namespace";
/** On the cluster-scoped PV: the uid of the HASanTarget that created it, the proof that it is ours. */
export const LABEL_TARGET_UID = "hasan.dev/target-uid";
export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by";
export const ANNOTATION_TEMPLATE_HASH = "hasan.dev/template-hash";
/** On a HASanTarget: "Disabled" keeps a target made before CHAP was the default without CHAP. */
export const ANNOTATION_CHAP_DEFAULT = "hasan.dev/chap-default";

export const PORT_ISCSI = 3260;
export const PORT_PEER = 3261;
export const PORT_AGENT = 8080;

/** The HASanTarget metadata child names derive from. */
export type TargetMeta = HASanTarget["metadata"];
type Meta = TargetMeta;

/** Names of everything the operator creates for one HASanTarget; one place so prune and apply agree. */
export const childName = {
  pod: (m: Meta, n: NodeName) => `${m.name}-${n}`,
  pvc: (m: Meta, n: NodeName) => `${m.name}-${n}-data`,
  service: (m: Meta, n: NodeName) => `${m.name}-${n}`,
  peerSecret: (m: Meta) => `${m.name}-peer`,
  chapSecret: (m: Meta) => `${m.name}-chap`,
  agentToken: (m: Meta) => `${m.name}-agent`,
  witness: (m: Meta) => `${m.name}-witness`,
  serviceAccount: (m: Meta) => `${m.name}-target`,
  role: (m: Meta) => `${m.name}-target`,
  pdb: (m: Meta) => m.name,
  networkPolicy: (m: Meta, n: NodeName) => `${m.name}-${n}`,
  persistentVolume: (m: Meta, explicit?: string) => explicit ?? `hasan-${m.namespace}-${m.name}`,
};

export function defaultIqn(m: Meta): string {
  return `iqn.2024-01.dev.hasan:${m.namespace}.${m.name}`;
}

/** Unit serial number (VPD 0x80, and the NAA id derived from it): stable for the CR's lifetime. */
export function serialFromUid(uid: string): string {
  return uid.replace(/-/g, "").slice(0, 32);
}

export function selectorLabels(m: Meta): Record<string, string> {
  return { [LABEL_APP]: APP_TARGET, [LABEL_TARGET]: m.name };
}

export function nodeLabels(m: Meta, n: NodeName): Record<string, string> {
  return { ...selectorLabels(m), [LABEL_NODE]: n, [LABEL_MANAGED_BY]: "hasan-operator" };
}

export function commonLabels(m: Meta): Record<string, string> {
  return { ...selectorLabels(m), [LABEL_MANAGED_BY]: "hasan-operator" };
}

export function shortHash(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 16);
}

/** The key of the agent token Secret. */
export const AGENT_TOKEN_KEY = "token";

export function agentTokenSecretName(t: Pick<HASanTarget, "metadata">): string {
  return childName.agentToken(t.metadata);
}
