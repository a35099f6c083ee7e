import { API_VERSION, KIND } from "./target.js";
import type { HASanTargetSpec } from "./spec.js";

interface Sample {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec: HASanTargetSpec;
}

/** Example HASanTargets written to crds/samples/ by `make manifests`. */
export const SAMPLES: Record<string, Sample> = {
  minimal: {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: "data" },
    spec: { capacity: "1Gi" },
  },
  full: {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: "db" },
    spec: {
      capacity: "20Gi",
      storage: { storageClassName: "local-path", size: "21Gi" },
      iqn: "iqn.2024-01.dev.hasan:prod.db",
      auth: {
        chapSecretRef: { name: "db-chap" },
        mutual: true,
        allowedInitiators: ["iqn.1993-08.org.debian:01:node1", "iqn.1993-08.org.debian:01:node2"],
      },
      replication: { resyncRateLimit: "200Mi", tls: { secretRef: { name: "db-peer-tls" } } },
      export: { persistentVolume: { name: "db-san", reclaimPolicy: "Retain", fsType: "xfs" } },
      pod: {
        resources: { requests: { cpu: "500m", memory: "256Mi" }, limits: { memory: "1Gi" } },
        nodeSelector: { "hasan.dev/storage": "true" },
        tolerations: [{ key: "storage", operator: "Exists", effect: "NoSchedule" }],
        priorityClassName: "system-cluster-critical",
        terminationGracePeriodSeconds: 60,
      },
      network: {
        iscsiFrom: [
          { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "apps" } } },
          { ipBlock: { cidr: "192.168.10.0/24" } },
        ],
      },
    },
  },
};

export function sampleFile(name: string): string {
  return `crds/samples/hasan.dev_v1alpha1_hasantarget_${name}.yaml`;
}
