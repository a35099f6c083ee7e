import type { HASanTarget } from "../api/target.js";
import { API_VERSION, KIND } from "../api/target.js";
import { limitArgs } from "../api/limits.js";
import { quantityBytes } from "../api/quantity.js";
import type { ResourceRequirements } from "../api/spec.js";
import {
  ANNOTATION_TEMPLATE_HASH,
  NODE_NAMES,
  PORT_AGENT,
  PORT_ISCSI,
  PORT_PEER,
  childName,
  commonLabels,
  defaultIqn,
  nodeLabels,
  selectorLabels,
  serialFromUid,
  shortHash,
  type NodeName,
} from "../pair/names.js";
import { AGENT_TOKEN_DIR, chapSecretName } from "./auth.js";
import { AGENT_TOKEN_KEY, agentTokenSecretName } from "../pair/names.js";
import { networkPolicies, type NetworkPolicyOptions } from "./network-policies.js";
import { persistentVolumeLabels } from "./pv-ownership.js";

/** A Kubernetes object as sent to the API server (plain JSON). */

/** The image's unprivileged user and group (Dockerfile: USER 65532:65532). */
const TARGET_UID = 65532;
/**
 * Requests when `spec.pod.resources` is unset, so a target is not among the first pods evicted
 * under memory pressure (BestEffort) and the scheduler counts what it uses: a target's memory is
 * bounded by its per-session and per-target limits, its CPU grows with I/O.
 */
export const TARGET_DEFAULT_RESOURCES = { requests: { cpu: "100m", memory: "192Mi" } } as const;
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
  };
  [field: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: boolean;
  blockOwnerDeletion: boolean;
}

/** What desiredChildren needs besides the spec: facts only the cluster knows. */
export interface ObservedForChildren {
  /** clusterIP of each node's Service, once allocated; pods and the PV wait for both */
  serviceIPs: Partial<Record<NodeName, string>>;
  /** CHAP user names read from the CHAP Secret, the user's or the generated one (auth.ts; files carry the secrets themselves) */
  chap?: { username: string; mutualUsername?: string };
  /** both nodes report Working: the PDB may allow one disruption */
  bothWorking: boolean;
  /**
   * The `--size` each existing pod runs with (capacity-growth.ts): kept, so growing spec.capacity
   * changes no pod template; the LUN grows live instead. A new pod takes spec.capacity.
   */
  lunSizes?: Partial<Record<NodeName, string>>;
}

export interface ChildDefaults {
  image: string;
  /** target pods' resources when spec.pod.resources is unset (TARGET_DEFAULT_RESOURCES otherwise) */
  resources?: ResourceRequirements;
  /** the pair's NetworkPolicies (network-policies.ts); none when unset */
  networkPolicies?: NetworkPolicyOptions;
}

export const DEFAULT_IMAGE = "ghcr.io/hasan-dev/hasan:0.1.0";
const MI = 1024 * 1024;
/** Room for the metadata and the dirty bitmap next to the LUN file. */
const STORAGE_OVERHEAD = 64 * MI;
const PEER_DIR = "/etc/hasan/peer";
const CHAP_DIR = "/etc/hasan/chap";
const TLS_DIR = "/etc/hasan/tls";
export const CHAP_USER_KEY = "node.session.auth.username";
export const CHAP_SECRET_KEY = "node.session.auth.password";
export const MUTUAL_USER_KEY = "node.session.auth.username_in";
export const MUTUAL_SECRET_KEY = "node.session.auth.password_in";

export function ownerReference(t: HASanTarget): OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: t.metadata.name,
    uid: t.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function iqnOf(t: HASanTarget): string {
  return t.spec.iqn ?? defaultIqn(t.metadata);
}

export function portalOf(ip: string): string {
  return `${ip}:${PORT_ISCSI}`;
}

export function storageSize(t: HASanTarget): string | number {
  if (t.spec.storage?.size !== undefined) return t.spec.storage.size;
  return `${Math.ceil((quantityBytes(t.spec.capacity) + STORAGE_OVERHEAD) / MI)}Mi`;
}

export function persistentVolumeName(t: HASanTarget): string | undefined {
  const pv = t.spec.export?.persistentVolume;
  return pv ? childName.persistentVolume(t.metadata, pv.name) : undefined;
}

