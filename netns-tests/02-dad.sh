#!/usr/bin/env bash
# DAD across the relay, both ways: a guest given an address that isp already uses ends
# up with it marked dadfailed, and isp given an address a guest already uses does too.
# A unique address on the guest stays usable (DAD relaying causes no false conflicts).
source "$(dirname "$0")/lib.sh"

dom0_topology
nsx isp ip -6 addr add 2001:db8:1::99/64 dev isp0
write_config "$WORK/relay.ron" eth0 br0
start_relay dom0 "$WORK/relay.ron"
wait_for 30 "g1 global address" has_global g1 eth0
wait_for 30 "br0 proxying" proxying br0

dadfailed() { nsx "$1" ip -6 addr show dev "$2" | grep "$3/" | grep -q dadfailed; }
usable() { nsx "$1" ip -6 addr show dev "$2" | grep "$3/" | grep -vq "tentative\|dadfailed"; }

log "guest takes an address isp uses: dadfailed"
nsx g1 ip -6 addr add 2001:db8:1::99/64 dev eth0
wait_for 10 "2001:db8:1::99 dadfailed on g1" dadfailed g1 eth0 2001:db8:1::99

log "isp takes an address g2 uses: dadfailed on isp"
nsx g2 ip -6 addr add 2001:db8:1::77/64 dev eth0
wait_for 10 "2001:db8:1::77 usable on g2" usable g2 eth0 2001:db8:1::77
nsx isp ip -6 addr add 2001:db8:1::77/64 dev isp0
wait_for 10 "2001:db8:1::77 dadfailed on isp" dadfailed isp isp0 2001:db8:1::77

log "a unique guest address passes DAD and works"
nsx g1 ip -6 addr add 2001:db8:1::55/64 dev eth0
wait_for 10 "2001:db8:1::55 usable on g1" usable g1 eth0 2001:db8:1::55
nsx isp ping -6 -c 2 -i 0.3 -W 3 2001:db8:1::55 >/dev/null || fail "isp cannot reach g1's 2001:db8:1::55"
usable g2 eth0 2001:db8:1::77 || fail "g2 lost its address to isp's duplicate"
stop_relay
log "PASS"
