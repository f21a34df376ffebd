#!/usr/bin/env bash
# tc attach: with `in_kernel_attach: Tc` the in-kernel relay hooks into dom0's ports as
# a tc `bpf` filter (direct-action, pref 1, protocol ipv6, named ndprelay_rel) on their
# clsact qdisc, as on a kernel before 6.6: `tc filter show` lists it once per port,
# status and the log say `tc`, and isp's NS for g1 and g1's answers are relayed through
# it (relayed_ns_by_kernel, relayed_na_by_kernel grow; ndisc6 sees dom0's MAC); a
# reload turning the relay off removes the filters, on again adds them back. SIGTERM
# removes the filters, and the clsact qdisc where the relay created it (eth0) but not
# where it found one with another filter (br0, whose filter stays). After SIGKILL the
# filter stays; a restart replaces it (exactly one) and relays through it again. Not
# set, in_kernel_attach uses tcx on 6.6+ and adds no filter, and on older kernels picks
# the tc filter by itself. With the fast path
# too, eth0 has both programs' filters and the kernel answers through them.
source "$(dirname "$0")/lib.sh"

# ours PORT : how many of the relay's filters `tc filter show dev PORT ingress` lists
ours() { nsx dom0 tc filter show dev "$1" ingress | grep -c 'ndprelay_rel' || true; }
# one_filter PORT : exactly one of the relay's filters on PORT
one_filter() { [ "$(ours "$1")" -eq 1 ]; }
# has_clsact PORT : PORT has a clsact qdisc
has_clsact() { nsx dom0 tc qdisc show dev "$1" | grep -q '^qdisc clsact'; }
# hook PORT : the in_kernel_hook `ndprelay status --json` shows for PORT
hook() { status --json | jq -r --arg p "$1" '.ports[] | select(.name == $p) | .in_kernel_hook'; }
# relays_in_kernel WHEN : ndisc6 from isp resolves g1 to dom0 6 times, at least 4 NS and
# 4 NA of which the kernel relayed
# rebinds : after a restart with no route left, isp reaching g1 binds it again
rebinds() {
    wait_for 30 "br0 proxying" proxying br0
    nsx isp ip -6 neigh flush dev isp0
    nsx isp ping -6 -c 3 -i 0.3 -W 3 "$G1" >/dev/null || fail "isp cannot reach g1 after the restart"
    wait_for 30 "g1 binding with route" binding_routed "$G1" br0
}
relays_in_kernel() {
    local na ns
    na="$(counter relayed_na_by_kernel)"
    ns="$(counter relayed_ns_by_kernel)"
    resolves_to_dom0 6 "$1"
    na=$(($(counter relayed_na_by_kernel) - na))
    ns=$(($(counter relayed_ns_by_kernel) - ns))
    log "$1: relayed by the kernel: $ns NS, $na NAs of 6"
    [ "$ns" -ge 4 ] || fail "$1: only $ns of 6 NS relayed by the kernel"
    [ "$na" -ge 4 ] || fail "$1: only $na of 6 NAs relayed by the kernel"
}

dom0_topology
log "br0 already has a clsact qdisc with someone else's filter (cBPF, returns 0: no match)"
nsx dom0 tc qdisc add dev br0 clsact
nsx dom0 tc filter add dev br0 ingress pref 100 protocol all bpf bytecode '1,6 0 0 0,'
has_clsact eth0 && fail "eth0 has a clsact qdisc before the relay started"

EXTRA='relay_in_kernel: true, in_kernel_attach: Tc,' write_config "$WORK/relay.ron" eth0 br0
start_relay dom0 "$WORK/relay.ron"
has_caps "$CAPS_NET"
wait_for 30 "g1 global address" has_global g1 eth0
G1="$(global_addr g1 eth0)"
nsx isp ping -6 -c 3 -i 0.3 -W 3 "$G1" >/dev/null || fail "isp cannot ping g1 ($G1)"
wait_for 10 "g1 binding with route" binding_routed "$G1" br0
DOM0_MAC="$(nsx dom0 cat /sys/class/net/eth0/address)"

log "one tc filter of ours per port, direct-action at pref 1, first; status and log say tc"
for p in eth0 br0; do
    [ "$(ours $p)" -eq 1 ] || fail "$p: $(ours $p) ndprelay_rel filters: $(nsx dom0 tc filter show dev $p ingress)"
    nsx dom0 tc filter show dev $p ingress | grep 'ndprelay_rel' | grep -q 'pref 1 bpf.*direct-action' ||
        fail "$p: not a direct-action bpf filter at pref 1: $(nsx dom0 tc filter show dev $p ingress)"
    [ "$(nsx dom0 tc filter show dev $p ingress | awk '/^filter/ {print $5; exit}')" = 1 ] ||
        fail "$p: our filter is not the first: $(nsx dom0 tc filter show dev $p ingress)"
    [ "$(hook $p)" = tc ] || fail "$p: status says in_kernel_hook '$(hook $p)', expected tc"
    grep -q "relay_in_kernel: attached to $p with tc" "$WORK/relay.log" || fail "$p: no log line saying tc"
    nsx dom0 tc filter show dev $p egress | grep -q . && fail "$p: a filter at egress"
done
table="$(status)"
[ "$(grep -cE '^(eth0|br0) .* tc ' <<<"$table")" -eq 2 ] || fail "the status table shows no tc hook: $table"

log "the in-kernel relay works through the tc filters"
relays_in_kernel "through tc"
nsx isp ip -6 neigh flush dev isp0
nsx isp ping -6 -c 2 -i 0.3 -W 3 "$G1" >/dev/null || fail "isp cannot ping g1 after a neighbour flush"

