#!/usr/bin/env bash
# host safety (issue 14 items 3, 6, 7): what the relay may do to the host it runs on.
# 1. Capabilities are per thread: after start every thread of the relay (capture,
#    netlink, signals, control, engine) holds at most CAP_NET_RAW and CAP_NET_ADMIN, the
#    helpers none, CAP_BPF is gone everywhere and the bounding set is reduced on all;
#    with and without the in-kernel programs, and a SIGHUP reload still works after it.
# 2. An administrator's /128 for an address in the prefix is never replaced nor deleted:
#    the guest holding that address is bound, status shows the conflict (text, --json,
#    live_route_conflicts), the log says it once; when the guest goes, the route stays.
# 3. fix_sysctls turning on forwarding first sets accept_ra=2 on a management interface
#    that lives on RAs (SLAAC address, RA default route), says so at WARN, and that
#    interface keeps refreshing its default route from RAs afterwards.
source "$(dirname "$0")/lib.sh"

dom0_topology

# helper_threads_empty : the threads that only read their sockets hold no capability
helper_threads_empty() {
    local t name eff
    for t in $TASKS; do
        name="${t%:*}" eff="${t#*:}"
        case "$name" in
        capture-* | netlink | signals | control)
            [ "$eff" = 0000000000000000 ] || fail "helper thread $name kept capabilities $eff"
            ;;
        esac
    done
    for name in capture-eth0 capture-br0 netlink signals control; do
        [[ " $TASKS " == *" $name:"* ]] || fail "thread $name not found among:$TASKS"
    done
}

for in_kernel in false true; do
    log "capabilities of every thread, relay_in_kernel: $in_kernel"
    EXTRA="relay_in_kernel: $in_kernel," write_config "$WORK/relay.ron" eth0 br0
    # `true` is required: the relay refuses to start without loading the program.
    start_relay dom0 "$WORK/relay.ron"
    has_caps "$CAPS_NET"
    helper_threads_empty
    log "threads:$TASKS"
    wait_for 30 "g1 global address" has_global g1 eth0
    G1="$(global_addr g1 eth0)"
    wait_for 30 "br0 proxying" proxying br0
    # After the previous run's clean stop isp still has g1 at dom0's MAC, and dom0 no
    # route for it: isp's next NS (multicast once flushed) makes the relay bind it again.
    nsx isp ip -6 neigh flush dev isp0
    wait_for 30 "isp reaches g1" nsx isp ping -6 -c 1 -W 1 "$G1"

    log "SIGHUP reload after the drop (relay_in_kernel: $in_kernel)"
    n="$(grep -c "configuration reloaded" "$WORK/relay.log" || true)"
    reload_with "relay_in_kernel: $in_kernel, fast_path: \"5s\", fast_path_in_kernel: false," $((n + 1))
    grep -q "reload refused" "$WORK/relay.log" && fail "reload refused after the drop"
    nsx dom0 ip link set br0 down
    nsx dom0 ip link set br0 up
    wait_for 30 "br0 proxying after the reload" proxying br0
    wait_for 30 "isp reaches g1 after the reload" nsx isp ping -6 -c 1 -W 1 "$G1"
    has_caps "$CAPS_NET"
    helper_threads_empty
    stop_relay
    : >"$WORK/relay.log" # each run's log on its own, for the counts below
done

log "an administrator's /128 in the prefix is left alone"
ADMIN=2001:db8:1::99
nsx dom0 ip -6 route add "$ADMIN/128" dev br0 proto static
EXTRA='relay_in_kernel: false, timers: (reachable_time: "2s", stale_lifetime: "3s"),' \
    write_config "$WORK/relay.ron" eth0 br0
