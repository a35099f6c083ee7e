// Pure builders for the Node, its status and its Lease, as a kubelet would report them.

export interface NodeIdentity {
  name: string;
  index: number; // 1-based
  internalIP: string;
  podCIDR: string;
  zone: string;
  kubeletVersion: string;
  /** Port of the node's kubelet API (container logs) on its InternalIP. */
  kubeletPort: number;
}

export const nodeCapacity = { cpu: "4", memory: "8Gi", pods: "110", "ephemeral-storage": "50Gi" };

export function nodeManifest(id: NodeIdentity): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: id.name,
      labels: {
        "kubernetes.io/hostname": id.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "topology.kubernetes.io/zone": id.zone,
        "topology.kubernetes.io/region": "local",
        "node-role.kubernetes.io/worker": "",
        "node.kubernetes.io/instance-type": "hasan-local",
      },
    },
    spec: { podCIDR: id.podCIDR, podCIDRs: [id.podCIDR] },
  };
}

function condition(type: string, ok: boolean, reason: string, message: string, now: string) {
  return {
    type,
    status: ok ? "True" : "False",
    reason,
    message,
    lastHeartbeatTime: now,
    lastTransitionTime: now,
  };
}

/** The status a healthy node reports on every heartbeat. */
export function nodeStatus(id: NodeIdentity, now: Date, bootID: string): Record<string, unknown> {
  const t = now.toISOString().replace(/\.\d+Z$/, "Z");
  return {
    capacity: nodeCapacity,
    allocatable: nodeCapacity,
    conditions: [
      condition("MemoryPressure", false, "KubeletHasSufficientMemory", "kubelet has sufficient memory", t),
      condition("DiskPressure", false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure", t),
      condition("PIDPressure", false, "KubeletHasSufficientPID", "kubelet has sufficient PID available", t),
      condition("Ready", true, "KubeletReady", "hasan node agent is posting ready status", t),
    ],
    addresses: [
      { type: "InternalIP", address: id.internalIP },
      { type: "Hostname", address: id.name },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: id.kubeletPort } },
    nodeInfo: {
      machineID: `hasan-${id.index}`,
      systemUUID: `hasan-${id.index}`,
      bootID,
      kernelVersion: "local",
      osImage: "hasan local node",
      containerRuntimeVersion: "hasan-node-agent://0.1.0",
      kubeletVersion: id.kubeletVersion,
      kubeProxyVersion: id.kubeletVersion,
      operatingSystem: "linux",
      architecture: "amd64",
    },
  };
}

/** Kubernetes MicroTime: RFC 3339 with microseconds. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export const leaseDurationSeconds = 40;

export function leaseManifest(nodeName: string, nodeUID: string, now: Date): Record<string, unknown> {
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      name: nodeName,
      namespace: "kube-node-lease",
      ownerReferences: nodeUID ? [{ apiVersion: "v1", kind: "Node", name: nodeName, uid: nodeUID }] : [],
    },
    spec: { holderIdentity: nodeName, leaseDurationSeconds, renewTime: microTime(now) },
  };
}
