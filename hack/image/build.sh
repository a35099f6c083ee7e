#!/usr/bin/env bash
# Builds the hasan image with buildah and writes it as an OCI archive, named
# ghcr.io/hasan-dev/hasan:<version>, to dist/image/hasan-<version>.oci.tar; prints that path as the
# last line. Needs dist/ compiled (make build). The base is BASE when set (an image in the local
# container storage, or one buildah may pull), else the cached Debian + Node.js base of
# hack/image/base.sh, so no registry is needed. A rerun with warm caches takes seconds.
set -euo pipefail
cd "$(dirname "$0")/../.."
log() { echo "image: $*" >&2; }

version=$(node -p 'require("./package.json").version')
name=ghcr.io/hasan-dev/hasan:$version
archive=dist/image/hasan-$version.oci.tar

if [[ -n ${BASE:-} ]]; then
  base=$BASE
  pull=false
else
  base=$(hack/image/base.sh | tail -n1)
  pull=never
fi
hack/image/context.sh >/dev/null

old=$(buildah inspect --type image --format '{{.FromImageID}}' "$name" 2>/dev/null || true)
log "building $name on $base"
buildah bud --quiet --pull="$pull" --build-arg "BASE=$base" -f Dockerfile -t "$name" . >/dev/null
new=$(buildah inspect --type image --format '{{.FromImageID}}' "$name")
# The previous build under the same name would stay behind untagged on every rebuild.
if [[ -n $old && $old != "$new" ]]; then buildah rmi "$old" >/dev/null 2>&1 || true; fi

rm -f "$archive"
buildah push --quiet "$name" "oci-archive:$archive:$name" >/dev/null
log "$(du -h "$archive" | cut -f1) in $archive ($(buildah inspect --type image --format '{{.FromImageID}}' "$name" | cut -c1-12))"
echo "$archive"
