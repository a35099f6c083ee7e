#!/usr/bin/env bash
# Brings the local cluster up (or reuses the running one) and prints the kubeconfig path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

mkdir -p "$HASAN_RUN_DIR"
# One cluster-up at a time (tests in several files may call it).
exec 9>"$HASAN_RUN_DIR/.lock"
flock 9
"$here/deps.sh"
"$here/tools.sh"
"$here/certs.sh"
pki=$HASAN_RUN_DIR/pki
mkdir -p "$HASAN_RUN_DIR/etcd"

if ! running etcd; then
  start etcd "$ETCD_BIN" --name hasan --data-dir "$HASAN_RUN_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
    --initial-cluster "hasan=http://127.0.0.1:$((ETCD_PORT + 10))" \
    --listen-metrics-urls "" --unsafe-no-fsync --quota-backend-bytes 4294967296 --log-level warn
fi
wait_for etcd 60 curl -sf "http://127.0.0.1:$ETCD_PORT/health"

if ! running kube-apiserver; then
  start kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --secure-port "$APISERVER_PORT" --cert-dir "$pki" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --authorization-mode RBAC \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --allow-privileged=true \
    --endpoint-reconciler-type none \
    --kubelet-preferred-address-types InternalIP \
    --kubelet-certificate-authority "$pki/ca.crt" \
    --kubelet-client-certificate "$pki/admin.crt" --kubelet-client-key "$pki/admin.key" \
    --enable-aggregator-routing=false \
    --profiling=false --v 1
fi
wait_for "kube-apiserver /readyz" 120 api_get /readyz

if ! running kube-controller-manager; then
  start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$pki/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$pki/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$pki/controller-manager.kubeconfig" \
    --leader-elect=false --controllers '*' \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --use-service-account-credentials=true \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --node-monitor-period 2s --node-monitor-grace-period 20s \
    --profiling=false --v 1
fi
if ! running kube-scheduler; then
  start kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig "$pki/scheduler.kubeconfig" \
    --authentication-kubeconfig "$pki/scheduler.kubeconfig" \
    --authorization-kubeconfig "$pki/scheduler.kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" \
    --profiling=false --v 1
fi
kcm_ok() { curl -skf "https://127.0.0.1:$KCM_PORT/healthz"; }
sched_ok() { curl -skf "https://127.0.0.1:$SCHEDULER_PORT/healthz"; }
wait_for kube-controller-manager 120 kcm_ok
wait_for kube-scheduler 120 sched_ok

agent_js=$REPO_ROOT/dist/hack/node-agent/main.js
if [[ ! -f $agent_js ]]; then
  log "compiling TypeScript (dist/ missing)"
  (cd "$REPO_ROOT" && npx tsc -p tsconfig.json >/dev/null) || [[ -f $agent_js ]]
fi
if ! running node-agent; then
  # The project's pods run from its image (built and unpacked here), or with HASAN_NODE_IMAGE=repo
  # from this repository's dist/ on the host's directories (no image build: faster iteration).
  image_flags=()
  case ${HASAN_NODE_IMAGE:-image} in
    image) image_flags=(--image-bundle "$("$REPO_ROOT/hack/cluster/image-rootfs.sh" | tail -n1)") ;;
    repo) ;;
    *) log "HASAN_NODE_IMAGE must be image or repo, not ${HASAN_NODE_IMAGE}"; exit 1 ;;
  esac
  log "the project's pods run from ${image_flags[1]:-the repository (HASAN_NODE_IMAGE=repo)}"
  start node-agent node "$agent_js" \
    --kubeconfig "$pki/node-agent.kubeconfig" --run-dir "$HASAN_RUN_DIR" \
    --nodes "$NODE_COUNT" --control-port "$AGENT_PORT" \
    --pod-cidr "$POD_CIDR" --service-cidr "$SERVICE_CIDR" \
    --apiserver "127.0.0.1:$APISERVER_PORT" --app-root "${HASAN_APP_ROOT:-$REPO_ROOT}" \
    --kubelet-port "$KUBELET_PORT" --dns-port "$DNS_PORT" --kubelet-cert "$pki/kubelet.crt" --kubelet-key "$pki/kubelet.key" \
    "${image_flags[@]}"
fi
agent_ok() { curl -sf "http://127.0.0.1:$AGENT_PORT/healthz"; }
wait_for node-agent 60 agent_ok
wait_for "$NODE_COUNT Ready nodes" 120 kctl wait --for=condition=Ready nodes --all --timeout=5s
# Pods can be created only once the namespace's default ServiceAccount exists.
wait_for "default ServiceAccount" 60 kctl get serviceaccount default -n default
ready=$(kctl get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
  grep -c True || true)
((ready >= NODE_COUNT)) || { log "only $ready nodes Ready"; exit 1; }
log "cluster ready: $ready nodes"
echo "$KUBECONFIG_PATH"