start_relay dom0 "$WORK/relay.ron"
nsx g2 ip -6 addr add "$ADMIN/64" dev eth0 nodad
# admin_route : the administrator's route, exactly as they added it
admin_route() { [[ "$(nsx dom0 ip -6 route show "$ADMIN/128")" == *"dev br0 proto static"* ]]; }
# conflict_shown ADDR : status's ROUTE column says conflict for ADDR
conflict_shown() { [ "$(status | awk -v a="$1" '$1 == a {print $NF}')" = conflict ]; }
# isp's NS for the address makes the relay solicit it on br0; g2's answer binds it.
bound_in_conflict() {
    nsx isp ping -6 -c 1 -W 1 "$ADMIN" >/dev/null 2>&1 || true
    conflict_shown "$ADMIN"
}
wait_for 20 "g2's $ADMIN bound, the conflict shown" bound_in_conflict
admin_route || fail "admin route changed: $(nsx dom0 ip -6 route show "$ADMIN/128")"
owns_route dom0 "$ADMIN" && fail "the relay installed a route of its own for $ADMIN"
status --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
b = [b for b in d["bindings"] if b["address"] == sys.argv[1]]
assert b and b[0]["route_conflict"] is True and b[0]["route"] is False, b
assert d["counters"]["live_route_conflicts"] == 1, d["counters"]["live_route_conflicts"]
' "$ADMIN" || fail "status --json does not show the conflict"
sleep 2 # the engine may ask again: the log still says it once
[ "$(grep -c "route $ADMIN/128 dev br0 not installed" "$WORK/relay.log")" = 1 ] ||
    fail "conflict not logged exactly once: $(grep -c "$ADMIN/128" "$WORK/relay.log")"
grep "route $ADMIN/128 dev br0 not installed" "$WORK/relay.log" | grep -q WARN ||
    fail "conflict not logged at WARN"

log "the guest goes away: its binding ends, the administrator's route stays"
nsx g2 ip -6 addr del "$ADMIN/64" dev eth0
wait_for 30 "binding of $ADMIN gone" no_binding "$ADMIN"
admin_route || fail "admin route removed or changed with the binding: $(nsx dom0 ip -6 route show "$ADMIN/128")"
stop_relay
admin_route || fail "admin route removed at stop"
nsx dom0 ip -6 route del "$ADMIN/128" dev br0 proto static

log "fix_sysctls keeps a management interface that lives on RAs working"
mkns mgr
veth mgr mgr0 dom0 mgmt0
# The host as it was before the relay: not forwarding, SLAAC and an RA default route on
# its management NIC (accept_ra=1, the default).
nsx dom0 sysctl -qw net.ipv6.conf.all.forwarding=0 net.ipv6.conf.mgmt0.accept_ra=1
start_radvd mgr mgr0 2001:db8:99::/64
ra_default() { [[ "$(nsx dom0 ip -6 route show default dev mgmt0)" == *"proto ra"* ]]; }
wait_for 20 "mgmt0 RA default route" ra_default
wait_for 20 "mgmt0 SLAAC address" has_global dom0 mgmt0
EXTRA='relay_in_kernel: false, fix_sysctls: true,' write_config "$WORK/relay.ron" eth0 br0
start_relay dom0 "$WORK/relay.ron"
[ "$(nsx dom0 sysctl -n net.ipv6.conf.all.forwarding)" = 1 ] || fail "forwarding not turned on"
[ "$(nsx dom0 sysctl -n net.ipv6.conf.mgmt0.accept_ra)" = 2 ] || fail "mgmt0 accept_ra not set to 2"
grep "net.ipv6.conf.mgmt0.accept_ra=2" "$WORK/relay.log" | grep -q WARN ||
    fail "the accept_ra change on mgmt0 was not logged at WARN"
grep -q "net.ipv6.conf.vg1.accept_ra" "$WORK/relay.log" &&
    fail "accept_ra changed on vg1, which does not live on RAs"
grep -n "fix_sysctls" "$WORK/relay.log" | sed 's/^/    /'
# radvd's default-route lifetime is 3 x MaxRtrAdvInterval = 12 s: ignoring RAs for 15 s
# loses the route.
sleep 15
ra_default || fail "mgmt0 lost its RA default route with forwarding on"
nsx dom0 ip -6 route show default dev mgmt0 | sed 's/^/    /'
stop_relay
log "PASS"
