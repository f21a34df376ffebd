#!/usr/bin/env bash
# hostile guest (issue 14 items 1, 2, 5): attacker a1 on br0, next to g1 and g2, with g5
# alone on a second downstream port br1, attacks the running relay with exact scapy
# frames (P-bit RAs, 5000 unsolicited S=1 NAs, 20000 NS from spoofed sources), the
# thc-ipv6 floods and ipv6toolkit's ns6/na6/ra6 with odd options. After each attack
# (`holds`): g1, g2, g5 stay reachable from isp, every port keeps proxying, no relay
# route or confirmed binding exists for an address no real host holds, RSS and CPU stay
# bounded, the status counts what was refused; after each group a guest that boots then
# is reachable. A P-bit RA from a guest quarantines that guest's MAC on its port
# instead of disabling the port; the NS dom0 sends on the uplink stay within the
# per-port budget (200 + 100/s) and g5's own NS still get through. Order: items 2 and 5,
# the RA flood, then item 1 (see there). HOSTILE_KEEP_GOING=1 lists every failed check.
#
#   isp (radvd) --- eth0 [dom0: ndprelay] br0 --- g1, g2, a1 (attacker), late guests
#                                         br1 --- g5
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/hostile.sh"

dom0_topology
# Fixed bridge MACs: a bridge takes its lowest port's MAC, which late guests would change.
nsx dom0 ip link set br0 address 02:d0:00:00:00:b0
nsx dom0 ip link add br1 type bridge
nsx dom0 sysctl -qw net.ipv6.conf.br1.accept_ra=0
nsx dom0 ip link set br1 address 02:d0:00:00:00:b1
nsx dom0 ip link set br1 up
guest g5 br1
attacker a1 1 dom0 va1 br0
# dom0 keeps the attacker's RAs from the other guests, as a hypervisor's RA guard does:
# guests that follow a fake router are the guests' own problem, not the relay's, and
# the relay sees every RA on br0 all the same (the bridge's local input, not forward).
nsx dom0 nft -f - <<'EOF'
table bridge raguard {
    chain forward {
        type filter hook forward priority 0;
        iifname "va1" icmpv6 type nd-router-advert drop
    }
}
EOF
# Extra isp addresses nobody has resolved yet: g5 solicits them during the NS flood.
for i in 1 2 3 4 5 6; do nsx isp ip -6 addr add "2001:db8:1::a$i/64" dev isp0 nodad; done

write_config "$WORK/relay.ron" eth0 br0 br1
start_relay dom0 "$WORK/relay.ron"
for g in g1 g2 g5; do wait_for 30 "$g global address" has_global "$g" eth0; done
wait_for 30 "br0 proxying" proxying br0
wait_for 30 "br1 proxying" proxying br1
REAL+=(g1 g2 g5)
GUESTS+=(g1:br0 g2:br0 g5:br1)
for g in "${GUESTS[@]}"; do
    wait_for 15 "isp reaches ${g%%:*}" reach "$(addr_of "${g%%:*}")"
    wait_for 10 "${g%%:*} bound with a route" binding_routed "$(addr_of "${g%%:*}")" "${g#*:}"
done
BR0_MAC="$(nsx dom0 cat /sys/class/net/br0/address)"
BR0_LL="$(nsx dom0 ip -6 -o addr show dev br0 scope link | awk '{split($4, a, "/"); print a[1]}')"
DOM0_MAC="$(nsx dom0 cat /sys/class/net/eth0/address)"
# An address of its own in the prefix and dom0 as its router: ndpexhaust26 needs both.
nsx a1 ip -6 addr add 2001:db8:1::bad/128 dev eth0 nodad
nsx a1 ip -6 route add default via "$BR0_LL" dev eth0
log "measure: before any attack: RSS $(rss_kb "$RELAY_PID") kB, CPU $(cpu_ms "$RELAY_PID") ms since start"
# Every NS dom0 sends on the uplink, for the whole run.
ip netns exec "$(ns isp)" tcpdump -n -i isp0 -U -w "$WORK/uplink.pcap" "ether src $DOM0_MAC and icmp6" 2>/dev/null &
UPLINK_DUMP=$!
PIDS+=($UPLINK_DUMP)
RUN_T0=$SECONDS

