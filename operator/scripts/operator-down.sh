#!/usr/bin/env bash
# Stops the operator started by operator-up.sh and removes its webhook configuration
# (--keep-webhook leaves the configuration, for a restart).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
run=${HASAN_OPERATOR_RUN_DIR:-$repo/.run/operator}
if [[ -f $run/operator.pid ]]; then
  pid=$(cat "$run/operator.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$run/operator.pid"
fi
if [[ ${1:-} != --keep-webhook ]] && [[ -x $repo/hack/cluster/paths.sh ]]; then
  paths=$("$repo/hack/cluster/paths.sh")
  kubeconfig=$(node -e 'console.log(JSON.parse(process.argv[1]).kubeconfig)' "$paths")
  kubectl_bin=$(node -e 'console.log(JSON.parse(process.argv[1]).kubectl)' "$paths")
  if [[ -f $kubeconfig ]]; then
    "$kubectl_bin" --kubeconfig "$kubeconfig" delete validatingwebhookconfiguration hasan-eviction \
      --ignore-not-found --request-timeout=10s >/dev/null 2>&1 || true
  fi
fi
echo "operator stopped"
