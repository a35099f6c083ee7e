#!/usr/bin/env bash
# Stages the image's build context in dist/image/context: what /app holds in the image.
#   package.json                      (--version reads it)
#   node_modules                      production dependencies only (no dev, no @pulumi peers)
#   dist/operator, dist/target        compiled by `make build` beforehand (no source maps, no
#                                     dist/operator/pulumi: the Pulumi component is not in the image)
#   operator/csi/proto                the CSI driver loads csi.proto at run time
# The production node_modules are installed once per package-lock.json into
# $HASAN_CACHE/image/node-modules-<key> (npm ci for linux/glibc on this CPU, so the prebuilt
# @node-rs/crc32 binary matches the image even when staged elsewhere) and hard-linked from there.
# Prints the context directory as its last line.
set -euo pipefail
cd "$(dirname "$0")/../.."
HASAN_CACHE=${HASAN_CACHE:-$HOME/.cache/hasan}
log() { echo "image-context: $*" >&2; }

for f in dist/operator/main.js dist/operator/csi/main.js dist/target/main.js; do
  [[ -f $f ]] || { log "$f is missing: make build compiles it"; exit 1; }
done

case $(uname -m) in
  x86_64) cpu=x64 ;;
  aarch64) cpu=arm64 ;;
  *) cpu=$(uname -m) ;;
esac
key=$( (sha256sum package.json package-lock.json; echo "linux $cpu glibc") | sha256sum | cut -c1-12)
modules=$HASAN_CACHE/image/node-modules-$key
if [[ ! -d $modules ]]; then
  log "installing the production node_modules (once per package-lock.json)"
  tmp=$modules.tmp.$$
  rm -rf "$tmp" && mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  cp package.json package-lock.json "$tmp/"
  # --omit=peer leaves out @pulumi/*, which only the Pulumi component needs; --omit=optional would
  # also drop @node-rs/crc32's platform binary, so optional dependencies stay.
  (cd "$tmp" && npm ci --omit=dev --omit=peer --os=linux --cpu="$cpu" --libc=glibc \
    --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >&2)
  rm -f "$tmp/package.json" "$tmp/package-lock.json" "$tmp/node_modules/.package-lock.json"
  mv "$tmp" "$modules"
  trap - EXIT
fi

ctx=dist/image/context
rm -rf "$ctx" && mkdir -p "$ctx/dist" "$ctx/operator/csi"
cp package.json "$ctx/"
# Hard links: the context is rebuilt on every run and the modules are 100+ MB.
cp -al "$modules/node_modules" "$ctx/node_modules" 2>/dev/null || cp -a "$modules/node_modules" "$ctx/node_modules"
cp -a dist/operator dist/target "$ctx/dist/"
rm -rf "$ctx/dist/operator/pulumi"
find "$ctx/dist" -name '*.map' -delete
cp -a operator/csi/proto "$ctx/operator/csi/"
echo "$ctx"
