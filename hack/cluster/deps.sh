#!/usr/bin/env bash
# System packages the local cluster needs (iptables for Service cluster IPs, openssl for certs,
# iproute2 for pod network namespaces, util-linux for unshare/nsenter; buildah, mmdebstrap and umoci
# build and unpack the image the project's pods run from, unless HASAN_NODE_IMAGE=repo). Cheap when
# present.
set -euo pipefail
pkgs=(iptables openssl iproute2 util-linux curl)
[[ ${HASAN_NODE_IMAGE:-image} == repo ]] || pkgs+=(buildah mmdebstrap umoci)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "cluster deps: installing ${missing[*]}" >&2
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
