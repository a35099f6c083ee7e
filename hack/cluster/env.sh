# Shared paths and addresses of the local cluster; sourced by the scripts in hack/cluster.
# Every value can be overridden from the environment.
_hc_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.sh
source "$_hc_here/versions.sh"
REPO_ROOT=${REPO_ROOT:-$(cd "$_hc_here/../.." && pwd)}
HASAN_CACHE=${HASAN_CACHE:-$HOME/.cache/hasan}
HASAN_RUN_DIR=${HASAN_RUN_DIR:-$REPO_ROOT/.run/cluster}
K8S_BIN=$HASAN_CACHE/tools/kubernetes-$KUBERNETES_VERSION
ETCD_BIN=$HASAN_CACHE/tools/etcd-$ETCD_VERSION/etcd
HELM_BIN=$HASAN_CACHE/tools/helm-$HELM_VERSION/helm
ETCD_PORT=${HASAN_ETCD_PORT:-23790}
APISERVER_PORT=${HASAN_APISERVER_PORT:-16443}
KCM_PORT=${HASAN_KCM_PORT:-20257}
SCHEDULER_PORT=${HASAN_SCHEDULER_PORT:-20259}
AGENT_PORT=${HASAN_AGENT_PORT:-20250}
# The node agent's kubelet API (kubectl logs) listens on each node's InternalIP 127.0.10.N.
KUBELET_PORT=${HASAN_KUBELET_PORT:-10250}
# Cluster DNS (UDP, loopback); pods reach it through the kube-dns Service's cluster IP.
DNS_PORT=${HASAN_DNS_PORT:-20253}
# Pod IPs exist only inside pod network namespaces; cluster IPs exist only as DNAT rules.
POD_CIDR=${HASAN_POD_CIDR:-10.213.0.0/16}
SERVICE_CIDR=${HASAN_SERVICE_CIDR:-10.214.0.0/16}
NODE_COUNT=${HASAN_NODES:-3}
KUBECONFIG_PATH=$HASAN_RUN_DIR/kubeconfig
