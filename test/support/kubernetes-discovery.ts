/**
 * Prometheus's Kubernetes service discovery for a Prometheus built without it (Debian's): pods and
 * EndpointSlices read with kubectl become file_sd target groups carrying the `__meta_kubernetes_*`
 * labels the `pod` and `endpointslice` roles give them, so scrape configs relabel them exactly as
 * they would relabel discovered targets (test/support/prometheus-monitors.ts).
 *
 * Covered: pods' containers' declared ports, EndpointSlices' endpoints with their Service's labels
 * and, for endpoints backed by a pod, the pod's labels and the matching container port. Not
 * covered: containers without ports (Prometheus gives them a port-less target), annotations, node
 * and ingress roles, owner references.
 */
import { rename, writeFile } from "node:fs/promises";
import { z } from "zod";

const Meta = z.object({
  name: z.string(),
  namespace: z.string(),
  labels: z.record(z.string(), z.string()).default({}),
});

const Pod = z.object({
  metadata: Meta,
  spec: z.object({
    nodeName: z.string().optional(),
    containers: z.array(
      z.object({
        name: z.string(),
        ports: z
          .array(
            z.object({
              name: z.string().optional(),
              containerPort: z.int(),
              protocol: z.string().default("TCP"),
            }),
          )
          .default([]),
      }),
    ),
  }),
  status: z.object({ phase: z.string().optional(), podIP: z.string().optional() }).default({}),
});
type Pod = z.infer<typeof Pod>;

const Service = z.object({ metadata: Meta });

const EndpointSlice = z.object({
  metadata: Meta,
  addressType: z.string(),
  ports: z
    .array(
      z.object({
        name: z.string().optional(),
        port: z.int().optional(),
        protocol: z.string().default("TCP"),
      }),
    )
    .nullable()
    .default([]),
  endpoints: z
    .array(
      z.object({
        addresses: z.array(z.string()),
        conditions: z.object({ ready: z.boolean().optional() }).default({}),
        targetRef: z.object({ kind: z.string(), name: z.string() }).optional(),
      }),
    )
    .nullable()
    .default([]),
});

const List = <T>(item: z.ZodType<T>) => z.object({ items: z.array(item) });

export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

const sanitize = (label: string) => label.replace(/[^a-zA-Z0-9_]/g, "_");

function objectLabels(kind: "pod" | "service", labels: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) {
    out[`__meta_kubernetes_${kind}_label_${sanitize(k)}`] = v;
    out[`__meta_kubernetes_${kind}_labelpresent_${sanitize(k)}`] = "true";
  }
  return out;
}

function podLabels(p: Pod): Record<string, string> {
  return {
    __meta_kubernetes_namespace: p.metadata.namespace,
    __meta_kubernetes_pod_name: p.metadata.name,
    __meta_kubernetes_pod_phase: p.status.phase ?? "",
    __meta_kubernetes_pod_ip: p.status.podIP ?? "",
    __meta_kubernetes_pod_node_name: p.spec.nodeName ?? "",
    ...objectLabels("pod", p.metadata.labels),
  };
}

/** The `pod` role: one target per declared container port of each pod with an IP. */
export function podTargetGroups(pods: Pod[]): TargetGroup[] {
  const out: TargetGroup[] = [];
  for (const p of pods) {
    if (!p.status.podIP) continue;
    for (const c of p.spec.containers) {
      for (const port of c.ports) {
        out.push({
          targets: [`${p.status.podIP}:${port.containerPort}`],
          labels: {
            ...podLabels(p),
            __meta_kubernetes_pod_container_name: c.name,
            __meta_kubernetes_pod_container_port_name: port.name ?? "",
            __meta_kubernetes_pod_container_port_number: String(port.containerPort),
            __meta_kubernetes_pod_container_port_protocol: port.protocol,
          },
        });
      }
    }
  }
  return out;
}

/** The `endpointslice` role: one target per address and port of each EndpointSlice. */
export function endpointSliceTargetGroups(
  slices: z.infer<typeof EndpointSlice>[],
  services: z.infer<typeof Service>[],
  pods: Pod[],
): TargetGroup[] {
  const out: TargetGroup[] = [];
  for (const s of slices) {
    const svcName = s.metadata.labels["kubernetes.io/service-name"];
    const svc = services.find(
      (x) => x.metadata.namespace === s.metadata.namespace && x.metadata.name === svcName,
    );
    const sliceLabels = {
      __meta_kubernetes_namespace: s.metadata.namespace,
      __meta_kubernetes_endpointslice_name: s.metadata.name,
      __meta_kubernetes_endpointslice_address_type: s.addressType,
      ...(svc
        ? {
            __meta_kubernetes_service_name: svc.metadata.name,
            ...objectLabels("service", svc.metadata.labels),
          }
        : {}),
    };
    for (const e of s.endpoints ?? []) {
      const pod =
        e.targetRef?.kind === "Pod"
          ? pods.find(
              (p) => p.metadata.namespace === s.metadata.namespace && p.metadata.name === e.targetRef?.name,
            )
          : undefined;
      for (const addr of e.addresses) {
        for (const port of s.ports ?? []) {
          if (port.port === undefined) continue;
          const container = pod?.spec.containers.find((c) =>
            c.ports.some((cp) => cp.containerPort === port.port && cp.protocol === port.protocol),
          );
          const cport = container?.ports.find((cp) => cp.containerPort === port.port);
          out.push({
            targets: [`${addr}:${port.port}`],
            labels: {
              ...sliceLabels,
              __meta_kubernetes_endpointslice_port_name: port.name ?? "",
              __meta_kubernetes_endpointslice_port_protocol: port.protocol,
              __meta_kubernetes_endpointslice_port: String(port.port),
              __meta_kubernetes_endpointslice_endpoint_conditions_ready: String(e.conditions.ready ?? false),
              ...(e.targetRef
                ? {
                    __meta_kubernetes_endpointslice_address_target_kind: e.targetRef.kind,
                    __meta_kubernetes_endpointslice_address_target_name: e.targetRef.name,
                  }
                : {}),
              ...(pod ? podLabels(pod) : {}),
              ...(container && cport
                ? {
                    __meta_kubernetes_pod_container_name: container.name,
                    __meta_kubernetes_pod_container_port_name: cport.name ?? "",
                    __meta_kubernetes_pod_container_port_number: String(cport.containerPort),
                  }
                : {}),
            },
          });
        }
      }
    }
  }
  return out;
}

/** Reads every namespace's pods, Services and EndpointSlices and writes both roles' target files. */
export async function writeDiscoveryFiles(
  kubectl: (args: string[]) => Promise<string>,
  files: { pod: string; endpointslice: string },
): Promise<void> {
  const get = async <T>(schema: z.ZodType<T>, resource: string) =>
    List(schema).parse(JSON.parse(await kubectl(["get", resource, "--all-namespaces", "-o", "json"]))).items;
  const pods = await get(Pod, "pods");
  const services = await get(Service, "services");
  const slices = await get(EndpointSlice, "endpointslices.discovery.k8s.io");
  // Written whole and renamed into place: Prometheus never reads half a file.
  const put = async (file: string, groups: TargetGroup[]) => {
    await writeFile(`${file}.tmp`, JSON.stringify(groups, null, 2));
    await rename(`${file}.tmp`, file);
  };
  await put(files.pod, podTargetGroups(pods));
  await put(files.endpointslice, endpointSliceTargetGroups(slices, services, pods));
}
