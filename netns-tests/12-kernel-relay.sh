#!/usr/bin/env bash
# kernel relay: with relay_in_kernel (relay mode, no fast path), an eBPF program on
# dom0's ports relays isp's NS to g1 and g1's answers back to isp (ndisc6 sees dom0's
# MAC, the relay counts relayed_ns_by_kernel and relayed_na_by_kernel), each NS gets one
# NA at isp (the relay does not send the kernel's again; at most the first after a new
# entry twice), and SIGHUP turns it off and on (the program stays loaded: CAP_BPF is
# gone after start); without CAP_BPF at start the default config relays them in
# userspace, and a reload cannot ask for the program then.
source "$(dirname "$0")/lib.sh"

# nd_count PCAP TYPE FIELD : NS (135) or NA (136) with target $G1 between isp's
# link-local and g1 in PCAP
nd_count() {
    local dir
    if [ "$2" = 135 ]; then dir=src; else dir=dst; fi
    tshark -r "$1" -Y "icmpv6.type == $2 && icmpv6.nd.$3.target_address == $G1 && ipv6.$dir == fe80::/10" \
        2>/dev/null | wc -l
}

# CAP_BPF dropped after start: the loaded program's maps and links work without it.
start_bpf_relay 'relay_in_kernel: true,' "$CAPS_NET"

log "ndisc6 from isp: g1's answers with dom0's MAC, NS and NA relayed by dom0's kernel, once each"
ip netns exec "$(ns isp)" tcpdump -i isp0 -nn -U -w "$WORK/ndisc6.pcap" icmp6 2>/dev/null &
capture=$!
PIDS+=("$capture")
wait_for 10 "tcpdump capturing" test -s "$WORK/ndisc6.pcap"
before="$(counter relayed_na_by_kernel)"
before_ns="$(counter relayed_ns_by_kernel)"
resolves_to_dom0 6 "relayed in the kernel"
by_kernel=$(($(counter relayed_na_by_kernel) - before))
ns_by_kernel=$(($(counter relayed_ns_by_kernel) - before_ns))
sleep 0.5
kill -INT "$capture"
wait "$capture" 2>/dev/null || true
solicited="$(nd_count "$WORK/ndisc6.pcap" 135 ns)"
answered="$(nd_count "$WORK/ndisc6.pcap" 136 na)"
log "NS from isp's link-local: $solicited, NAs back: $answered; relayed by the kernel: $ns_by_kernel NS, $by_kernel NAs"
[ "$solicited" -ge 6 ] || fail "only $solicited NS for $G1 captured at isp"
# Each NS answered once; the first answer after the relay tells the kernel may come
# twice (the relay cannot know whether it passed the program before the entry).
[ "$answered" -ge "$solicited" ] || fail "$answered NAs for $solicited NS: answers lost"
[ "$answered" -le $((solicited + 1)) ] || fail "$answered NAs for $solicited NS: the relay sent the kernel's again"
[ "$by_kernel" -ge 4 ] || fail "only $by_kernel of 6 NAs relayed by the kernel"
[ "$ns_by_kernel" -ge 4 ] || fail "only $ns_by_kernel of 6 NS relayed by the kernel"

log "isp's own kernel resolves g1 again and reaches it"
nsx isp ip -6 neigh flush dev isp0
nsx isp ping -6 -c 3 -i 0.3 -W 3 "$G1" >/dev/null || fail "isp cannot ping g1 after a neighbour flush"
nsx g1 ping -6 -c 2 -i 0.3 -W 3 2001:db8:1::1 >/dev/null || fail "g1 cannot ping isp"

log "SIGHUP with relay_in_kernel: false: the relay sends them; true again: the kernel"
reload_with 'relay_in_kernel: false,' 1
before="$(counter relayed_na_by_kernel)"
before_ns="$(counter relayed_ns_by_kernel)"
resolves_to_dom0 3 "after the reload"
[ "$(counter relayed_na_by_kernel)" -eq "$before" ] || fail "the kernel still relayed NAs after the reload"
[ "$(counter relayed_ns_by_kernel)" -eq "$before_ns" ] || fail "the kernel still relayed NS after the reload"
reload_with 'relay_in_kernel: true, limits: (max_bindings: 8192),' 2
resolves_to_dom0 4 "after the second reload"
[ "$(counter relayed_na_by_kernel)" -gt "$before" ] || fail "the kernel did not relay NAs again"
[ "$(counter relayed_ns_by_kernel)" -gt "$before_ns" ] || fail "the kernel did not relay NS again"

log "without CAP_BPF at start the default config relays them itself and says why"
stop_relay
write_config "$WORK/default.ron" eth0 br0
ip netns exec "$(ns dom0)" env RUST_LOG=info setpriv --inh-caps=-all --bounding-set=-bpf \
    "$NDPRELAY" run -c "$WORK/default.ron" >>"$WORK/relay.log" 2>&1 &
RELAY_PID=$!
wait_for 10 "relay control socket" status_ok
grep -q "relayed by the relay's threads, not in the kernel: CAP_BPF is missing at start" "$WORK/relay.log" ||
    fail "no log line on the fallback: $(grep relay_in_kernel "$WORK/relay.log" | tail -n 2)"
has_caps "$CAPS_NET"
wait_for 30 "br0 proxying" proxying br0
resolves_to_dom0 3 "relayed in userspace"
[ "$(counter relayed_na_by_kernel)" -eq 0 ] || fail "the kernel relayed NAs without the program"
[ "$(counter relayed_na)" -gt 0 ] || fail "the relay relayed no NA itself"

log "SIGHUP asking for relay_in_kernel: true without the program loaded: refused, says restart"
EXTRA='relay_in_kernel: true,' write_config "$WORK/default.ron" eth0 br0
kill -HUP "$RELAY_PID"
wait_for 10 "the refusal logged" grep -q "reload refused.*relay_in_kernel: true needs its eBPF program.*restart ndprelay" "$WORK/relay.log"
resolves_to_dom0 2 "after the refused reload"
[ "$(counter relayed_na_by_kernel)" -eq 0 ] || fail "the kernel relayed NAs after the refused reload"
log "PASS"