function meta(t: HASanTarget, name: string, labels: Record<string, string>) {
  return { name, namespace: t.metadata.namespace, labels, ownerReferences: [ownerReference(t)] };
}

/** The Secret both pods mount for the peer link: the user's, or the generated one. */
export function peerSecretName(t: HASanTarget): string {
  return t.spec.replication?.peerSecretRef?.name ?? childName.peerSecret(t.metadata);
}

function rbac(t: HASanTarget): KubeObject[] {
  const m = t.metadata;
  const labels = commonLabels(m);
  const name = childName.serviceAccount(m);
  return [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: meta(t, name, labels) },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: meta(t, childName.role(m), labels),
      rules: [
        {
          apiGroups: ["coordination.k8s.io"],
          resources: ["leases"],
          resourceNames: [childName.witness(m)],
          verbs: ["get", "update", "patch"],
        },
        // RBAC cannot scope create by name (the name is not known when create is authorized).
        { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
      ],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: meta(t, childName.role(m), labels),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: childName.role(m) },
      subjects: [{ kind: "ServiceAccount", name, namespace: m.namespace }],
    },
  ];
}

function service(t: HASanTarget, node: NodeName): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(t, childName.service(t.metadata, node), nodeLabels(t.metadata, node)),
    spec: {
      type: "ClusterIP",
      selector: { ...selectorLabels(t.metadata), "hasan.dev/node": node },
      // The peer link must connect before either side is ready (a Pending node is not ready).
      publishNotReadyAddresses: true,
      ports: [
        { name: "iscsi", port: PORT_ISCSI, targetPort: PORT_ISCSI, protocol: "TCP" },
        { name: "peer", port: PORT_PEER, targetPort: PORT_PEER, protocol: "TCP" },
        { name: "agent", port: PORT_AGENT, targetPort: PORT_AGENT, protocol: "TCP" },
      ],
    },
  };
}

function pvc(t: HASanTarget, node: NodeName): KubeObject {
  const spec: Record<string, unknown> = {
    accessModes: ["ReadWriteOnce"],
    resources: { requests: { storage: String(storageSize(t)) } },
  };
  if (t.spec.storage?.storageClassName) spec.storageClassName = t.spec.storage.storageClassName;
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: meta(t, childName.pvc(t.metadata, node), nodeLabels(t.metadata, node)),
    spec,
  };
}

/** The target's command line; the contract with target/config.ts. */
export function targetArgs(t: HASanTarget, node: NodeName, peerIP: string, o: ObservedForChildren): string[] {
  const m = t.metadata;
  const args = [
    "serve",
    "--data",
    "/data/lun.img",
    "--size",
    o.lunSizes?.[node] ?? String(quantityBytes(t.spec.capacity)),
    "--iqn",
    iqnOf(t),
    "--serial",
    serialFromUid(m.uid),
    "--listen",
    `0.0.0.0:${PORT_ISCSI}`,
    "--agent-listen",
    `0.0.0.0:${PORT_AGENT}`,
    "--node",
    node,
    "--peer",
    `${peerIP}:${PORT_PEER}`,
    "--peer-listen",
    `0.0.0.0:${PORT_PEER}`,
    "--peer-secret-file",
    `${PEER_DIR}/secret`,
    "--witness",
    `lease:${m.namespace}/${childName.witness(m)}`,
    "--agent-token-file",
    `${AGENT_TOKEN_DIR}/${AGENT_TOKEN_KEY}`,
  ];
  const rep = t.spec.replication;
  if (rep?.tls) {
    args.push("--peer-tls-cert", `${TLS_DIR}/tls.crt`, "--peer-tls-key", `${TLS_DIR}/tls.key`);
    args.push("--peer-tls-ca", `${TLS_DIR}/ca.crt`);
  }
  if (rep?.records === "Authenticated") args.push("--peer-records", "authenticated");
  if (rep?.resyncRateLimit !== undefined)
    args.push("--resync-rate", String(quantityBytes(rep.resyncRateLimit)));
  const auth = t.spec.auth;
  if (chapSecretName(t) && o.chap) {
    args.push("--chap-user", o.chap.username, "--chap-secret-file", `${CHAP_DIR}/secret`);
    if (auth?.mutual && o.chap.mutualUsername) {
      args.push(
        "--mutual-chap-user",
        o.chap.mutualUsername,
        "--mutual-chap-secret-file",
        `${CHAP_DIR}/mutual`,
      );
    }
  }
  for (const iqn of auth?.allowedInitiators ?? []) args.push("--allow-initiator", iqn);
  args.push(...limitArgs(t.spec.limits));
  return args;
}

