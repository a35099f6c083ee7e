#!/usr/bin/env bash
# Stops every component, removes pod network namespaces, veths, routes and iptables rules, and
# deletes the run directory (set HASAN_KEEP_RUN=1 to keep it). Safe to run when nothing is up.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

# The agent gets time to stop pods gracefully and tear down their networks itself.
stop node-agent 30
for c in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$c" 15; done
"$here/net-clean.sh"
if [[ ${HASAN_KEEP_RUN:-0} != 1 && -d $HASAN_RUN_DIR ]]; then
  # Pod volumes may still be bind-mounted by a crashed pod; never follow mounts when deleting.
  if findmnt -rn -o TARGET | grep -q "^$HASAN_RUN_DIR/"; then
    findmnt -rn -o TARGET | grep "^$HASAN_RUN_DIR/" | sort -r | xargs -r -n1 umount -l || true
  fi
  rm -rf --one-file-system "$HASAN_RUN_DIR"
  log "removed $HASAN_RUN_DIR"
fi
log "cluster down"
