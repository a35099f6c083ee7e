# Process helpers for the cluster scripts: one pid file and one log file per component.
# shellcheck source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
PIDS=$HASAN_RUN_DIR/pids
LOGS=$HASAN_RUN_DIR/logs

log() { echo "cluster: $*" >&2; }

# Command-line pattern of each component started for this run directory.
pattern() {
  case $1 in
    etcd) echo "^$ETCD_BIN .*--data-dir $HASAN_RUN_DIR/etcd" ;;
    kube-apiserver | kube-controller-manager | kube-scheduler) echo "^$K8S_BIN/$1 .*$HASAN_RUN_DIR/pki" ;;
    node-agent) echo "node-agent/main.js --kubeconfig $HASAN_RUN_DIR/pki" ;;
  esac
}

# running NAME: the component is alive. A stale pid file is corrected from the process table,
# so a component started by an interrupted run is adopted instead of started twice.
running() {
  local f=$PIDS/$1.pid pid
  if [[ -f $f ]] && pid=$(cat "$f") && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -Eq "$(pattern "$1")"; then
    return 0
  fi
  pid=$(pgrep -o -f "$(pattern "$1")" 2>/dev/null) || return 1
  mkdir -p "$PIDS" && echo "$pid" >"$f"
}

# start NAME CMD...: starts CMD in its own session, logs to $LOGS/NAME.log. The pid file gets
# the component's own pid (setsid may fork, so it is written from inside the new session).
start() {
  local name=$1; shift
  mkdir -p "$PIDS" "$LOGS"
  # fd 9 is the cluster-up lock; the component must not hold it.
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PIDS/$name.pid" "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  for ((i = 0; i < 50; i++)); do [[ -s $PIDS/$name.pid ]] && break; sleep 0.1; done
  log "started $name (pid $(cat "$PIDS/$name.pid" 2>/dev/null))"
}

# stop NAME [GRACE_SECONDS]: SIGTERM the component's session, SIGKILL after the grace period.
stop() {
  local name=$1 grace=${2:-10} f=$PIDS/$1.pid pid
  running "$name" || { rm -f "$f"; return 0; }
  pid=$(cat "$f")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  log "stopped $name"
  rm -f "$f"
}

# wait_for DESCRIPTION SECONDS CMD...: polls CMD until it succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then log "timed out waiting for $what"; return 1; fi
    sleep 0.3
  done
}

api_get() {
  local pki=$HASAN_RUN_DIR/pki
  curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT$1"
}
kctl() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
