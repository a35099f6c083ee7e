import { z } from "zod";

// The subset of Kubernetes objects the node agent reads. Loose objects keep unknown fields, so a
// status or spec written back is never truncated by accident.

const strMap = z.record(z.string(), z.string());

export const ObjectMeta = z.looseObject({
  name: z.string(),
  namespace: z.string().optional(),
  uid: z.string().default(""),
  resourceVersion: z.string().optional(),
  generation: z.number().optional(),
  labels: strMap.optional(),
  annotations: strMap.optional(),
  deletionTimestamp: z.string().optional(),
  deletionGracePeriodSeconds: z.number().optional(),
  creationTimestamp: z.string().optional(),
});
export type ObjectMeta = z.infer<typeof ObjectMeta>;

const KeySelector = z.looseObject({
  name: z.string().optional(),
  key: z.string(),
  optional: z.boolean().optional(),
});
const FieldRef = z.looseObject({ fieldPath: z.string(), apiVersion: z.string().optional() });
const ResourceFieldRef = z.looseObject({ resource: z.string(), containerName: z.string().optional() });

export const EnvVar = z.looseObject({
  name: z.string(),
  value: z.string().optional(),
  valueFrom: z
    .looseObject({
      fieldRef: FieldRef.optional(),
      resourceFieldRef: ResourceFieldRef.optional(),
      secretKeyRef: KeySelector.optional(),
      configMapKeyRef: KeySelector.optional(),
    })
    .optional(),
});
export type EnvVar = z.infer<typeof EnvVar>;

export const EnvFromSource = z.looseObject({
  prefix: z.string().optional(),
  configMapRef: z.looseObject({ name: z.string(), optional: z.boolean().optional() }).optional(),
  secretRef: z.looseObject({ name: z.string(), optional: z.boolean().optional() }).optional(),
});
export type EnvFromSource = z.infer<typeof EnvFromSource>;

const IntOrString = z.union([z.number(), z.string()]);

export const Probe = z.looseObject({
  httpGet: z
    .looseObject({
      path: z.string().optional(),
      port: IntOrString,
      host: z.string().optional(),
      scheme: z.string().optional(),
      httpHeaders: z.array(z.looseObject({ name: z.string(), value: z.string() })).optional(),
    })
    .optional(),
  tcpSocket: z.looseObject({ port: IntOrString, host: z.string().optional() }).optional(),
  exec: z.looseObject({ command: z.array(z.string()).optional() }).optional(),
  initialDelaySeconds: z.number().optional(),
  periodSeconds: z.number().optional(),
  timeoutSeconds: z.number().optional(),
  successThreshold: z.number().optional(),
  failureThreshold: z.number().optional(),
});
export type Probe = z.infer<typeof Probe>;

export const VolumeMount = z.looseObject({
  name: z.string(),
  mountPath: z.string(),
  subPath: z.string().optional(),
  readOnly: z.boolean().optional(),
});
export type VolumeMount = z.infer<typeof VolumeMount>;

export const Container = z.looseObject({
  name: z.string(),
  image: z.string().default(""),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  workingDir: z.string().optional(),
  env: z.array(EnvVar).optional(),
  envFrom: z.array(EnvFromSource).optional(),
  ports: z
    .array(
      z.looseObject({
        name: z.string().optional(),
        containerPort: z.number(),
        protocol: z.string().optional(),
      }),
    )
    .optional(),
  volumeMounts: z.array(VolumeMount).optional(),
  readinessProbe: Probe.optional(),
  livenessProbe: Probe.optional(),
  startupProbe: Probe.optional(),
  restartPolicy: z.string().optional(),
  securityContext: z
    .looseObject({ runAsUser: z.number().int().optional(), runAsGroup: z.number().int().optional() })
    .optional(),
});
export type Container = z.infer<typeof Container>;

const KeyToPath = z.looseObject({ key: z.string(), path: z.string(), mode: z.number().optional() });
const DownwardItem = z.looseObject({
  path: z.string(),
  fieldRef: FieldRef.optional(),
  resourceFieldRef: ResourceFieldRef.optional(),
  mode: z.number().optional(),
});

export const ProjectionSource = z.looseObject({
  serviceAccountToken: z
    .looseObject({
      path: z.string(),
      audience: z.string().optional(),
      expirationSeconds: z.number().optional(),
    })
    .optional(),
  configMap: z
    .looseObject({ name: z.string(), items: z.array(KeyToPath).optional(), optional: z.boolean().optional() })
    .optional(),
  secret: z
    .looseObject({ name: z.string(), items: z.array(KeyToPath).optional(), optional: z.boolean().optional() })
    .optional(),
  downwardAPI: z.looseObject({ items: z.array(DownwardItem).optional() }).optional(),
});
export type ProjectionSource = z.infer<typeof ProjectionSource>;

