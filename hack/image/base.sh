#!/usr/bin/env bash
# The base image for test builds, made without a registry: a Debian root filesystem from this
# machine's apt sources (mmdebstrap, variant essential: util-linux for fallocate and flock is
# Essential) plus this machine's Node.js, copied to /usr/local/bin/node. Debian's own nodejs is 18
# in bookworm and the project needs 20, so the node binary comes from the machine; it links only
# against libc, libstdc++ and libgcc, which the rootfs holds.
#
# Cached outside the repository: $HASAN_CACHE/image/base-<suite>-<key>.tar, where the key hashes the
# node binary and the candidate versions of the packages it links against, so a Debian security
# update or another Node.js makes a new base and anything else reuses the old one. The tar is
# imported once into the container storage as localhost/hasan-base:<suite>-<key>.
# Prints that image name (the Dockerfile's BASE) as its last line.
set -euo pipefail
HASAN_CACHE=${HASAN_CACHE:-$HOME/.cache/hasan}
cache=$HASAN_CACHE/image
log() { echo "image-base: $*" >&2; }

node_bin=$(readlink -f "$(command -v node)")
node_major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
if ((node_major < 20)); then
  log "$node_bin is Node.js $("$node_bin" --version); the image needs 20 or later"
  exit 1
fi
# shellcheck source=/dev/null
suite=${HASAN_IMAGE_SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}")}
packages=(libc6 libstdc++6 libgcc-s1 ca-certificates util-linux)
versions=$(apt-cache policy "${packages[@]}" | awk '/^[^ ]/ {p=$1} /Candidate:/ {print p, $2}')
key=$( (echo "$suite"; sha256sum "$node_bin" | cut -d' ' -f1; echo "$versions") | sha256sum | cut -c1-12)
image=localhost/hasan-base:$suite-$key
tar=$cache/base-$suite-$key.tar

if buildah inspect --type image "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi

if [[ ! -f $tar ]]; then
  mkdir -p "$cache"
  log "making the $suite root filesystem with mmdebstrap (once, about 2-3 minutes)"
  tmp=$cache/base-$suite-$key.tmp.$$.tar # mmdebstrap picks the format by the extension
  trap 'rm -f "$tmp"' EXIT
  mmdebstrap --quiet --variant=essential --include=libstdc++6,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook="copy-in $node_bin /usr/local/bin/" \
    "$suite" "$tmp" >&2
  # A present tar is always a finished one.
  mv "$tmp" "$tar"
  trap - EXIT
fi

log "importing $tar as $image"
ctr=$(buildah from scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah add --quiet "$ctr" "$tar" / >/dev/null
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --label "dev.hasan.base.suite=$suite" --label "dev.hasan.base.node=$("$node_bin" --version)" "$ctr"
buildah commit --quiet --rm "$ctr" "$image" >/dev/null
trap - EXIT
echo "$image"
