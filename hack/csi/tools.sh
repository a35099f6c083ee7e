#!/usr/bin/env bash
# Builds the CSI sidecars and the sanity suite from their Go modules into
# $HASAN_CACHE/tools/csi-<versions>/ (outside the repository): csi-provisioner, csi-resizer and
# csi-sanity. Quiet and cheap when the directory exists: it is renamed into place only when every
# binary is built, so a present directory is always a finished build. Prints that directory on its
# last line.
#
#   hack/csi/tools.sh               build (or reuse) and print the directory
#   hack/csi/tools.sh --check-proto compare operator/csi/proto/csi.proto with the pinned spec's
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.sh
source "$here/versions.sh"
# shellcheck source=../go-env.sh
source "$here/../go-env.sh"

log() { echo "csi-tools: $*" >&2; }

if [[ ${1:-} == --check-proto ]]; then
  ensure_go
  dir=$(cd /tmp && go mod download -json "github.com/container-storage-interface/spec@$CSI_SPEC_VERSION" |
    sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
  cmp "$dir/csi.proto" "$here/../../operator/csi/proto/csi.proto"
  cmp "$dir/LICENSE" "$here/../../operator/csi/proto/LICENSE"
  log "operator/csi/proto matches the spec $CSI_SPEC_VERSION"
  exit 0
fi

dest=$HASAN_CACHE/tools/csi-provisioner-$CSI_PROVISIONER_VERSION-resizer-$CSI_RESIZER_VERSION-test-$CSI_TEST_VERSION
if [[ -x $dest/csi-provisioner && -x $dest/csi-resizer && -x $dest/csi-sanity ]]; then
  echo "$dest"
  exit 0
fi

# build MODULE VERSION PACKAGE BINARY OUTDIR: through a throwaway module that depends on MODULE.
# A dependency's replace directives do not apply to the module that requires it (external-
# provisioner pins its k8s.io modules that way), so they are copied into the throwaway module.
build() {
  local module=$1 v=$2 pkg=$3 bin=$4 out=$5
  local work=$HASAN_CACHE/src/csi-$bin-$v start=$SECONDS gomod
  log "$bin $v: resolving modules"
  rm -rf "$work" && mkdir -p "$work"
  (cd "$work" && go mod init hasan.local/tools >/dev/null 2>&1 && go mod edit -go=1.26)
  gomod=$(cd /tmp && go mod download -json "$module@$v" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  sed -n 's#^replace \([^ ]*\) => \([^ ]*\) \(v[^ ]*\)$#\1=\2@\3#p' "$gomod" |
    while read -r rep; do (cd "$work" && go mod edit -replace="$rep"); done
  (cd "$work" && go mod edit -require="$module@$v" && go get "$pkg@$v" >/dev/null 2>&1)
  log "$bin $v: building"
  (cd "$work" && go build -p 2 -trimpath -ldflags "-s -w -X main.version=$v" -o "$out/$bin" "$pkg")
  log "$bin $v: built in $((SECONDS - start))s"
}

ensure_go
mkdir -p "$HASAN_CACHE/tools"
tmp=$(mktemp -d "$dest.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
build github.com/kubernetes-csi/csi-test/v5 "$CSI_TEST_VERSION" \
  github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity csi-sanity "$tmp"
build github.com/kubernetes-csi/external-resizer/v2 "$CSI_RESIZER_VERSION" \
  github.com/kubernetes-csi/external-resizer/v2/cmd/csi-resizer csi-resizer "$tmp"
build github.com/kubernetes-csi/external-provisioner/v6 "$CSI_PROVISIONER_VERSION" \
  github.com/kubernetes-csi/external-provisioner/v6/cmd/csi-provisioner csi-provisioner "$tmp"
# Another build may have finished first: its directory is as good as ours.
mv -T "$tmp" "$dest" 2>/dev/null || [[ -x $dest/csi-sanity ]]
echo "$dest"
