# Pinned tool versions for the local cluster. Bumping one rebuilds only that tool.
# Kubernetes: the newest release whose go.mod `go` line the machine's Go satisfies.
KUBERNETES_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
HELM_VERSION=v3.22.0
