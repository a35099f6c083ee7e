#!/usr/bin/env bash
# Fault injection through the node agent's control API.
#   ctl.sh fail-node NODE | restore-node NODE | nodes
#   ctl.sh cut-link NS/POD_A NS/POD_B | restore-link NS/POD_A NS/POD_B
set -euo pipefail
source "$(dirname "$0")/env.sh"
api=http://127.0.0.1:$AGENT_PORT
ref() { local ns=${1%%/*} name=${1#*/}; [[ $1 == */* ]] || ns=default; printf '{"namespace":"%s","name":"%s"}' "$ns" "$name"; }
call() { curl -sS --fail-with-body -X "$1" -H 'content-type: application/json' ${3:+-d "$3"} "$api$2"; echo; }
case ${1:-} in
  fail-node) call POST "/nodes/${2:?node}/fail" ;;
  restore-node) call POST "/nodes/${2:?node}/restore" ;;
  nodes) call GET /nodes ;;
  cut-link) call POST /links/cut "{\"a\":$(ref "${2:?pod a}"),\"b\":$(ref "${3:?pod b}")}" ;;
  restore-link) call POST /links/restore "{\"a\":$(ref "${2:?pod a}"),\"b\":$(ref "${3:?pod b}")}" ;;
  *) echo "usage: $0 fail-node|restore-node NODE | nodes | cut-link|restore-link NS/A NS/B" >&2; exit 2 ;;
esac
