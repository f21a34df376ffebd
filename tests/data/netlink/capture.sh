#!/bin/bash
# Re-captures the rtnetlink answers in this folder (see capture.py) in a throw-away
# namespace: veth d0/d1, an address, a foreign `proto static` /128 and a /64.
set -euo pipefail
ns=ndpr-nlcap
ip netns del "$ns" 2>/dev/null || true
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
nsx() { ip netns exec "$ns" "$@"; }
nsx ip link add d0 address 02:00:00:00:00:01 type veth peer name d1 address 02:00:00:00:00:02
nsx ip link set d0 up
nsx ip link set d1 up
nsx ip -6 addr add 2001:db8::1/64 dev d0 nodad
nsx ip -6 route add 2001:db8::7/128 dev d0 proto static
nsx /usr/bin/python3 "$(dirname "$0")/capture.py"
