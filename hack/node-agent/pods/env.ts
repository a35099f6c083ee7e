import type { Container, EnvVar, KeyedData, Pod } from "../kube/schemas.js";

/** Keys of a ConfigMap or Secret with their decoded bytes. */
export type DataMap = Record<string, Buffer>;

// Pure construction of a container's environment, as the kubelet does it.

export interface EnvSources {
  pod: Pod;
  podIP: string;
  hostIP: string;
  configMaps: Map<string, DataMap | undefined>;
  secrets: Map<string, DataMap | undefined>;
  /** Service environment variables (docker-link style), already computed. */
  serviceEnv: Record<string, string>;
  /** The image's Env: under everything the pod sets, over the default PATH. */
  imageEnv?: Record<string, string>;
}

export interface EnvResult {
  env: Record<string, string>;
  warnings: string[];
  /** A required reference is missing: the container cannot start (CreateContainerConfigError). */
  error?: string;
}

export const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Decodes a Secret's or ConfigMap's data (Secret data and binaryData are base64). */
export function decodeData(obj: KeyedData, secret: boolean): DataMap {
  const out: DataMap = {};
  for (const [k, v] of Object.entries(obj.data ?? {}))
    out[k] = secret ? Buffer.from(v, "base64") : Buffer.from(v);
  for (const [k, v] of Object.entries(obj.binaryData ?? {})) out[k] = Buffer.from(v, "base64");
  for (const [k, v] of Object.entries(obj.stringData ?? {})) out[k] = Buffer.from(v);
  return out;
}

/** Values of downward-API field paths; undefined for unsupported ones. */
export function fieldValue(pod: Pod, podIP: string, hostIP: string, fieldPath: string): string | undefined {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (m) return pod.metadata[m[1] as "labels" | "annotations"]?.[m[2] ?? ""];
  switch (fieldPath) {
    case "metadata.name":
      return pod.metadata.name;
    case "metadata.namespace":
      return pod.metadata.namespace ?? "default";
    case "metadata.uid":
      return pod.metadata.uid;
    case "spec.nodeName":
      return pod.spec.nodeName ?? "";
    case "spec.serviceAccountName":
      return pod.spec.serviceAccountName ?? "default";
    case "status.podIP":
    case "status.podIPs":
      return podIP;
    case "status.hostIP":
    case "status.hostIPs":
      return hostIP;
    default:
      return undefined;
  }
}

/** Expands $(VAR) references; $$ escapes; unknown references stay as written. */
export function expandVars(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => {
    if (whole === "$$") return "$";
    return name !== undefined && name in env ? (env[name] ?? "") : whole;
  });
}

export function containerEnv(container: Container, src: EnvSources): EnvResult {
  const warnings: string[] = [];
  const ns = src.pod.metadata.namespace ?? "default";
  const env: Record<string, string> = {
    PATH: defaultPath,
    ...src.imageEnv,
    HOSTNAME: src.pod.spec.hostname ?? src.pod.metadata.name,
    ...(src.pod.spec.enableServiceLinks === false ? {} : src.serviceEnv),
  };
  for (const from of container.envFrom ?? []) {
    const ref = from.configMapRef ?? from.secretRef;
    if (!ref) continue;
    const obj = (from.configMapRef ? src.configMaps : src.secrets).get(ref.name);
    if (!obj) {
      if (ref.optional) continue;
      return {
        env,
        warnings,
        error: `${from.configMapRef ? "configmap" : "secret"} "${ns}/${ref.name}" not found`,
      };
    }
    for (const [k, v] of Object.entries(obj)) env[`${from.prefix ?? ""}${k}`] = v.toString("utf8");
  }
  for (const v of container.env ?? []) {
    const value = envVarValue(v, src, env, warnings);
    if (typeof value === "object") return { env, warnings, error: value.error };
    if (value !== undefined) env[v.name] = value;
  }
  return { env, warnings };
}

function envVarValue(
  v: EnvVar,
  src: EnvSources,
  env: Record<string, string>,
  warnings: string[],
): string | undefined | { error: string } {
  if (v.value !== undefined) return expandVars(v.value, env);
  const from = v.valueFrom;
  if (!from) return "";
  if (from.fieldRef) {
    const val = fieldValue(src.pod, src.podIP, src.hostIP, from.fieldRef.fieldPath);
    if (val === undefined) warnings.push(`env ${v.name}: field ${from.fieldRef.fieldPath} not supported`);
    return val;
  }
  if (from.resourceFieldRef) {
    warnings.push(`env ${v.name}: resourceFieldRef ${from.resourceFieldRef.resource} skipped`);
    return undefined;
  }
  const ref = from.secretKeyRef ?? from.configMapKeyRef;
  if (ref) {
    const kind = from.secretKeyRef ? "secret" : "configmap";
    const obj = (from.secretKeyRef ? src.secrets : src.configMaps).get(ref.name ?? "");
    const val = obj?.[ref.key]?.toString("utf8");
    if (val === undefined && !ref.optional) {
      return { error: `${kind} "${ref.name}" key "${ref.key}" not found (env ${v.name})` };
    }
    return val;
  }
  return "";
}

/** Docker-link style variables for the Services of the pod's namespace (and `kubernetes`). */
export function serviceLinkEnv(
  services: { name: string; clusterIP: string; ports: { name?: string; port: number; protocol: string }[] }[],
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const s of services) {
    const first = s.ports[0];
    if (!first || !s.clusterIP || s.clusterIP === "None") continue;
    const n = s.name.toUpperCase().replace(/-/g, "_");
    const proto = first.protocol.toLowerCase();
    env[`${n}_SERVICE_HOST`] = s.clusterIP;
    env[`${n}_SERVICE_PORT`] = String(first.port);
    env[`${n}_PORT`] = `${proto}://${s.clusterIP}:${first.port}`;
    for (const p of s.ports) {
      const pp = p.protocol.toLowerCase();
      if (p.name) env[`${n}_SERVICE_PORT_${p.name.toUpperCase().replace(/-/g, "_")}`] = String(p.port);
      const base = `${n}_PORT_${p.port}_${p.protocol.toUpperCase()}`;
      env[base] = `${pp}://${s.clusterIP}:${p.port}`;
      env[`${base}_PROTO`] = pp;
      env[`${base}_PORT`] = String(p.port);
      env[`${base}_ADDR`] = s.clusterIP;
    }
  }
  return env;
}