# ------------------------------------------------- item 2: unsolicited NAs with S=1
nsx a1 ip link set eth0 address 02:ba:d0:00:00:a2
A2="$(nsx a1 cat /sys/class/net/eth0/address)"
log "item 2: 5000 unsolicited NAs, S=1, random in-prefix targets, to $BR0_LL (scapy, from $A2)"
mark dom0 va1
BIND0="$(jstatus | jq '.bindings | length')"
scapy a1 na-flood eth0 "$BR0_MAC" "$BR0_LL" "$PREFIX6" 5000 2500
sleep 1
BIND1="$(jstatus | jq '.bindings | length')"
FROM_A="$(jstatus | jq --arg m "$A2" '[.bindings[] | select(.mac == $m)] | length')"
log "measure: bindings $BIND0 before, $BIND1 after, $FROM_A with the attacker's MAC; proto-199 routes: $(own_routes dom0 | wc -l)"
[ "$FROM_A" -eq 0 ] || fail "5000 unsolicited NAs left $FROM_A bindings with the attacker's MAC $A2"
refused=$(($(since drop_unsolicited) + $(since consumed_na)))
log "measure: unsolicited NAs refused: drop_unsolicited +$(since drop_unsolicited), consumed_na +$(since consumed_na), rx_nd +$(since rx_nd)"
[ "$refused" -ge 4500 ] || fail "of 5000 unsolicited NAs only $refused were counted as refused (drop_unsolicited, consumed_na)"
holds "5000 unsolicited S=1 NAs" 4900

log "item 2: atk6-flood_advertise6 and na6 -T (NAs for many targets) for 5 s each"
mark dom0 va1
nsx a1 timeout 5 atk6-flood_advertise6 eth0 >/dev/null 2>&1 || true
holds "atk6-flood_advertise6" 1000
mark dom0 va1
nsx a1 timeout 5 na6 -i eth0 -t 2001:db8:1::/64 -T 200 -c -o -e -d "$BR0_LL" -D "$BR0_MAC" -l -z 1 >/dev/null 2>&1 || true
FROM_A="$(jstatus | jq --arg m "$A2" '[.bindings[] | select(.mac == $m)] | length')"
[ "$FROM_A" -eq 0 ] || fail "na6 -T left $FROM_A bindings with the attacker's MAC $A2"
holds "na6 -T 200 -c -o (solicited NAs for random targets)" 200
boot_guest lg1 br0

# -------------------------------------------- item 5: NS for unknown targets, spoofed
nsx a1 ip link set eth0 address 02:ba:d0:00:00:a5
A5="$(nsx a1 cat /sys/class/net/eth0/address)"
log "item 5: 20000 NS from spoofed in-prefix sources for random targets at 2000/s (scapy, from $A5)"
ip netns exec "$(ns isp)" tcpdump -n -i isp0 -U -w "$WORK/ns-flood.pcap" "ether src $DOM0_MAC and icmp6" 2>/dev/null &
TCPDUMP=$!
PIDS+=($TCPDUMP)
sleep 1
mark dom0 va1
T0="$(date +%s.%N)"
scapy a1 ns-flood eth0 "$PREFIX6" 20000 2000 >"$WORK/ns-flood.txt" 2>&1 &
FLOOD=$!
PIDS+=($FLOOD)
wait_for 60 "the NS flood started" grep -q built "$WORK/ns-flood.txt"
# While it runs: isp resolves and pings g1 and g2 (bound targets), g5 on br1 resolves
# isp addresses nobody asked for before (unknown targets: fairness between ports).
sleep 1
for i in 1 2 3; do
    for g in g1 g2; do
        a="$(addr_of "$g")"
        got="$(lladdr_of isp isp0 "$a")"
        [ "$got" = "$DOM0_MAC" ] || fail "during the NS flood isp resolved $g ($a) to '$got', expected $DOM0_MAC"
        nsx isp ping -6 -c 1 -W 2 "$a" >/dev/null || fail "during the NS flood isp cannot ping $g ($a)"
    done
    got="$(lladdr_of g5 eth0 "2001:db8:1::a$i")"
    [ -n "$got" ] || fail "during the NS flood on br0, g5's NS for 2001:db8:1::a$i (br1) got no answer"
    kill -0 "$FLOOD" 2>/dev/null || fail "the NS flood ended before the checks during it did ($(cat "$WORK/ns-flood.txt"))"
done
log "during the flood isp resolved and pinged g1 and g2, and g5 resolved 3 unknown targets"
wait "$FLOOD" || fail "the NS flood failed: $(cat "$WORK/ns-flood.txt")"
sleep 3 # retransmissions of the last relayed NS
kill -INT "$TCPDUMP"
wait "$TCPDUMP" 2>/dev/null || true
T1="$(date +%s.%N)"
WINDOW="$(awk -v a="$T0" -v b="$T1" 'BEGIN {printf "%.1f", b - a}')"
OUT="$(ns_out "$WORK/ns-flood.pcap" "$DOM0_MAC")"
BOUND="$(awk -v w="$WINDOW" 'BEGIN {print int(200 + 100 * w)}')"
log "measure: $(cat "$WORK/ns-flood.txt" | tail -n 1); dom0 sent $OUT NS on the uplink in ${WINDOW} s (bound 200 + 100/s = $BOUND); drop_rate_limited +$(since drop_rate_limited), relayed_ns +$(since relayed_ns), learn_quota +$(since learn_quota), bindings with $A5: $(jstatus | jq --arg m "$A5" '[.bindings[] | select(.mac == $m)] | length')"
[ "$OUT" -le "$BOUND" ] || fail "20000 spoofed NS from one guest: dom0 sent $OUT NS on the uplink in ${WINDOW} s, more than 200 + 100/s ($BOUND)"
expect_since drop_rate_limited 1 "20000 spoofed NS"
holds "20000 spoofed NS at 2000/s" 19000

