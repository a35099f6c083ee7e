#!/usr/bin/env bash
# Removes everything the node agent adds to the host network: pod namespaces (hasan-*), host veth
# ends (hsn*) with their routes, and the HASAN-* iptables chains. Touches nothing else.
set -uo pipefail
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^hasan-/ {print $1}'); do
  # Processes still inside a pod namespace would keep it alive.
  for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  ip netns delete "$ns" 2>/dev/null
done
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^hsn'); do
  ip link delete "$link" 2>/dev/null
done
if command -v iptables >/dev/null; then
for table in nat filter; do
  for parent in PREROUTING OUTPUT FORWARD POSTROUTING INPUT; do
    while read -r rule; do
      [[ -n $rule ]] && eval "iptables -t $table ${rule/-A /-D }" 2>/dev/null
    done < <(iptables -t "$table" -S "$parent" 2>/dev/null | grep -- '-j HASAN-')
  done
  for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^HASAN-/ {print $2}'); do
    iptables -t "$table" -F "$chain" 2>/dev/null
  done
  for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^HASAN-/ {print $2}'); do
    iptables -t "$table" -X "$chain" 2>/dev/null
  done
done
fi
source "$(dirname "$0")/env.sh"
ip route delete unreachable "$POD_CIDR" 2>/dev/null
exit 0
