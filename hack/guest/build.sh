#!/usr/bin/env bash
# Builds the Debian guest in which the tests run the Linux kernel's iSCSI initiator, dm-multipath
# and file systems (the host kernel has none of them): a bookworm root file system made with
# mmdebstrap from the archive apt uses on this machine, configured with charts/node/setup-node.sh
# (exactly what the README tells users to run), with hack/guest/init.sh as PID 1.
#
# Output, in $HASAN_CACHE/guest-<hash of this recipe>/: vmlinuz, initrd.img, rootfs.raw (ext4,
# made with mkfs.ext4 -d, no loop mounts). A present directory is always a finished build. Prints
# the directory on its last line. About 2 minutes and 0.8 GB the first time; a hash afterwards.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
HASAN_CACHE=${HASAN_CACHE:-$HOME/.cache/hasan}
SUITE=bookworm
PACKAGES=linux-image-amd64,initramfs-tools,open-iscsi,multipath-tools,fio,kmod,udev,iproute2,procps,util-linux,e2fsprogs,xfsprogs,sg3-utils,psmisc

log() { echo "vm-image: $*" >&2; }

hash=$(
  cd "$repo"
  for f in hack/guest/build.sh hack/guest/init.sh charts/node/setup-node.sh charts/node/multipath-hasan.conf charts/node/iscsid-hasan.conf; do
    printf '%s %s\n' "$f" "$(sha256sum <"$f" | cut -d' ' -f1)"
  done | sha256sum | cut -c1-16
)
dest=$HASAN_CACHE/guest-$hash
if [[ -f $dest/rootfs.raw ]]; then
  echo "$dest"
  exit 0
fi

need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The archive apt uses here (deb822 sources first, then the one-line format).
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[[ -n $mirror ]] || mirror=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[[ -n $mirror ]] || mirror=http://deb.debian.org/debian

# As root (or with sudo) mmdebstrap runs in root mode; otherwise in a user namespace.
mode=root
runner=()
if [[ $(id -u) -ne 0 ]]; then
  if sudo -n true 2>/dev/null; then runner=(sudo); else mode=unshare; fi
fi
mkdir -p "$HASAN_CACHE"
tmp=$(mktemp -d "$dest.tmp.XXXXXX")
trap '${runner[@]+"${runner[@]}"} rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
rootfs=$tmp/rootfs
start=$SECONDS
log "building a Debian $SUITE guest from $mirror into $dest (about 2 minutes)"
log "packages: $PACKAGES"
# Kernel drivers no guest here needs, documentation and locales are left out (half the size); the
# initramfs carries only what mounts the root disk (8 MB instead of 36).
drop=(gpu media net/wireless net/ethernet infiniband sound staging bluetooth usb hid input iio
  isdn mmc mtd net/can video comedi thunderbolt)
dpkgopts=(--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*')
for d in "${drop[@]}"; do
  dpkgopts+=(--dpkgopt="path-exclude=/lib/modules/*/kernel/drivers/$d/*")
  dpkgopts+=(--dpkgopt="path-exclude=/usr/lib/modules/*/kernel/drivers/$d/*")
done
dpkgopts+=(--dpkgopt='path-exclude=/lib/modules/*/kernel/sound/*' --dpkgopt='path-exclude=/lib/firmware/*')
"${runner[@]}" mmdebstrap --mode=$mode --variant=minbase --include="$PACKAGES" "${dpkgopts[@]}" \
  --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" && echo MODULES=list >"$1/etc/initramfs-tools/conf.d/hasan" && printf "virtio_pci\nvirtio_blk\next4\n" >>"$1/etc/initramfs-tools/modules"' \
  --customize-hook="\"$repo/charts/node/setup-node.sh\" --root \"\$1\" --configure-only" \
  --customize-hook="sed -i 's|^iscsid.startup = .*|iscsid.startup = /sbin/iscsid|' \"\$1/etc/iscsi/iscsid.conf\"" \
  --customize-hook="install -m 755 \"$here/init.sh\" \"\$1/usr/local/sbin/hasan-guest-init\"" \
  --customize-hook='echo "/dev/vda / ext4 rw 0 1" >"$1/etc/fstab"' \
  "$SUITE" "$rootfs" "$mirror" 2>&1 | grep --line-buffered -E '^(I: |E:|W:)' | sed -u 's/^/vm-image: mmdebstrap: /' >&2 || true
[[ -x $rootfs/usr/local/sbin/hasan-guest-init ]] || { log "mmdebstrap failed"; exit 1; }
"${runner[@]}" cp "$(ls "$rootfs"/boot/vmlinuz-* | head -1)" "$tmp/vmlinuz"
"${runner[@]}" cp "$(ls "$rootfs"/boot/initrd.img-* | head -1)" "$tmp/initrd.img"
"${runner[@]}" chmod 644 "$tmp/vmlinuz" "$tmp/initrd.img"
log "root file system: $(du -sh --apparent-size "$rootfs" | cut -f1); making the disk image"
size_mb=$(($(du -sm "$rootfs" | cut -f1) * 13 / 10 + 200))
# mkfs.ext4 -d copies owners and modes from the tree, so it runs as the tree's owner.
"${runner[@]}" mkfs.ext4 -q -F -L hasan-guest -d "$rootfs" "$tmp/rootfs.raw" "${size_mb}M"
[[ ${#runner[@]} -eq 0 ]] || sudo chown "$(id -u):$(id -g)" "$tmp/rootfs.raw"
"${runner[@]}" rm -rf "$rootfs"
mv -T "$tmp" "$dest" 2>/dev/null || [[ -f $dest/rootfs.raw ]]
log "built in $((SECONDS - start))s: $dest"
# Images of older recipes are not used again.
for old in "$HASAN_CACHE"/guest-*; do
  [[ $old == "$dest" || $old == *.tmp.* ]] || rm -rf "$old"
done
echo "$dest"
