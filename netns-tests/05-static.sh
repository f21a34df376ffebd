#!/usr/bin/env bash
# static prefix (prefix64): the relay answers isp's NS for every address of a static
# prefix at once (like ndppd `static`), with dom0's uplink MAC, while relay-mode
# addresses keep working; data for the static prefix then follows dom0's own routes.
source "$(dirname "$0")/lib.sh"

dom0_topology
# The static /64 is on-link at isp too (a provider that hands out a second on-link /64).
nsx isp ip -6 addr add 2001:db8:64::1/64 dev isp0 nodad
EXTRA='static_prefixes: ["2001:db8:64::/64"],' write_config "$WORK/relay.ron" eth0 br0
start_relay dom0 "$WORK/relay.ron"
wait_for 30 "g1 global address (default route from the relayed RA)" has_global g1 eth0
wait_for 30 "br0 proxying" proxying br0
DOM0_MAC="$(nsx dom0 cat /sys/class/net/eth0/address)"

log "every address of the static prefix resolves to dom0"
for a in 2001:db8:64::7 2001:db8:64::dead:beef 2001:db8:64:0:1234:5678:9abc:def0; do
    got="$(nsx isp ndisc6 -1 -r 2 -w 1000 "$a" isp0 | awk '/Target link-layer address/ {print tolower($NF)}')"
    [ "$got" = "$DOM0_MAC" ] || fail "ndisc6 $a answered '$got', expected $DOM0_MAC"
done

log "data for the static prefix follows dom0's routing (here: one address routed to g1)"
nsx g1 ip -6 addr add 2001:db8:64::7/128 dev eth0 nodad
G1_LL="$(nsx g1 ip -6 -o addr show dev eth0 scope link | awk '{print $4}' | cut -d/ -f1)"
nsx dom0 ip -6 route add 2001:db8:64::7/128 via "$G1_LL" dev br0
wait_for 10 "isp reaches 2001:db8:64::7 behind dom0" nsx isp ping -6 -c 1 -W 1 2001:db8:64::7

log "relay-mode guests are unaffected"
wait_for 30 "g2 global address" has_global g2 eth0
nsx isp ping -6 -c 2 -i 0.3 -W 3 "$(global_addr g2 eth0)" >/dev/null || fail "isp cannot reach g2"
stop_relay
log "PASS"