log "item 5: atk6-flood_solicitate6, ns6 -F -T and atk6-ndpexhaust26 for 5 s each"
mark dom0 va1
nsx a1 timeout 5 atk6-flood_solicitate6 eth0 >/dev/null 2>&1 || true
holds "atk6-flood_solicitate6" 1000
mark dom0 va1
nsx a1 timeout 5 ns6 -i eth0 -s 2001:db8:1::/64 -F 100 -t 2001:db8:1::/64 -T 100 -e -l -z 1 >/dev/null 2>&1 || true
holds "ns6 -F 100 -T 100" 400
mark dom0 va1
nsx a1 timeout 5 atk6-ndpexhaust26 -p -r eth0 2001:db8:1:: >/dev/null 2>&1 || true
holds "atk6-ndpexhaust26 -p -r" 1000
boot_guest lg2 br0

# ------------------------------------------------------------------ RA flood (item 1)
log "atk6-flood_router26 (RAs from random MACs) for 5 s"
mark dom0 va1
nsx a1 timeout 5 atk6-flood_router26 eth0 >/dev/null 2>&1 || true
holds "atk6-flood_router26" 100
boot_guest lg3 br0

# Item 1 goes last: on a relay that disables br0 for an hour on a P-bit RA (before issue
# 14's fix), nothing after it could show anything.
# ---------------------------------------------------------------- item 1: P-bit RAs
log "item 1: three P-bit RAs from a guest's MAC on br0 (scapy)"
Q1=02:ba:d0:00:00:01
mark dom0 va1
scapy a1 pbit-ra eth0 "$Q1" fe80::bad:1 3
expect_since drop_rogue_ra 3 "P-bit RAs from a guest"
all_proxying "three P-bit RAs from a guest"
expect_since quarantined_senders 1 "P-bit RAs from a guest"
wait_for 5 "$Q1 quarantined on br0" quarantined br0 "$Q1"
scapy a1 ns eth0 "$Q1" fe80::bad:1 2001:db8:1::1
expect_since drop_quarantined 1 "an NS from the quarantined MAC"
holds "scapy P-bit RAs" 3

log "item 1: atk6-fake_router26 -F proxy (P-bit RAs every second) and ra6 -q"
Q2=02:ba:d0:00:00:02
mark dom0 va1
nsx a1 timeout 8 atk6-fake_router26 -F proxy -A 2001:db8:1::/64 -S "$Q2" -f "$Q2" -n 3 -i 1 eth0 >/dev/null 2>&1 || true
expect_since drop_rogue_ra 3 "atk6-fake_router26 -F proxy"
wait_for 5 "$Q2 quarantined on br0" quarantined br0 "$Q2"
holds "atk6-fake_router26 -F proxy" 3
Q3=02:ba:d0:00:00:03
mark dom0 va1
# Odd forms: fragmented (RFC 6980 forbids it), behind a Destination Options header
# (RFC 7113 keeps RA guard able to see it), then a plain one with P and an RDNSS.
nsx a1 timeout 5 ra6 -i eth0 -q -S "$Q3" -s fe80::bad:1 -d ff02::1 -y 64 -e -P 2001:db8:1::/64 >/dev/null 2>&1 || true
nsx a1 timeout 5 ra6 -i eth0 -q -S "$Q3" -s fe80::bad:1 -d ff02::1 -u 64 -e >/dev/null 2>&1 || true
expect_since drop_frag_nd 1 "ra6 -y (fragmented RA)"
expect_since drop_ext_hdr_nd 1 "ra6 -u (RA behind a Destination Options header)"
nsx a1 timeout 5 ra6 -i eth0 -q -S "$Q3" -s fe80::bad:1 -d ff02::1 -e -N 600#2001:db8:1::53 >/dev/null 2>&1 || true
wait_for 5 "$Q3 quarantined on br0" quarantined br0 "$Q3"
holds "ra6 -q (fragmented, dst-opt, RDNSS)" 3
boot_guest lg4 br0

kill -INT "$UPLINK_DUMP" 2>/dev/null || true
sleep 0.5
ELAPSED=$((SECONDS - RUN_T0))
ALL_OUT="$(ns_out "$WORK/uplink.pcap" "$DOM0_MAC")"
log "measure: whole run: $ATTACK_FRAMES attack frames reached dom0 in ${ELAPSED} s; dom0 sent $ALL_OUT NS on the uplink; relay RSS $(rss_kb "$RELAY_PID") kB, CPU $(cpu_ms "$RELAY_PID") ms since start"
log "counters: $(jstatus | jq -c '.counters | with_entries(select(.value > 0))')"
stop_relay
pass
