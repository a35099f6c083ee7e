/** REST paths of the kinds the operator touches (no discovery round-trips needed). */
interface ResourceInfo {
  plural: string;
  namespaced: boolean;
}

const RESOURCES: Record<string, ResourceInfo> = {
  "v1/Pod": { plural: "pods", namespaced: true },
  "v1/Service": { plural: "services", namespaced: true },
  "v1/PersistentVolumeClaim": { plural: "persistentvolumeclaims", namespaced: true },
  "v1/Secret": { plural: "secrets", namespaced: true },
  "v1/ServiceAccount": { plural: "serviceaccounts", namespaced: true },
  "v1/Event": { plural: "events", namespaced: true },
  "v1/PersistentVolume": { plural: "persistentvolumes", namespaced: false },
  "v1/Namespace": { plural: "namespaces", namespaced: false },
  "v1/Node": { plural: "nodes", namespaced: false },
  "rbac.authorization.k8s.io/v1/Role": { plural: "roles", namespaced: true },
  "rbac.authorization.k8s.io/v1/RoleBinding": { plural: "rolebindings", namespaced: true },
  "coordination.k8s.io/v1/Lease": { plural: "leases", namespaced: true },
  "policy/v1/PodDisruptionBudget": { plural: "poddisruptionbudgets", namespaced: true },
  "networking.k8s.io/v1/NetworkPolicy": { plural: "networkpolicies", namespaced: true },
  "hasan.dev/v1alpha1/HASanTarget": { plural: "hasantargets", namespaced: true },
  "apiextensions.k8s.io/v1/CustomResourceDefinition": {
    plural: "customresourcedefinitions",
    namespaced: false,
  },
  "admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration": {
    plural: "validatingwebhookconfigurations",
    namespaced: false,
  },
};

export function resourceInfo(apiVersion: string, kind: string): ResourceInfo {
  const info = RESOURCES[`${apiVersion}/${kind}`];
  if (!info) throw new Error(`unknown resource ${apiVersion}/${kind}`);
  return info;
}

/** /api/v1/namespaces/ns/pods[/name] or /apis/group/version/... */
export function resourcePath(apiVersion: string, kind: string, namespace?: string, name?: string): string {
  const info = resourceInfo(apiVersion, kind);
  const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const ns = info.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  return `${base}${ns}/${info.plural}${name ? `/${encodeURIComponent(name)}` : ""}`;
}

/**
 * The resource (and subresource) a REST path addresses, for metrics: "pods", "pods/eviction",
 * "hasantargets/status". Query strings and object names are dropped, so the label set stays small.
 */
export function resourceOfPath(path: string): string {
  const parts = path.split("?")[0]!.split("/").filter(Boolean);
  // /api/v1/... or /apis/group/version/...
  let rest = parts[0] === "api" ? parts.slice(2) : parts.slice(3);
  if (rest[0] === "namespaces" && rest.length >= 3) rest = rest.slice(2);
  const [resource, , sub] = rest;
  if (!resource) return "unknown";
  return sub ? `${resource}/${sub}` : resource;
}
