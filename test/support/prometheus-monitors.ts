/**
 * Prometheus scrape configs for the chart's ServiceMonitor and PodMonitor, built the way the
 * Prometheus operator builds them: discovery of EndpointSlices (ServiceMonitor) or pods
 * (PodMonitor), its keep rules for the namespaces, the selector and the port name, its target labels
 * (namespace, service, pod, container, endpoint, job), then the monitor's own relabelings.
 *
 * Debian's Prometheus is built without Kubernetes service discovery: the targets come from files
 * (file_sd) that test/support/kubernetes-discovery.ts fills with the `__meta_kubernetes_*` labels
 * Kubernetes discovery would give them, so the relabeling below is Prometheus's own, unchanged.
 *
 * Not emulated: sharding (hashmod), bearer tokens and TLS to the targets (the chart's monitors use
 * neither), `jobLabel`/`targetLabels`/`podTargetLabels` (unused), and the NetworkPolicies that admit
 * scrapers (the local cluster does not enforce NetworkPolicies).
 */
import { z } from "zod";

const Relabeling = z.object({
  sourceLabels: z.array(z.string()).optional(),
  targetLabel: z.string().optional(),
  regex: z.string().optional(),
  replacement: z.string().optional(),
  action: z.string().optional(),
  separator: z.string().optional(),
});
type Relabeling = z.infer<typeof Relabeling>;

const Endpoint = z.object({
  port: z.string(),
  path: z.string().default("/metrics"),
  scheme: z.string().default("http"),
  interval: z.string().optional(),
  honorLabels: z.boolean().default(false),
  relabelings: z.array(Relabeling).default([]),
});

const Meta = z.object({ name: z.string(), namespace: z.string() });
const Selector = z.object({ matchLabels: z.record(z.string(), z.string()).default({}) });
const NamespaceSelector = z
  .object({ any: z.boolean().optional(), matchNames: z.array(z.string()).optional() })
  .default({});

export const ServiceMonitor = z.object({
  kind: z.literal("ServiceMonitor"),
  metadata: Meta,
  spec: z.object({
    selector: Selector,
    namespaceSelector: NamespaceSelector,
    endpoints: z.array(Endpoint),
  }),
});
export type ServiceMonitor = z.infer<typeof ServiceMonitor>;

export const PodMonitor = z.object({
  kind: z.literal("PodMonitor"),
  metadata: Meta,
  spec: z.object({
    selector: Selector,
    namespaceSelector: NamespaceSelector,
    podMetricsEndpoints: z.array(Endpoint),
  }),
});
export type PodMonitor = z.infer<typeof PodMonitor>;

/** Kubernetes label name → the name in Prometheus's discovery labels. */
const sanitize = (label: string) => label.replace(/[^a-zA-Z0-9_]/g, "_");

/** prometheus-operator's camelCase relabeling → Prometheus's relabel_config. */
function relabelConfig(r: Relabeling): Record<string, unknown> {
  return {
    ...(r.sourceLabels ? { source_labels: r.sourceLabels } : {}),
    ...(r.targetLabel ? { target_label: r.targetLabel } : {}),
    ...(r.regex ? { regex: r.regex } : {}),
    ...(r.replacement !== undefined ? { replacement: r.replacement } : {}),
    ...(r.separator ? { separator: r.separator } : {}),
    action: (r.action ?? "replace").toLowerCase(),
  };
}

/** Keep only objects carrying every selector label (the `labelpresent` half makes `=""` strict). */
function selectorKeeps(kind: "service" | "pod", matchLabels: Record<string, string>) {
  return Object.entries(matchLabels).map(([k, v]) => ({
    source_labels: [
      `__meta_kubernetes_${kind}_label_${sanitize(k)}`,
      `__meta_kubernetes_${kind}_labelpresent_${sanitize(k)}`,
    ],
    regex: `(${v});true`,
    action: "keep",
  }));
}

/** Kubernetes discovery's namespace list as a keep rule (none for `any: true`). */
function namespaceKeep(sel: { any?: boolean | undefined; matchNames?: string[] | undefined }, own: string) {
  if (sel.any) return [];
  const names = sel.matchNames ?? [own];
  return [{ source_labels: ["__meta_kubernetes_namespace"], regex: `(${names.join("|")})`, action: "keep" }];
}

const fileSd = (file: string) => [{ files: [file], refresh_interval: "5s" }];

/** The scrape configs of one ServiceMonitor (one per endpoint). */
export function serviceMonitorScrapeConfigs(m: ServiceMonitor, endpointSliceTargets: string): unknown[] {
  return m.spec.endpoints.map((e, i) => ({
    job_name: `serviceMonitor/${m.metadata.namespace}/${m.metadata.name}/${i}`,
    honor_labels: e.honorLabels,
    metrics_path: e.path,
    scheme: e.scheme,
    ...(e.interval ? { scrape_interval: e.interval } : {}),
    file_sd_configs: fileSd(endpointSliceTargets),
    relabel_configs: [
      ...namespaceKeep(m.spec.namespaceSelector, m.metadata.namespace),
      ...selectorKeeps("service", m.spec.selector.matchLabels),
      { source_labels: ["__meta_kubernetes_endpointslice_port_name"], regex: e.port, action: "keep" },
      {
        source_labels: [
          "__meta_kubernetes_endpointslice_address_target_kind",
          "__meta_kubernetes_endpointslice_address_target_name",
        ],
        separator: ";",
        regex: "Pod;(.*)",
        target_label: "pod",
        replacement: "${1}",
      },
      { source_labels: ["__meta_kubernetes_namespace"], target_label: "namespace" },
      { source_labels: ["__meta_kubernetes_service_name"], target_label: "service" },
      { source_labels: ["__meta_kubernetes_pod_name"], target_label: "pod" },
      { source_labels: ["__meta_kubernetes_pod_container_name"], target_label: "container" },
      { source_labels: ["__meta_kubernetes_pod_phase"], regex: "(Failed|Succeeded)", action: "drop" },
      { source_labels: ["__meta_kubernetes_service_name"], target_label: "job", replacement: "${1}" },
      { target_label: "endpoint", replacement: e.port },
      ...e.relabelings.map(relabelConfig),
    ],
  }));
}

/** The scrape configs of one PodMonitor (one per endpoint). */
export function podMonitorScrapeConfigs(m: PodMonitor, podTargets: string): unknown[] {
  return m.spec.podMetricsEndpoints.map((e, i) => ({
    job_name: `podMonitor/${m.metadata.namespace}/${m.metadata.name}/${i}`,
    honor_labels: e.honorLabels,
    metrics_path: e.path,
    scheme: e.scheme,
    ...(e.interval ? { scrape_interval: e.interval } : {}),
    file_sd_configs: fileSd(podTargets),
    relabel_configs: [
      ...namespaceKeep(m.spec.namespaceSelector, m.metadata.namespace),
      ...selectorKeeps("pod", m.spec.selector.matchLabels),
      { source_labels: ["__meta_kubernetes_pod_phase"], regex: "(Failed|Succeeded)", action: "drop" },
      { source_labels: ["__meta_kubernetes_pod_container_port_name"], regex: e.port, action: "keep" },
      { source_labels: ["__meta_kubernetes_namespace"], target_label: "namespace" },
      { source_labels: ["__meta_kubernetes_pod_container_name"], target_label: "container" },
      { source_labels: ["__meta_kubernetes_pod_name"], target_label: "pod" },
      { target_label: "job", replacement: `${m.metadata.namespace}/${m.metadata.name}` },
      { target_label: "endpoint", replacement: e.port },
      ...e.relabelings.map(relabelConfig),
    ],
  }));
}
