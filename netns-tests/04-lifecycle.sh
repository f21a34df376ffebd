#!/usr/bin/env bash
# lifecycle: br0 down/up, br0 deleted and re-created (new ifindex), relay killed with
# SIGKILL and restarted. Each time reachability returns; the relay never spins (CPU
# stays low, also while its port is gone); routes it owned do not outlive it: a restart
# keeps those that re-verify and removes orphans (the engine's routes_reconciled_*
# counters), SIGTERM removes the rest. The default
# in-kernel relay follows the re-created br0 after CAP_BPF was dropped.
source "$(dirname "$0")/lib.sh"

dom0_topology
write_config "$WORK/relay.ron" eth0 br0
start_relay dom0 "$WORK/relay.ron"
wait_for 30 "g1 global address" has_global g1 eth0
wait_for 30 "br0 proxying" proxying br0
G1="$(global_addr g1 eth0)"
reach() { nsx isp ping -6 -c 1 -W 1 "$G1" >/dev/null; }
wait_for 15 "isp reaches g1" reach
wait_for 10 "g1 routed on br0" binding_routed "$G1" br0

log "by default bound guests' NS and NA are relayed in the kernel, CAP_BPF dropped after start"
grep -q "relay_in_kernel: NS and NA for bound guests relayed in the kernel" "$WORK/relay.log" ||
    fail "the relay did not say it relays in the kernel: $(grep relay_in_kernel "$WORK/relay.log")"
has_caps "$CAPS_NET"
DOM0_MAC="$(nsx dom0 cat /sys/class/net/eth0/address)"

# cpu_ms PID : user+system CPU time in milliseconds
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' "/proc/$1/stat"; }
# low_cpu SECONDS : the relay used under 10% of a CPU over SECONDS
low_cpu() {
    local before after
    before="$(cpu_ms "$RELAY_PID")"
    sleep "$1"
    after="$(cpu_ms "$RELAY_PID")"
    [ $((after - before)) -lt $(($1 * 100)) ] || fail "relay used $((after - before)) ms CPU in $1 s (busy loop?)"
    log "CPU over $1 s: $((after - before)) ms"
}

log "br0 down and up"
nsx dom0 ip link set br0 down
sleep 2
low_cpu 2
nsx dom0 ip link set br0 up
wait_for 30 "isp reaches g1 after br0 up" reach
wait_for 20 "g1 routed on br0 after up" binding_routed "$G1" br0

log "br0 deleted and re-created (new ifindex)"
OLD_IDX="$(nsx dom0 cat /sys/class/net/br0/ifindex)"
nsx dom0 ip link del br0
sleep 1
low_cpu 3
[ -z "$(own_routes dom0)" ] || fail "routes survive the deleted port: $(own_routes dom0)"
nsx dom0 ip link add br0 type bridge
nsx dom0 ip link set vg1 master br0
nsx dom0 ip link set vg2 master br0
nsx dom0 ip link set br0 up
NEW_IDX="$(nsx dom0 cat /sys/class/net/br0/ifindex)"
[ "$OLD_IDX" != "$NEW_IDX" ] || fail "br0 kept its ifindex; the test needs a new one"
wait_for 30 "isp reaches g1 through the new br0" reach
wait_for 20 "g1 routed on the new br0" binding_routed "$G1" br0
log "the in-kernel relay is on the new br0 (attached without CAP_BPF)"
# A new port answers for its guests once it is proxying (two P-bit RAs, RFC 4389 §6).
wait_for 30 "the new br0 proxying" proxying br0
before="$(counter relayed_na_by_kernel)"
resolves_to_dom0 4 "through the new br0"
[ "$(counter relayed_na_by_kernel)" -gt "$before" ] || fail "the kernel relayed no NA on the new br0"

log "SIGKILL, an orphan and a stale route of ours, restart"
kill -KILL "$RELAY_PID"
wait "$RELAY_PID" 2>/dev/null || true
RELAY_PID=""
owns_route dom0 "^$G1 dev br0" || fail "expected the killed relay's route to remain"
nsx dom0 ip -6 route add 2001:db8:1::dead/128 dev eth0 proto 199     # orphan: not a downstream port
nsx dom0 ip -6 route add 2001:db8:1::beef/128 dev br0 proto 199      # nobody there: fails to re-verify
nsx dom0 ip -6 route add 2001:db8:1::cafe/128 dev br0 proto static   # someone else's: never touched
rm -f "$WORK/ctl.sock"
start_relay dom0 "$WORK/relay.ron"
owns_route dom0 "^2001:db8:1::dead " && fail "orphan route kept after restart"
reach || fail "g1 unreachable right after the restart (its route should have been kept)"
wait_for 40 "unverified route 2001:db8:1::beef removed after the grace period" \
    sh -c "! ip -n $(ns dom0) -6 route show proto 199 | grep -q 2001:db8:1::beef"
owns_route dom0 "^$G1 dev br0" || fail "g1's route did not survive re-verification"
# The engine decided: g1's route taken over by its confirmed binding, beef's removed at
# the grace deadline and the uplink's orphan at once (both counted as removed).
[ "$(counter routes_reconciled_kept)" -eq 2 ] || fail "routes_reconciled_kept: $(counter routes_reconciled_kept), want 2 (g1, beef)"
[ "$(counter routes_reconciled_verified)" -eq 1 ] || fail "routes_reconciled_verified: $(counter routes_reconciled_verified), want 1 (g1)"
[ "$(counter routes_reconciled_removed)" -eq 2 ] || fail "routes_reconciled_removed: $(counter routes_reconciled_removed), want 2 (dead, beef)"
log "MTU and MAC changes reach the relay at once"
nsx dom0 ip link set eth0 mtu 1400
nsx dom0 ip link set br0 address 02:00:5e:00:53:99
wait_for 5 "eth0 MTU 1400 in status" sh -c "[ \"\$(ip netns exec $(ns dom0) $NDPRELAY status --control-socket $WORK/ctl.sock | awk '\$1 == \"eth0\" {print \$5}')\" = 1400 ]"
wait_for 5 "br0's new MAC in status" sh -c "ip netns exec $(ns dom0) $NDPRELAY status --control-socket $WORK/ctl.sock | grep -q '^br0 .*02:00:5e:00:53:99'"
# Guests learn the new MAC from the relay's NAs; isp still reaches g1.
wait_for 30 "isp reaches g1 after the MAC change" reach
nsx dom0 ip link set eth0 mtu 1500

low_cpu 3
stop_relay
[ -z "$(own_routes dom0)" ] || fail "routes left after SIGTERM: $(own_routes dom0)"
grep -q cafe <<<"$(nsx dom0 ip -6 route show 2001:db8:1::cafe)" || fail "a route the relay does not own was removed"
log "PASS"
