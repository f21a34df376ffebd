#!/usr/bin/env bash
# mac-change: a guest's NIC gets a new MAC and keeps its address without announcing it
# (Linux sends no NA on a MAC change unless ndisc_notify is set). The relay sends an NS
# for a REACHABLE binding to the bound MAC only; once such an NS has gone a RetransTimer
# unanswered it asks the solicited-node group again, so isp resolves the guest within
# its own retries and the binding takes the new MAC.
source "$(dirname "$0")/lib.sh"

dom0_topology
G=2001:db8:1::77
OLD_MAC=02:00:00:00:77:01
NEW_MAC=02:00:00:00:77:02
nsx g1 ip link set eth0 address "$OLD_MAC"
nsx g1 ip -6 addr add "$G/64" dev eth0 nodad
write_config "$WORK/relay.ron" eth0 br0
start_relay dom0 "$WORK/relay.ron"
wait_for 30 "br0 proxying" proxying br0
DOM0_MAC="$(nsx dom0 cat /sys/class/net/eth0/address)"

# resolve : what ndisc6 from isp gets for $G (four tries, 1 s apart)
resolve() { nsx isp ndisc6 -1 -r 4 -w 1000 "$G" isp0 | awk '/Target link-layer address/ {print tolower($NF)}'; }
# bound_mac : the MAC `ndprelay status` lists for $G
bound_mac() { status | awk -v a="$G" '$1 == a {print tolower($3)}'; }
bound_to() { [ "$(bound_mac)" = "$1" ]; }

[ "$(resolve)" = "$DOM0_MAC" ] || fail "isp cannot resolve $G before the change"
wait_for 10 "$G bound on br0 with route" binding_routed "$G" br0
wait_for 2 "binding on $OLD_MAC" bound_to "$OLD_MAC"
status | awk -v a="$G" '$1 == a' | grep -qi reachable || fail "binding not REACHABLE: $(status | grep "$G")"

log "g1 changes its MAC to $NEW_MAC without an announcement"
nsx g1 ip link set eth0 address "$NEW_MAC"
CHANGED=$SECONDS
GOT="$(resolve)"
[ "$GOT" = "$DOM0_MAC" ] || fail "isp could not resolve $G after the MAC change (got '$GOT')"
wait_for 2 "binding on $NEW_MAC" bound_to "$NEW_MAC"
log "isp resolved $G again and the binding took the new MAC after $((SECONDS - CHANGED))s"
wait_for 30 "isp reaches g1" nsx isp ping -6 -c 1 -W 1 "$G"
stop_relay
[ -z "$(own_routes dom0)" ] || fail "routes left behind: $(own_routes dom0)"
log "PASS"
