#!/usr/bin/env bash
# move: g1's veth moves from br0 to a second downstream port (br1); its binding, its
# /128 route and isp's reachability follow within seconds, and nothing stays on br0.
source "$(dirname "$0")/lib.sh"

dom0_topology
nsx dom0 ip link add br1 type bridge
nsx dom0 ip link set br1 up
# An idle port on br1 so the bridge has carrier before g1 arrives.
mkns g3
veth g3 eth0 dom0 vg3
nsx dom0 ip link set vg3 master br1
write_config "$WORK/relay.ron" eth0 br0 br1
start_relay dom0 "$WORK/relay.ron"
wait_for 30 "g1 global address" has_global g1 eth0
wait_for 30 "br0 proxying" proxying br0
wait_for 30 "br1 proxying" proxying br1
G1="$(global_addr g1 eth0)"
nsx isp ping -6 -c 2 -i 0.3 -W 3 "$G1" >/dev/null || fail "isp cannot ping g1 before the move"
wait_for 10 "g1 bound on br0 with route" binding_routed "$G1" br0

log "move g1 from br0 to br1 and let it announce itself, as a migrated guest does"
nsx dom0 ip link set vg1 nomaster
nsx dom0 ip link set vg1 master br1
# Xen netfront and virtio call netdev_notify_peers after a migration, which sends an
# unsolicited NA (O=1) per address; the relay then probes the old port (br0) and moves
# the binding when nobody answers there (NDP reference §5 #21).
sleep 0.5
unsolicited_na g1 eth0 "$G1"
MOVED=$SECONDS
# isp keeps talking to g1 as a real peer would; g1 answers from its new segment.
nsx isp ping -6 -c 40 -i 0.5 -W 1 "$G1" >"$WORK/ping.txt" 2>&1 &
PIDS+=($!)
wait_for 25 "g1 bound on br1 with route" binding_routed "$G1" br1
owns_route dom0 "^$G1 dev br1" || fail "route not moved to br1: $(own_routes dom0)"
owns_route dom0 "^$G1 dev br0" && fail "stale route on br0 left: $(own_routes dom0)"
wait_for 15 "isp reaches g1 on br1" nsx isp ping -6 -c 1 -W 1 "$G1"
log "binding, route and reachability followed after $((SECONDS - MOVED))s"
stop_relay
[ -z "$(own_routes dom0)" ] || fail "routes left behind: $(own_routes dom0)"
log "PASS"
