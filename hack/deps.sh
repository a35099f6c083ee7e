#!/usr/bin/env bash
# Installs what building and testing hasan needs on a Debian machine; cheap when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

# buildah, podman (run with runc), skopeo: the container image and its test (hack/image, test/integration/image.test.ts).
# umoci: the local cluster unpacks the image and runs the project's pods from it (hack/cluster/image-rootfs.sh).
apt_packages=(libiscsi-bin qemu-utils qemu-block-extra tgt iproute2 util-linux openssl qemu-system-x86 mmdebstrap prometheus
  buildah podman runc skopeo umoci)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci only when the lock file changed since the last install.
stamp=node_modules/.hasan-lock.sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi
