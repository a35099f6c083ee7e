#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and helm from
# their Go modules into $HASAN_CACHE/tools/<name>-<version>/ (outside the repository).
# Safe to interrupt and re-run: each tool is built into a temporary directory that is renamed
# into place only when complete, so a present directory is always a finished build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.sh
source "$here/versions.sh"

# shellcheck source=../go-env.sh
source "$here/../go-env.sh"

tools=$HASAN_CACHE/tools
# Two packages at a time keeps peak memory of the big kube-apiserver link well under 24 GiB.
build_flags=(-p 2 -trimpath)

log() { echo "tools: $*" >&2; }

# with_progress WHAT CMD...: runs CMD and, while it runs, says every 30 s what is being built and
# for how long, so a first run that builds for many minutes is never silent.
with_progress() {
  local what=$1; shift
  local start=$SECONDS
  "$@" &
  local pid=$!
  while ! wait_for_exit "$pid" 30; do
    log "still building $what: $(elapsed $((SECONDS - start))) so far ($(elapsed $((SECONDS - total))) in all)"
  done
  wait "$pid"
}
# wait_for_exit PID SECONDS: true once PID has exited, false after SECONDS if it still runs.
wait_for_exit() {
  local i
  for ((i = 0; i < $2; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 1
  done
  ! kill -0 "$1" 2>/dev/null
}
elapsed() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# tool_dir NAME VERSION -> prints the final directory of that build.
tool_dir() { echo "$tools/$1-$2"; }

# A throwaway module that depends on MODULE@VERSION; extra replaces come from stdin.
make_module() {
  local dir=$1 module=$2 version=$3
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && go mod init hasan.local/tools >/dev/null 2>&1 && go mod edit -go=1.26)
  while read -r rep; do
    [[ -n $rep ]] && (cd "$dir" && go mod edit -replace="$rep")
  done
  (cd "$dir" && go mod edit -require="$module@$version")
}

build_kubernetes() {
  local v=$KUBERNETES_VERSION dest
  dest=$(tool_dir kubernetes "$v")
  [[ -x $dest/kube-apiserver && -x $dest/kubectl ]] && return 0
  local minor=${v#v1.}; minor=${minor%%.*}
  local staging_version=v0.${v#v1.}
  local work=$HASAN_CACHE/src/kubernetes-$v
  log "kubernetes $v: resolving modules"
  local gomod
  gomod=$(cd /tmp && go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  # Each staging module k8s.io/X => ./staging/... becomes k8s.io/X => k8s.io/X vN.
  sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$gomod" |
    sed "s#.*#&=&@$staging_version#" | make_module "$work" k8s.io/kubernetes "$v"
  local cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  local pkgs=()
  for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  with_progress "the Kubernetes module graph (go get)" bash -c 'cd "$1" && shift && exec go "$@" >/dev/null' _ "$work" \
    get "${pkgs[@]/%/@$v}"
  local date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  local tmp=$dest.tmp
  mkdir -p "$tmp"
  for c in "${cmds[@]}"; do
    [[ -x $tmp/$c ]] && continue
    log "kubernetes $v: building $c"
    local start=$SECONDS
    with_progress "$c" bash -c 'cd "$1" && shift && exec go "$@"' _ "$work" \
      build "${build_flags[@]}" -ldflags "$ld" -o "$tmp/$c.part" "k8s.io/kubernetes/cmd/$c"
    mv "$tmp/$c.part" "$tmp/$c"
    log "kubernetes $v: $c built in $((SECONDS - start))s"
  done
  rm -rf "$dest" && mv "$tmp" "$dest"
}

# build_simple NAME VERSION MODULE PACKAGE BINARY [LDFLAGS]
build_simple() {
  local name=$1 v=$2 module=$3 pkg=$4 bin=$5 ld=${6:-}
  local dest; dest=$(tool_dir "$name" "$v")
  [[ -x $dest/$bin ]] && return 0
  local work=$HASAN_CACHE/src/$name-$v
  log "$name $v: resolving modules"
  make_module "$work" "$module" "$v" </dev/null
  (cd "$work" && go get "$pkg@$v" >/dev/null)
  local tmp=$dest.tmp start=$SECONDS
  mkdir -p "$tmp"
  log "$name $v: building $bin"
  with_progress "$bin" bash -c 'cd "$1" && shift && exec go "$@"' _ "$work" \
    build "${build_flags[@]}" -ldflags "-s -w $ld" -o "$tmp/$bin.part" "$pkg"
  mv "$tmp/$bin.part" "$tmp/$bin"
  rm -rf "$dest" && mv "$tmp" "$dest"
  log "$name $v: built in $((SECONDS - start))s"
}

total=$SECONDS
ensure_go
mkdir -p "$tools"
build_simple etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3 etcd
build_simple helm "$HELM_VERSION" helm.sh/helm/v3 helm.sh/helm/v3/cmd/helm helm \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
build_kubernetes
log "all tools ready in $((SECONDS - total))s under $tools"
