#!/usr/bin/env bash
# make demo / make demo-down.
#   up:   dependencies, build, local cluster (when KUBECONFIG is unset), the operator installed with
#         Helm, one HASanTarget (CHAP with the credentials the operator generates), progress until
#         both nodes are Working, then data written
#         and read back through each portal with qemu-io. Idempotent: a second run reuses it all.
#   down: removes the HASanTarget (with its data), the demo namespace and the Helm release.
# With KUBECONFIG set it installs onto that cluster (kubectl and helm from PATH) and skips the
# local cluster; the data check then needs the portals to be reachable from this machine.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

RELEASE=${HASAN_DEMO_RELEASE:-hasan}
SYSTEM_NS=${HASAN_DEMO_SYSTEM_NAMESPACE:-hasan-system}
NS=${HASAN_DEMO_NAMESPACE:-hasan-demo}
TARGET=demo
CRD=hasantargets.hasan.dev

say() { printf '\n\033[1m== [%dm%02ds] %s\033[0m\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

setup_tools() {
  if [[ -n ${KUBECONFIG:-} ]]; then
    LOCAL=false
    KUBECTL=$(command -v kubectl || true)
    HELM=$(command -v helm || true)
    if [[ -z $KUBECTL || -z $HELM ]]; then
      # Fall back to the tools the local cluster builds from Go modules.
      hack/cluster/tools.sh >/dev/null
      paths=$(hack/cluster/paths.sh)
      KUBECTL=${KUBECTL:-$(node -e 'console.log(JSON.parse(process.argv[1]).kubectl)' "$paths")}
      HELM=${HELM:-$(node -e 'console.log(JSON.parse(process.argv[1]).helm)' "$paths")}
    fi
  else
    LOCAL=true
    paths=$(hack/cluster/paths.sh)
    KUBECONFIG=$(node -e 'console.log(JSON.parse(process.argv[1]).kubeconfig)' "$paths")
    KUBECTL=$(node -e 'console.log(JSON.parse(process.argv[1]).kubectl)' "$paths")
    HELM=$(node -e 'console.log(JSON.parse(process.argv[1]).helm)' "$paths")
  fi
  export KUBECONFIG
}
k() { "$KUBECTL" "$@"; }

# The chart owns the CRD. One applied before (make operator-up, tests) or left by a release that is
# gone is adopted; one owned by another live release stays with it.
crd_flags() {
  local owner name ns
  if ! k get crd "$CRD" >/dev/null 2>&1; then return; fi
  owner=$(k get crd "$CRD" -o jsonpath='{.metadata.annotations.meta\.helm\.sh/release-name}/{.metadata.annotations.meta\.helm\.sh/release-namespace}')
  name=${owner%/*} ns=${owner#*/}
  if [[ $owner == "$RELEASE/$SYSTEM_NS" ]]; then return; fi
  if [[ -n $name ]] && "$HELM" status "$name" -n "$ns" >/dev/null 2>&1; then
    echo "demo: the HASanTarget CRD belongs to release $owner; installing without it" >&2
    echo "--set crds.enabled=false"
    return
  fi
  echo "demo: adopting the existing HASanTarget CRD into release $RELEASE" >&2
  k label crd "$CRD" app.kubernetes.io/managed-by=Helm --overwrite >/dev/null
  k annotate crd "$CRD" "meta.helm.sh/release-name=$RELEASE" "meta.helm.sh/release-namespace=$SYSTEM_NS" --overwrite >/dev/null
}

up() {
  say "dependencies and build"
  hack/deps.sh
  [[ -f dist/operator/main.js && -f dist/target/main.js ]] || npx tsc -p tsconfig.json || true
  [[ -f dist/operator/main.js ]] || die "build failed"
  if [[ -z ${KUBECONFIG:-} ]]; then
    local kubectl_path
    kubectl_path=$(node -e 'console.log(JSON.parse(process.argv[1]).kubectl)' "$(hack/cluster/paths.sh)")
    if [[ ! -x $kubectl_path || ! -x $(dirname "$kubectl_path")/kube-apiserver ]]; then
      say "first run: building etcd, helm and Kubernetes (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl) from their Go modules"
      echo "This takes about 20-30 minutes on 2 CPUs, once (cached under ${HASAN_CACHE:-$HOME/.cache/hasan}/tools);"
      echo "every later run starts the cluster in seconds. Progress is printed every 30 seconds."
    fi
    say "local cluster (control plane from Go modules, 3 nodes; hasan's pods run from its image, built first)"
    hack/cluster/up.sh >/dev/null
  fi
  setup_tools
  k get nodes

  k create namespace "$NS" --dry-run=client -o yaml | k apply -f - >/dev/null
  # The operator watches every namespace, so targets created while following the README's
  # examples (in other namespaces) are reconciled too.
  say "operator (watching every namespace): helm upgrade --install $RELEASE charts/hasan -n $SYSTEM_NS"
  # On the local cluster the CSI node plugin stays off: its DaemonSet needs an iSCSI initiator
  # (iscsid, multipathd) on every node and the node-driver-registrar image, and the local node agent
  # has neither. The CSI controller runs, its sidecars built from their Go modules (make csi-tools).
  local csi_flags=()
  if $LOCAL; then
    hack/csi/tools.sh >/dev/null
    csi_flags=(--set csi.node.enabled=false)
  fi
  # shellcheck disable=SC2046
  "$HELM" upgrade --install "$RELEASE" charts/hasan --namespace "$SYSTEM_NS" --create-namespace \
    --set operator.watchNamespace= "${csi_flags[@]}" $(crd_flags) --wait --timeout 5m
  k -n "$SYSTEM_NS" get deploy,pods -o wide
  k wait --for=condition=Established "crd/$CRD" --timeout=60s >/dev/null

  # No spec.auth: CHAP is on by default, with credentials the operator generates once into the
  # Secret $TARGET-chap (status.auth.chapSecretName); the exported PV points at it.
  say "HASanTarget $NS/$TARGET (CHAP with generated credentials)"
  k -n "$NS" apply -f - <<YAML
apiVersion: hasan.dev/v1alpha1
kind: HASanTarget
metadata:
  name: $TARGET
spec:
  capacity: 256Mi
  replication:
    resyncRateLimit: 64Mi
  export:
    persistentVolume:
      reclaimPolicy: Delete
YAML

  say "waiting for the pair (kubectl -n $NS get hst $TARGET -w)"
  local last="" line deadline=$((SECONDS + 600))
  while :; do
    line=$(k -n "$NS" get hst "$TARGET" --no-headers 2>/dev/null || true)
    if [[ $line != "$last" ]]; then
      [[ -z $last ]] && k -n "$NS" get hst "$TARGET" 2>/dev/null | head -1
      echo "$line"
      last=$line
    fi
    if [[ $(k -n "$NS" get hst "$TARGET" -o jsonpath='{.status.conditions[?(@.type=="Synchronized")].status}' 2>/dev/null) == True ]]; then
      break
    fi
    ((SECONDS < deadline)) || { k -n "$NS" describe hst "$TARGET"; die "the pair did not become Working in 10 minutes"; }
    sleep 2
  done
  k -n "$NS" get pods,svc,pvc -o wide
  k get pv -l "hasan.dev/namespace=$NS"

  say "data through both portals (qemu-io)"
  local iqn portals user pass a b
  iqn=$(k -n "$NS" get hst "$TARGET" -o jsonpath='{.status.iqn}')
  portals=$(k -n "$NS" get hst "$TARGET" -o jsonpath='{.status.portals[*]}')
  read -r a b <<<"$portals"
  # What any client does: status.auth names the Secret that holds the CHAP credentials.
  local secret
  secret=$(k -n "$NS" get hst "$TARGET" -o jsonpath='{.status.auth.chapSecretName}')
  [[ -n $secret ]] || die "status.auth.chapSecretName is empty"
  user=$(k -n "$NS" get secret "$secret" -o jsonpath='{.data.node\.session\.auth\.username}' | base64 -d)
  pass=$(k -n "$NS" get secret "$secret" -o jsonpath='{.data.node\.session\.auth\.password}' | base64 -d)
  echo "CHAP credentials from Secret $secret (generated once by the operator): user $user"
  if qemu-io -f raw -c "read 0 4k" "iscsi://$a/$iqn/0" >/dev/null 2>&1; then
    die "the target let an initiator without credentials log in"
  fi
  echo "without them the target refuses the login"
  url() { echo "iscsi://$user%$pass@$1/$iqn/0"; }
  local pattern=$((RANDOM % 200 + 16))
  echo "portal a $a, portal b $b, IQN $iqn"
  check() {
    local out
    out=$(qemu-io -f raw "$@" 2>&1)
    if grep -qiE 'fail|error|pattern verification' <<<"$out"; then echo "$out" >&2; die "qemu-io failed"; fi
  }
  check -c "write -P $pattern 0 8M" "$(url "$a")"
  echo "wrote 8 MiB of 0x$(printf %x "$pattern") through portal a ($a)"
  check -c "read -P $pattern 0 8M" "$(url "$b")"
  echo "read them back through portal b ($b): identical"
  check -c "write -P $((pattern + 1)) 8M 8M" "$(url "$b")"
  check -c "read -P $((pattern + 1)) 8M 8M" -c "read -P $pattern 0 8M" "$(url "$a")"
  echo "wrote 8 MiB more through portal b, read all 16 MiB through portal a: identical"

  local kc=""
  $LOCAL && kc="export KUBECONFIG=$KUBECONFIG"
  say "try next"
  cat <<TXT
$kc
kubectl -n $NS get hst $TARGET -w                       # watch the pair (A, B, Sync columns)
kubectl -n $NS get hst $TARGET -o jsonpath='{.status.conditions}' | jq   # Ready, Synchronized, Degraded, ...
$( $LOCAL && echo "make node-fail NODE=\$(kubectl -n $NS get pod $TARGET-b -o jsonpath='{.spec.nodeName}')   # node b fails: a goes on alone (Failed)" )
$( $LOCAL && echo "qemu-io -f raw -c 'write -P 7 0 64M' '$(url "$a")'   # change data while b is away" )
$( $LOCAL && echo "make node-restore NODE=<that node>                   # b returns: a Synchronizing, b Pending" )
kubectl drain <node of $TARGET-a or $TARGET-b> --ignore-daemonsets --delete-emptydir-data   # waits (429) during a resync
kubectl uncordon <node>
kubectl -n $NS describe hst $TARGET                     # events: every node state change
make demo-down                                          # remove the demo
TXT
}

down() {
  setup_tools
  if k get crd "$CRD" >/dev/null 2>&1 && k -n "$NS" get hst "$TARGET" >/dev/null 2>&1; then
    say "deleting HASanTarget $NS/$TARGET (the operator removes its pods, PVCs and PV)"
    k -n "$NS" delete hst "$TARGET" --wait=false
    if ! k -n "$NS" wait --for=delete "hst/$TARGET" --timeout=120s; then
      echo "demo: the operator did not finalize it; removing the finalizer" >&2
      k -n "$NS" patch hst "$TARGET" --type=merge -p '{"metadata":{"finalizers":null}}' || true
    fi
  fi
  k delete pv -l "hasan.dev/namespace=$NS" --ignore-not-found --wait=false
  say "deleting namespace $NS"
  k delete namespace "$NS" --ignore-not-found --timeout=120s
  if "$HELM" status "$RELEASE" -n "$SYSTEM_NS" >/dev/null 2>&1; then
    say "helm uninstall $RELEASE"
    "$HELM" uninstall "$RELEASE" -n "$SYSTEM_NS" --wait --timeout 2m
  fi
  k delete namespace "$SYSTEM_NS" --ignore-not-found --timeout=120s
  echo "demo removed (the HASanTarget CRD stays: crds.keep; the local cluster keeps running: make cluster-down)"
}

case ${1:-up} in
  up) up ;;
  down) down ;;
  *) die "usage: demo.sh up|down" ;;
esac
