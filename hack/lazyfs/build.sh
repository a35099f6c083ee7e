#!/usr/bin/env bash
# Builds lazyfs (a FUSE file system that loses unsynced writes on a simulated power cut, see main.go)
# into $HASAN_CACHE/tools/lazyfs-<hash>/lazyfs, outside the repository, keyed by the module's
# source files and go.sum: a changed source builds anew, an unchanged one costs a hash. The binary
# is built in a temporary directory that is renamed into place, so a present directory is always a
# finished build (and concurrent builds are safe). Prints the binary's path on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../go-env.sh
source "$here/../go-env.sh"
# go.sum is committed: a build never edits the module files.
export GOFLAGS="-buildvcs=false -mod=readonly"

log() { echo "lazyfs: $*" >&2; }

hash=$(
  cd "$here"
  for f in go.mod go.sum $(find . -maxdepth 1 -name '*.go' -printf '%f\n' | LC_ALL=C sort); do
    printf '%s %s\n' "$f" "$(sha256sum <"$f" | cut -d' ' -f1)"
  done | sha256sum | cut -c1-16
)
dest=$HASAN_CACHE/tools/lazyfs-$hash
if [[ ! -x $dest/lazyfs ]]; then
  ensure_go
  mkdir -p "$HASAN_CACHE/tools"
  tmp=$(mktemp -d "$dest.tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  log "building into $dest"
  start=$SECONDS
  (cd "$here" && go build -trimpath -ldflags "-s -w" -o "$tmp/lazyfs" .)
  # Another build may have finished first: its directory is as good as ours.
  mv -T "$tmp" "$dest" 2>/dev/null || [[ -x $dest/lazyfs ]]
  log "built in $((SECONDS - start))s"
fi
echo "$dest/lazyfs"
