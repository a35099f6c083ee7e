#!/usr/bin/env bash
# Runs the operator against the local cluster as a host process: installs the CRD, starts the
# operator (metrics and webhook on 127.0.0.1), and registers the pods/eviction webhook with a
# self-generated CA. Idempotent: a running operator is restarted with the current build.
# Refuses while an operator installed in the cluster (the chart's Deployment, or anyone holding
# its leader-election Lease) runs: the two would lead under different Leases at once.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
run=${HASAN_OPERATOR_RUN_DIR:-$repo/.run/operator}
metrics_port=${HASAN_OPERATOR_METRICS_PORT:-18081}
webhook_port=${HASAN_OPERATOR_WEBHOOK_PORT:-19443}
mkdir -p "$run"

hack/cluster/up.sh >/dev/null
paths=$(hack/cluster/paths.sh)
kubeconfig=$(node -e 'console.log(JSON.parse(process.argv[1]).kubeconfig)' "$paths")
kubectl_bin=$(node -e 'console.log(JSON.parse(process.argv[1]).kubectl)' "$paths")
k() { "$kubectl_bin" --kubeconfig "$kubeconfig" "$@"; }
lease_namespace=hasan-system
lease_id=hasan-operator-local

k get deployments --all-namespaces -l app.kubernetes.io/name=hasan-operator -o json >"$run/deployments.json"
k get leases --all-namespaces -o json >"$run/leases.json"
node dist/operator/scripts/check-installed-operator.js \
  "$run/deployments.json" "$run/leases.json" "$lease_namespace/$lease_id"

k apply --server-side --field-manager=hasan-operator -f crds/hasan.dev_hasantargets.yaml >/dev/null
k wait --for=condition=Established crd/hasantargets.hasan.dev --timeout=60s >/dev/null
k get namespace hasan-system >/dev/null 2>&1 || k create namespace hasan-system >/dev/null

operator/scripts/webhook-certs.sh "$run/pki"
"$(dirname "$0")/operator-down.sh" --keep-webhook >/dev/null 2>&1 || true

nohup node dist/operator/main.js \
  --kubeconfig "$kubeconfig" \
  --leader-elect --leader-election-namespace "$lease_namespace" --leader-election-id "$lease_id" \
  --metrics-addr "127.0.0.1:$metrics_port" \
  --webhook-addr "127.0.0.1:$webhook_port" \
  --webhook-cert "$run/pki/tls.crt" --webhook-key "$run/pki/tls.key" \
  >>"$run/operator.log" 2>&1 &
echo $! >"$run/operator.pid"

for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$metrics_port/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$(cat "$run/operator.pid")" 2>/dev/null; then
    echo "operator exited; see $run/operator.log" >&2
    tail -n 20 "$run/operator.log" >&2
    exit 1
  fi
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$metrics_port/readyz" >/dev/null

ca=$(base64 -w0 <"$run/pki/ca.crt")
k apply --server-side --field-manager=hasan-operator -f - >/dev/null <<YAML
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: hasan-eviction
  labels:
    app.kubernetes.io/name: hasan-operator
webhooks:
  - name: eviction.hasan.dev
    admissionReviewVersions: ["v1"]
    sideEffects: None
    # The PodDisruptionBudget still guards evictions while the operator is down.
    failurePolicy: Ignore
    timeoutSeconds: 5
    clientConfig:
      url: https://127.0.0.1:$webhook_port/validate-eviction
      caBundle: $ca
    rules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["CREATE"]
        resources: ["pods/eviction"]
        scope: Namespaced
YAML
echo "operator running (pid $(cat "$run/operator.pid")), log $run/operator.log, metrics http://127.0.0.1:$metrics_port/metrics"
echo "$kubeconfig"