export const Volume = z.looseObject({
  name: z.string(),
  emptyDir: z.looseObject({}).optional(),
  hostPath: z.looseObject({ path: z.string(), type: z.string().optional() }).optional(),
  secret: z
    .looseObject({
      secretName: z.string(),
      items: z.array(KeyToPath).optional(),
      optional: z.boolean().optional(),
      defaultMode: z.number().optional(),
    })
    .optional(),
  configMap: z
    .looseObject({
      name: z.string(),
      items: z.array(KeyToPath).optional(),
      optional: z.boolean().optional(),
      defaultMode: z.number().optional(),
    })
    .optional(),
  projected: z
    .looseObject({ sources: z.array(ProjectionSource).optional(), defaultMode: z.number().optional() })
    .optional(),
  downwardAPI: z.looseObject({ items: z.array(DownwardItem).optional() }).optional(),
  persistentVolumeClaim: z
    .looseObject({ claimName: z.string(), readOnly: z.boolean().optional() })
    .optional(),
});
export type Volume = z.infer<typeof Volume>;

export const ContainerStatus = z.looseObject({
  name: z.string(),
  restartCount: z.number().default(0),
  ready: z.boolean().default(false),
});

export const Pod = z.looseObject({
  metadata: ObjectMeta,
  spec: z.looseObject({
    nodeName: z.string().optional(),
    containers: z.array(Container),
    initContainers: z.array(Container).optional(),
    volumes: z.array(Volume).optional(),
    restartPolicy: z.string().optional(),
    terminationGracePeriodSeconds: z.number().optional(),
    hostNetwork: z.boolean().optional(),
    serviceAccountName: z.string().optional(),
    enableServiceLinks: z.boolean().optional(),
    hostname: z.string().optional(),
    subdomain: z.string().optional(),
    securityContext: z
      .looseObject({
        runAsUser: z.number().int().optional(),
        runAsGroup: z.number().int().optional(),
        fsGroup: z.number().int().optional(),
        supplementalGroups: z.array(z.number().int()).optional(),
      })
      .optional(),
  }),
  status: z
    .looseObject({
      phase: z.string().optional(),
      podIP: z.string().optional(),
      containerStatuses: z.array(ContainerStatus).optional(),
    })
    .optional(),
});
export type Pod = z.infer<typeof Pod>;

export const ServicePort = z.looseObject({
  name: z.string().optional(),
  protocol: z.string().optional(),
  port: z.number(),
  targetPort: IntOrString.optional(),
});
export const Service = z.looseObject({
  metadata: ObjectMeta,
  spec: z.looseObject({
    clusterIP: z.string().optional(),
    clusterIPs: z.array(z.string()).optional(),
    ports: z.array(ServicePort).optional(),
    type: z.string().optional(),
    selector: strMap.optional(),
  }),
});
export type Service = z.infer<typeof Service>;

export const EndpointSlice = z.looseObject({
  metadata: ObjectMeta,
  addressType: z.string(),
  endpoints: z
    .array(
      z.looseObject({
        addresses: z.array(z.string()),
        hostname: z.string().optional(),
        conditions: z.looseObject({ ready: z.boolean().optional() }).optional(),
      }),
    )
    .nullish(),
  ports: z
    .array(
      z.looseObject({
        name: z.string().nullish(),
        port: z.number().nullish(),
        protocol: z.string().nullish(),
      }),
    )
    .nullish(),
});
export type EndpointSlice = z.infer<typeof EndpointSlice>;

export const KeyedData = z.looseObject({
  metadata: ObjectMeta,
  data: strMap.optional(),
  binaryData: strMap.optional(),
  stringData: strMap.optional(),
});
export type KeyedData = z.infer<typeof KeyedData>;

export const PersistentVolumeClaim = z.looseObject({
  metadata: ObjectMeta,
  spec: z.looseObject({ volumeName: z.string().optional() }),
  status: z.looseObject({ phase: z.string().optional() }).optional(),
});

export const PersistentVolume = z.looseObject({
  metadata: ObjectMeta,
  spec: z.looseObject({
    local: z.looseObject({ path: z.string() }).optional(),
    hostPath: z.looseObject({ path: z.string() }).optional(),
    csi: z.looseObject({ driver: z.string() }).optional(),
    claimRef: z.looseObject({ name: z.string().optional(), namespace: z.string().optional() }).nullish(),
  }),
  status: z.looseObject({ phase: z.string().optional() }).optional(),
});
export type PersistentVolume = z.infer<typeof PersistentVolume>;

export const TokenRequestStatus = z.looseObject({
  status: z.looseObject({ token: z.string(), expirationTimestamp: z.string() }),
});

export const Node = z.looseObject({ metadata: ObjectMeta });

export const Status = z.looseObject({ kind: z.string().optional() });
