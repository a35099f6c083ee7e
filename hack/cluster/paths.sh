#!/usr/bin/env bash
# Prints the cluster's paths and ports as JSON (for test/support/cluster.ts).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cat <<JSON
{"kubeconfig":"$KUBECONFIG_PATH","kubectl":"$K8S_BIN/kubectl","helm":"$HELM_BIN","runDir":"$HASAN_RUN_DIR","agentPort":$AGENT_PORT,"kubernetesVersion":"$KUBERNETES_VERSION"}
JSON
