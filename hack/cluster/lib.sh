# Process helpers for the cluster scripts: one pid file and one log file per component.
# shellcheck source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
PIDS=$HASAN_RUN_DIR/pids
LOGS=$HASAN_RUN_DIR/logs

log() { echo "cluster: $*" >&2; }

# running NAME: the component's recorded process is alive.
running() {
  local f=$PIDS/$1.pid
  [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

# start NAME CMD...: starts CMD in its own session, logs to $LOGS/NAME.log.
start() {
  local name=$1; shift
  mkdir -p "$PIDS" "$LOGS"
  # fd 9 is the cluster-up lock; the component must not hold it.
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$PIDS/$name.pid"
  log "started $name (pid $!)"
}

# stop NAME [GRACE_SECONDS]: SIGTERM the component's session, SIGKILL after the grace period.
stop() {
  local name=$1 grace=${2:-10} f=$PIDS/$1.pid pid
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    log "stopped $name"
  fi
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
