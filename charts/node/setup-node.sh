#!/bin/sh
# Prepares a Linux node (Debian or Ubuntu) to mount hasan volumes over iSCSI with dm-multipath:
# installs open-iscsi and multipath-tools, installs multipath-hasan.conf and the settings of
# iscsid-hasan.conf, enables and (re)starts iscsid and multipathd. Safe to run again.
#
#   sudo ./setup-node.sh                # on a node
#   ./setup-node.sh --root DIR --configure-only   # into an image's root file system (no packages, no services)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=""
configure_only=false
while [ $# -gt 0 ]; do
  case $1 in
    --root) root=$2; shift 2 ;;
    --configure-only) configure_only=true; shift ;;
    *) echo "setup-node: unknown argument $1" >&2; exit 2 ;;
  esac
done

if ! $configure_only; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends open-iscsi multipath-tools
fi

mkdir -p "$root/etc/multipath/conf.d"
cp "$here/multipath-hasan.conf" "$root/etc/multipath/conf.d/hasan.conf"

# Each `name = value` of iscsid-hasan.conf replaces the same setting in iscsid.conf (commented
# out or not) or is appended.
conf=$root/etc/iscsi/iscsid.conf
grep -E '^[a-z]' "$here/iscsid-hasan.conf" | while IFS= read -r line; do
  name=${line%% =*}
  pattern=$(printf '%s' "$name" | sed 's/[].[]/\\&/g')
  if grep -qE "^#? *$pattern *=" "$conf"; then
    sed -i -E "s|^#? *$pattern *=.*|$line|" "$conf"
  else
    printf '%s\n' "$line" >>"$conf"
  fi
done

if ! $configure_only; then
  # Records made before this ran keep their old timeouts: update those of hasan targets.
  for target in $(iscsiadm -m node 2>/dev/null | awk '{print $2}' | grep -i hasan | sort -u); do
    grep -E '^[a-z]' "$here/iscsid-hasan.conf" | while IFS= read -r line; do
      iscsiadm -m node -T "$target" -o update -n "${line%% =*}" -v "${line#*= }" >/dev/null 2>&1 || true
    done
  done
  systemctl enable --now iscsid.socket iscsid.service multipathd.service 2>/dev/null || true
  systemctl restart iscsid.service
  systemctl reload multipathd.service || systemctl restart multipathd.service
  echo "setup-node: ready. This node's initiator name (for spec.auth.allowedInitiators):"
  sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi
fi
