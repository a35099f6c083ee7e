{{/* Chart name. */}}
{{- define "hasan.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: the release name when it already contains the chart name. */}}
{{- define "hasan.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "hasan.operatorName" -}}
{{- printf "%s-operator" (include "hasan.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The standard labels of every object the chart renders, from (list $ name component): name and
instance first, so that an object's labels always contain its workload's selector labels (which
are the same two) and a template never lists a key twice. Chart-wide objects (CRD, aggregated
roles, monitoring, CSIDriver, StorageClass) are named after the chart.
*/}}
{{- define "hasan.objectLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ index . 1 }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 2 }}
app.kubernetes.io/part-of: hasan
app.kubernetes.io/version: {{ $.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" $.Chart.Name $.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The operator's objects and pods (a superset of hasan.selectorLabels). */}}
{{- define "hasan.labels" -}}
{{- include "hasan.objectLabels" (list . "hasan-operator" "operator") -}}
{{- end -}}

{{/* The operator's /metrics Service and ServiceMonitor. */}}
{{- define "hasan.metricsLabels" -}}
{{- include "hasan.objectLabels" (list . "hasan-operator" "metrics") -}}
{{- end -}}

{{/* The eviction webhook's Service, configuration and certificate objects. */}}
{{- define "hasan.webhookLabels" -}}
{{- include "hasan.objectLabels" (list . "hasan-operator" "webhook") -}}
{{- end -}}

{{/* Chart-wide objects: (list $ component). */}}
{{- define "hasan.chartLabels" -}}
{{- include "hasan.objectLabels" (list (index . 0) (include "hasan.name" (index . 0)) (index . 1)) -}}
{{- end -}}

{{/* Operator pods; deliberately not app.kubernetes.io/name=hasan-target, which marks target pods. */}}
{{- define "hasan.selectorLabels" -}}
app.kubernetes.io/name: hasan-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "hasan.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "hasan.operatorName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "hasan.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "hasan.webhookService" -}}
{{- printf "%s-webhook" (include "hasan.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hasan.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "hasan.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hasan.webhookConfiguration" -}}
{{- printf "%s-pod-eviction" (include "hasan.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Webhook serving certificate when Helm generates it: the Secret of a previous install is reused so
upgrades keep the CA and the caBundle (and the operator pods need no restart); `helm template` and
first installs generate a new CA. Returns YAML with caCrt, tlsCrt, tlsKey (PEM).
*/}}
{{- define "hasan.webhookCert" -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "hasan.webhookSecret" .) -}}
{{- if and $secret $secret.data (index $secret.data "ca.crt") (index $secret.data "tls.crt") (index $secret.data "tls.key") -}}
caCrt: {{ index $secret.data "ca.crt" | b64dec | quote }}
tlsCrt: {{ index $secret.data "tls.crt" | b64dec | quote }}
tlsKey: {{ index $secret.data "tls.key" | b64dec | quote }}
{{- else -}}
{{- $svc := include "hasan.webhookService" . -}}
{{- $days := int .Values.webhook.tls.validityDays -}}
{{- $ca := genCA "hasan-webhook-ca" $days -}}
{{- $dns := list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc .Release.Namespace) nil $dns $days $ca -}}
caCrt: {{ $ca.Cert | quote }}
tlsCrt: {{ $cert.Cert | quote }}
tlsKey: {{ $cert.Key | quote }}
{{- end -}}
{{- end -}}

{{/* The certificate above, generated once per render and shared by every template that needs it. */}}
{{- define "hasan.webhookCertOnce" -}}
{{- if not (hasKey .Values "_webhookCert") -}}
{{- $_ := set .Values "_webhookCert" (include "hasan.webhookCert" . | fromYaml) -}}
{{- end -}}
{{- toYaml (get .Values "_webhookCert") -}}
{{- end -}}

{{- define "hasan.selfSignedTLS" -}}
{{- and .Values.webhook.enabled (not .Values.webhook.certManager.enabled) -}}
{{- end -}}

{{/* RBAC rules for what the operator does in the namespaces it watches (rbac.yaml). */}}
{{- define "hasan.namespacedRules" }}
  - apiGroups: ["hasan.dev"]
    resources: ["hasantargets"]
    verbs: ["get", "list", "watch", "patch", "update"]
  - apiGroups: ["hasan.dev"]
    resources: ["hasantargets/status"]
    verbs: ["get", "patch", "update"]
  - apiGroups: ["hasan.dev"]
    resources: ["hasantargets/finalizers"]
    verbs: ["update"]
  - apiGroups: [""]
    resources: ["pods", "services", "persistentvolumeclaims"]
    verbs: ["get", "list", "watch", "create", "patch", "delete"]
  - apiGroups: [""]
    resources: ["secrets", "serviceaccounts"]
    verbs: ["get", "list", "create", "patch", "delete"]
  - apiGroups: [""]
    resources: ["events"]
    verbs: ["create", "patch"]
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
  - apiGroups: ["policy"]
    resources: ["poddisruptionbudgets"]
    verbs: ["get", "list", "create", "patch", "delete"]
  - apiGroups: ["rbac.authorization.k8s.io"]
    resources: ["roles", "rolebindings"]
    verbs: ["get", "list", "create", "patch", "delete"]
  - apiGroups: ["networking.k8s.io"]
    resources: ["networkpolicies"]
    verbs: ["get", "list", "create", "patch", "delete"]
{{- end }}

{{/* The CSI driver's objects (csi-*.yaml). The driver name is fixed: PVs record it. */}}
{{- define "hasan.csiDriverName" -}}
iscsi.hasan.dev
{{- end -}}

{{- define "hasan.csiControllerName" -}}
{{- printf "%s-csi-controller" (include "hasan.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hasan.csiNodeName" -}}
{{- printf "%s-csi-node" (include "hasan.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hasan.csiControllerSelectorLabels" -}}
app.kubernetes.io/name: hasan-csi-controller
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "hasan.csiNodeSelectorLabels" -}}
app.kubernetes.io/name: hasan-csi-node
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The CSI controller's and node plugin's objects and pods (supersets of their selector labels). */}}
{{- define "hasan.csiControllerLabels" -}}
{{- include "hasan.objectLabels" (list . "hasan-csi-controller" "csi-controller") -}}
{{- end -}}

{{- define "hasan.csiNodeLabels" -}}
{{- include "hasan.objectLabels" (list . "hasan-csi-node" "csi-node") -}}
{{- end -}}

{{/*
Leases the sidecars elect their leader with, as they name them: external-provisioner the driver
name, external-resizer "external-resizer-" and the driver name (dots become dashes).
*/}}
{{- define "hasan.csiLeaseNames" -}}
["iscsi-hasan-dev", "external-resizer-iscsi-hasan-dev"]
{{- end -}}

{{/* What the CSI controller service does to HASanTargets (csi-rbac.yaml). */}}
{{- define "hasan.csiTargetRules" }}
  - apiGroups: ["hasan.dev"]
    resources: ["hasantargets"]
    verbs: ["get", "list", "create", "patch", "delete"]
{{- end }}