log "SIGHUP with relay_in_kernel: false removes the filters; true again adds them back"
reload_with 'relay_in_kernel: false, in_kernel_attach: Tc,' 1
for p in eth0 br0; do
    [ "$(ours $p)" -eq 0 ] || fail "$p: our filter outlived the reload turning the relay off"
done
reload_with 'relay_in_kernel: true, in_kernel_attach: Tc,' 2
for p in eth0 br0; do
    [ "$(ours $p)" -eq 1 ] || fail "$p: $(ours $p) of our filters after the reload turning it on"
done
relays_in_kernel "after the reloads"

log "SIGTERM removes our filters, eth0's clsact (ours), not br0's (someone else's) nor its filter"
stop_relay
for p in eth0 br0; do
    [ "$(ours $p)" -eq 0 ] || fail "$p: our filter outlived SIGTERM: $(nsx dom0 tc filter show dev $p ingress)"
done
has_clsact eth0 && fail "eth0: the clsact qdisc the relay created outlived it"
has_clsact br0 || fail "br0: the relay removed a clsact qdisc it did not create"
nsx dom0 tc filter show dev br0 ingress | grep -q "bytecode '1,6 0 0 0'" || fail "br0: the other filter is gone"

log "SIGKILL leaves the filters; a restart replaces them: exactly one per port, working"
rm -f "$WORK/ctl.sock"
start_relay dom0 "$WORK/relay.ron"
wait_for 10 "our filter on eth0" one_filter eth0
kill -KILL "$RELAY_PID"
wait "$RELAY_PID" 2>/dev/null || true
RELAY_PID=""
[ "$(ours eth0)" -eq 1 ] || fail "expected the killed relay's filter to remain on eth0"
rm -f "$WORK/ctl.sock"
start_relay dom0 "$WORK/relay.ron"
for p in eth0 br0; do
    [ "$(ours $p)" -eq 1 ] || fail "$p: $(ours $p) of our filters after the restart: $(nsx dom0 tc filter show dev $p ingress)"
done
grep -q "tc: removed the ndprelay_rel filter an earlier run left on eth0" "$WORK/relay.log" ||
    fail "no log line on the earlier run's filter"
rebinds
relays_in_kernel "after SIGKILL and restart"
stop_relay
for p in eth0 br0; do
    [ "$(ours $p)" -eq 0 ] || fail "$p: our filter outlived the second SIGTERM"
done
nsx dom0 tc filter show dev br0 ingress | grep -q "bytecode '1,6 0 0 0'" || fail "br0: the other filter is gone"

# The kernel's own answer decides: tcx from Linux 6.6 (BPF_TCX_INGRESS), else the relay
# falls back to the tc filter by itself (scripts/old-kernel.sh runs this on 6.1).
if kernel_has_tcx; then
    auto=tcx
else
    auto=tc
fi
log "in_kernel_attach not set: $auto on this kernel ($(uname -r))"
EXTRA='relay_in_kernel: true,' write_config "$WORK/auto.ron" eth0 br0
rm -f "$WORK/ctl.sock"
start_relay dom0 "$WORK/auto.ron"
for p in eth0 br0; do
    [ "$(hook $p)" = "$auto" ] || fail "$p: status says in_kernel_hook '$(hook $p)', expected $auto"
    if [ "$auto" = tcx ]; then
        [ "$(ours $p)" -eq 0 ] || fail "$p: a tc filter with tcx: $(nsx dom0 tc filter show dev $p ingress)"
    else
        one_filter $p || fail "$p: $(ours $p) filters without in_kernel_attach: $(nsx dom0 tc filter show dev $p ingress)"
    fi
done
grep -q "relay_in_kernel: attached to eth0 with $auto" "$WORK/relay.log" ||
    fail "no log line saying eth0's hook is $auto: $(grep -i attached "$WORK/relay.log" | tail -n 3)"
rebinds
relays_in_kernel "through $auto, chosen by the relay"
stop_relay
[ "$(ours eth0)" -eq 0 ] || fail "eth0: the automatic filter outlived SIGTERM"

log "fast path and relay in the kernel with Tc: two filters on eth0, both run, both go"
EXTRA='fast_path: "5s", fast_path_in_kernel: true, relay_in_kernel: true, in_kernel_attach: Tc,' \
    write_config "$WORK/fast.ron" eth0 br0
rm -f "$WORK/ctl.sock"
start_relay dom0 "$WORK/fast.ron"
[ "$(ours eth0)" -eq 1 ] || fail "eth0: $(ours eth0) ndprelay_rel filters"
[ "$(nsx dom0 tc filter show dev eth0 ingress | grep -c 'ndprelay_ns')" -eq 1 ] ||
    fail "eth0: no ndprelay_ns filter: $(nsx dom0 tc filter show dev eth0 ingress)"
grep -q "fast_path_in_kernel: attached to eth0 with tc" "$WORK/relay.log" || fail "no log line for the fast path's filter"
rebinds
before="$(counter answered_by_kernel)"
resolves_to_dom0 6 "fast path through tc"
answered=$(($(counter answered_by_kernel) - before))
log "fast path through tc: answered by the kernel: $answered of 6"
[ "$answered" -ge 3 ] || fail "only $answered of 6 NS answered by the kernel through tc"
stop_relay
[ -z "$(nsx dom0 tc filter show dev eth0 ingress | grep ndprelay)" ] ||
    fail "eth0: filters outlived SIGTERM: $(nsx dom0 tc filter show dev eth0 ingress)"
log "PASS"
