#!/bin/bash
# PID 1 of the test guest (see build.sh): brings up what a Kubernetes node's iSCSI stack needs
# (udev, network, iscsid, multipathd), then serves commands from the host over one TCP connection
# to 10.0.2.2:<hasan.port> (the host's loopback under qemu's user-mode networking).
#
# Kernel command line parameters: hasan.port=PORT, hasan.initiator=IQN.
# Protocol, one command at a time: the host sends "<n>\n" and n bytes of bash; the guest runs them
# and answers
# "HASAN-RESULT <exit code> <n>\n" followed by n bytes of combined output. Each command runs in a
# subshell, so `set -e` or `exit` in it ends only that command; background jobs outlive it.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C
say() { echo "hasan-guest: $*" >/dev/console; }

# The initramfs has moved /proc, /sys and /dev over already.
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mountpoint -q /dev/pts || mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/lock /run/udev
hostname hasan-guest

param() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p" | tail -1; }
port=$(param hasan.port)
initiator=$(param hasan.initiator)
[ -n "$initiator" ] || initiator=iqn.2004-10.com.ubuntu:01:hasan-guest
echo "InitiatorName=$initiator" >/etc/iscsi/initiatorname.iscsi

/lib/systemd/systemd-udevd --daemon
udevadm trigger --action=add >/dev/null 2>&1
modprobe virtio_net
udevadm settle --timeout=10
ip link set lo up
dev=$(ls /sys/class/net | grep -v '^lo$' | head -1)
ip link set "$dev" up
ip addr add 10.0.2.15/24 dev "$dev"
ip route add default via 10.0.2.2
modprobe -a iscsi_tcp dm_multipath dm_round_robin dm_service_time scsi_dh_alua xfs
# In the foreground, so their logs land in /run (there is no syslog here) for tests to show.
iscsid -f >/run/iscsid.log 2>&1 &
multipathd -d -v3 >/run/multipathd.log 2>&1 &
sleep 1
say "up in $(cut -d' ' -f1 /proc/uptime)s, initiator $initiator, kernel $(uname -r)"

serve() {
  exec 3<>"/dev/tcp/10.0.2.2/$port" || return 1
  say "connected to the host"
  local n cmd rc
  while IFS= read -r n <&3; do
    IFS= read -r -N "$n" cmd <&3 || break
    (eval "$cmd") </dev/null >/tmp/.hasan-out 2>&1
    rc=$?
    printf 'HASAN-RESULT %d %d\n' "$rc" "$(stat -c %s /tmp/.hasan-out)" >&3
    cat /tmp/.hasan-out >&3
  done
}
[ -n "$port" ] && serve
say "host closed the connection; powering off"
sync
echo o >/proc/sysrq-trigger
sleep 30