function pod(
  t: HASanTarget,
  node: NodeName,
  peerIP: string,
  d: ChildDefaults,
  o: ObservedForChildren,
): KubeObject {
  const m = t.metadata;
  const p = t.spec.pod ?? {};
  const image = p.image ?? d.image;
  const volumes: Record<string, unknown>[] = [
    { name: "data", persistentVolumeClaim: { claimName: childName.pvc(m, node) } },
    { name: "peer", secret: { secretName: peerSecretName(t), items: [{ key: "secret", path: "secret" }] } },
  ];
  const mounts: Record<string, unknown>[] = [
    { name: "data", mountPath: "/data" },
    { name: "peer", mountPath: PEER_DIR, readOnly: true },
  ];
  const tls = t.spec.replication?.tls;
  if (tls) {
    volumes.push({ name: "peer-tls", secret: { secretName: tls.secretRef.name } });
    mounts.push({ name: "peer-tls", mountPath: TLS_DIR, readOnly: true });
  }
  const chap = chapSecretName(t);
  if (chap && o.chap) {
    const items = [{ key: CHAP_SECRET_KEY, path: "secret" }];
    if (t.spec.auth?.mutual && o.chap.mutualUsername) items.push({ key: MUTUAL_SECRET_KEY, path: "mutual" });
    volumes.push({ name: "chap", secret: { secretName: chap, items } });
    mounts.push({ name: "chap", mountPath: CHAP_DIR, readOnly: true });
  }
  volumes.push(agentTokenVolume(t));
  mounts.push({ name: "agent-token", mountPath: AGENT_TOKEN_DIR, readOnly: true });
  const container: Record<string, unknown> = {
    name: "target",
    image,
    command: ["node", "/app/dist/target/main.js"],
    args: targetArgs(t, node, peerIP, o),
    ports: [
      { name: "iscsi", containerPort: PORT_ISCSI, protocol: "TCP" },
      { name: "peer", containerPort: PORT_PEER, protocol: "TCP" },
      { name: "agent", containerPort: PORT_AGENT, protocol: "TCP" },
    ],
    env: [{ name: "HASAN_LOG_LEVEL", value: t.spec.pod?.logLevel ?? "info" }],
    // Ready means "losing this pod loses no data" (the pair is Working): the pair's
    // PodDisruptionBudget counts Ready pods, so it refuses evictions during a resync, while a node
    // is alone and before a new pair first met, also while the operator is down. The Services
    // publish not-ready addresses, so readiness never takes a portal away.
    readinessProbe: {
      httpGet: { path: "/disruption-safe", port: PORT_AGENT },
      periodSeconds: 2,
      timeoutSeconds: 2,
      failureThreshold: 2,
    },
    livenessProbe: {
      httpGet: { path: "/healthz", port: PORT_AGENT },
      periodSeconds: 10,
      timeoutSeconds: 5,
      failureThreshold: 6,
    },
    volumeMounts: mounts,
    // The target needs no privilege: it listens on unprivileged ports and writes only its volume.
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    },
    resources: p.resources ?? d.resources ?? TARGET_DEFAULT_RESOURCES,
  };
  if (p.imagePullPolicy) container.imagePullPolicy = p.imagePullPolicy;
  const spec: Record<string, unknown> = {
    serviceAccountName: childName.serviceAccount(m),
    restartPolicy: "Always",
    terminationGracePeriodSeconds: p.terminationGracePeriodSeconds ?? 30,
    affinity: {
      podAntiAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [
          { labelSelector: { matchLabels: selectorLabels(m) }, topologyKey: "kubernetes.io/hostname" },
        ],
      },
    },
    // The image's user (65532); fsGroup makes the data volume writable by it.
    securityContext: {
      runAsNonRoot: true,
      runAsUser: TARGET_UID,
      runAsGroup: TARGET_UID,
      fsGroup: TARGET_UID,
      fsGroupChangePolicy: "OnRootMismatch",
      seccompProfile: { type: "RuntimeDefault" },
    },
    containers: [container],
    volumes,
  };
  if (p.nodeSelector) spec.nodeSelector = p.nodeSelector;
  if (p.tolerations) spec.tolerations = p.tolerations;
  if (p.priorityClassName) spec.priorityClassName = p.priorityClassName;
  const labels = nodeLabels(m, node);
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      ...meta(t, childName.pod(m, node), labels),
      annotations: { [ANNOTATION_TEMPLATE_HASH]: shortHash({ labels, spec }) },
    },
    spec,
  };
}

