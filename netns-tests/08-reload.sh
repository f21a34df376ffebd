#!/usr/bin/env bash
# reload: SIGHUP swaps the config atomically. A second downstream port is added while
# g1's binding and route on the unchanged br0 stay (never removed and re-installed); a
# broken config is refused and the running one keeps working.
source "$(dirname "$0")/lib.sh"

dom0_topology
nsx dom0 ip link add br1 type bridge
nsx dom0 ip link set br1 up
mkns g3
veth g3 eth0 dom0 vg3
nsx dom0 ip link set vg3 master br1
write_config "$WORK/relay.ron" eth0 br0
start_relay dom0 "$WORK/relay.ron"
wait_for 30 "g1 global address" has_global g1 eth0
wait_for 30 "br0 proxying" proxying br0
G1="$(global_addr g1 eth0)"
wait_for 15 "isp reaches g1" nsx isp ping -6 -c 1 -W 1 "$G1"
wait_for 10 "g1 routed on br0" binding_routed "$G1" br0
INSTALLS="$(grep -c "route $G1/128 dev br0 installed" "$WORK/relay.log")"

log "SIGHUP with br1 added"
write_config "$WORK/relay.ron" eth0 br0 br1
kill -HUP "$RELAY_PID"
wait_for 10 "reload logged" grep -q "configuration reloaded" "$WORK/relay.log"
wait_for 30 "br1 proxying" proxying br1
binding_routed "$G1" br0 || fail "g1's binding or route on the unchanged br0 was lost"
grep -q "route $G1/128 removed" "$WORK/relay.log" && fail "g1's route was removed by the reload"
[ "$(grep -c "route $G1/128 dev br0 installed" "$WORK/relay.log")" = "$INSTALLS" ] ||
    fail "g1's route was re-installed: the binding did not survive the reload"
wait_for 30 "g3 global address through br1" has_global g3 eth0
G3="$(global_addr g3 eth0)"
wait_for 15 "isp reaches g3 on the added port" nsx isp ping -6 -c 1 -W 1 "$G3"

log "SIGHUP with a broken config is refused"
echo '( uplink: "eth0", downstream: [' >"$WORK/relay.ron"
kill -HUP "$RELAY_PID"
wait_for 10 "refusal logged" grep -q "reload refused" "$WORK/relay.log"
nsx isp ping -6 -c 1 -W 2 "$G1" >/dev/null || fail "relay stopped working after a refused reload"
proxying br1 || fail "br1 dropped after a refused reload"
stop_relay
[ -z "$(own_routes dom0)" ] || fail "routes left behind: $(own_routes dom0)"
log "PASS"
