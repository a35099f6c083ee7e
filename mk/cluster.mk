# Local cluster: control plane built from Go modules + the TypeScript node agent (hack/cluster).
.PHONY: tools cluster-up cluster-down node-fail node-restore link-cut link-restore cluster-logs

tools: ## build etcd, kube-apiserver, controller-manager, scheduler, kubectl, helm into ~/.cache/hasan
	@hack/cluster/tools.sh

cluster-up: build ## start the local cluster (or reuse the running one); prints the kubeconfig path
	@hack/cluster/up.sh

cluster-down: ## stop the local cluster and remove its network namespaces, rules and run directory
	@hack/cluster/down.sh

node-fail: ## fail a node: NODE=hasan-node-1 (heartbeats stop, its processes are killed)
	@hack/cluster/ctl.sh fail-node "$(NODE)"

node-restore: ## restore a failed node: NODE=hasan-node-1
	@hack/cluster/ctl.sh restore-node "$(NODE)"

link-cut: ## drop traffic between two pods: A=ns/pod B=ns/pod
	@hack/cluster/ctl.sh cut-link "$(A)" "$(B)"

link-restore: ## restore traffic between two pods: A=ns/pod B=ns/pod
	@hack/cluster/ctl.sh restore-link "$(A)" "$(B)"

cluster-logs: ## container logs of a pod: POD=name [NS=namespace]
	@hack/cluster/logs -n "$(or $(NS),default)" "$(POD)"

# The integration and e2e suites bring the cluster up themselves; its tools are built first so a
# cold build (about 19 minutes) never runs inside a test's timeout.
test test-integration: tools