/** The pair's agent token (agent-token-secret.ts), mounted for --agent-token-file. */
function agentTokenVolume(t: HASanTarget): Record<string, unknown> {
  return {
    name: "agent-token",
    secret: { secretName: agentTokenSecretName(t), items: [{ key: AGENT_TOKEN_KEY, path: AGENT_TOKEN_KEY }] },
  };
}

function witnessLease(t: HASanTarget): KubeObject {
  // Metadata only: the targets own spec (holder, renew time) and update it with compare-and-swap.
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: meta(t, childName.witness(t.metadata), commonLabels(t.metadata)),
  };
}

function pdb(t: HASanTarget, o: ObservedForChildren): KubeObject {
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: meta(t, childName.pdb(t.metadata), commonLabels(t.metadata)),
    // minAvailable, not maxUnavailable: for maxUnavailable the disruption controller needs the scale
    // subresource of the pods' controller (this custom resource), and without one it allows nothing.
    // With two pods, minAvailable 1 is maxUnavailable 1, and minAvailable 2 is maxUnavailable 0.
    spec: { selector: { matchLabels: selectorLabels(t.metadata) }, minAvailable: o.bothWorking ? 1 : 2 },
  };
}

function persistentVolume(t: HASanTarget, ipA: string, ipB: string): KubeObject | undefined {
  const exp = t.spec.export?.persistentVolume;
  const name = persistentVolumeName(t);
  if (!exp || !name) return undefined;
  const iscsi: Record<string, unknown> = {
    targetPortal: portalOf(ipA),
    portals: [portalOf(ipB)],
    iqn: iqnOf(t),
    lun: 0,
    fsType: exp.fsType ?? "ext4",
    readOnly: false,
  };
  const chap = chapSecretName(t);
  if (chap) {
    iscsi.chapAuthSession = true;
    iscsi.chapAuthDiscovery = false;
    iscsi.secretRef = { name: chap, namespace: t.metadata.namespace };
  }
  return {
    apiVersion: "v1",
    kind: "PersistentVolume",
    // Cluster-scoped: no owner reference to a namespaced owner; its labels name the owner, uid
    // included, and only a PV that carries them is changed, pruned or deleted (pv-ownership.ts).
    metadata: { name, labels: persistentVolumeLabels(t) },
    spec: {
      capacity: { storage: String(t.spec.capacity) },
      accessModes: ["ReadWriteOnce"],
      volumeMode: "Filesystem",
      persistentVolumeReclaimPolicy: exp.reclaimPolicy ?? "Retain",
      iscsi,
    },
  };
}

/**
 * Everything one HASanTarget should own and keep applied, as a pure function of its spec and a few
 * observed facts. Pods and the PV need both Service IPs (the peer address and the portals), so they
 * appear from the pass after the Services got their clusterIPs. The generated peer Secret is not
 * here: it is created once and never applied (peer-secret.ts).
 */
export function desiredChildren(t: HASanTarget, o: ObservedForChildren, d: ChildDefaults): KubeObject[] {
  const out: KubeObject[] = [...rbac(t), witnessLease(t), ...networkPolicies(t, d.networkPolicies)];
  for (const n of NODE_NAMES) out.push(service(t, n));
  for (const n of NODE_NAMES) out.push(pvc(t, n));
  const ipA = o.serviceIPs.a;
  const ipB = o.serviceIPs.b;
  // Never start targets without the authentication the spec asks for.
  const chapReady = !chapSecretName(t) || (!!o.chap && (!t.spec.auth?.mutual || !!o.chap.mutualUsername));
  if (ipA && ipB && chapReady) {
    out.push(pod(t, "a", ipB, d, o), pod(t, "b", ipA, d, o));
    const pv = persistentVolume(t, ipA, ipB);
    if (pv) out.push(pv);
  }
  out.push(pdb(t, o));
  return out;
}

export { NODE_NAMES, type NodeName };
