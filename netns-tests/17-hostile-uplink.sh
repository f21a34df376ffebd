#!/usr/bin/env bash
# hostile uplink (issue 14 items 1, 2, 5 from the uplink side): attacker u1 shares the
# uplink segment (a bridge in namespace sw) with isp and dom0 and sends P-bit RAs (from
# its own MAC, and from the router's MAC spoofed), fake_router26 -F proxy, ra6 -q with
# odd options, an RA flood, ndpexhaust26 and flood_solicitate6 toward the prefix, and NAs
# claiming a guest's address. After each (`holds`): g1 and g2 stay reachable from isp,
# every port keeps proxying, nothing of the attacker's is bound or routed, RSS and CPU
# stay bounded, the status counts what was refused; after each group a guest that boots
# then is reachable. A P-bit RA from a non-router neighbour quarantines that MAC on the
# uplink instead of stopping the relay; the router's MAC is never quarantined. The P-bit
# attacks go last (see there). HOSTILE_KEEP_GOING=1 lists every failed check.
#
#   isp (radvd) --\
#   u1 (attacker) -- sw -- eth0 [dom0: ndprelay] br0 --- g1, g2, late guests
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/hostile.sh"

switch sw
mkns isp
mkns dom0
mkns g1
mkns g2
plug sw sisp isp isp0
plug sw sdom0 dom0 eth0
attacker u1 1 sw su1 sw0
nsx isp ip -6 addr add 2001:db8:1::1/64 dev isp0 nodad
nsx dom0 ip link add br0 type bridge
nsx dom0 sysctl -qw net.ipv6.conf.br0.accept_ra=0
nsx dom0 ip link set br0 address 02:d0:00:00:00:b0
nsx dom0 ip link set br0 up
veth g1 eth0 dom0 vg1
veth g2 eth0 dom0 vg2
nsx dom0 ip link set vg1 master br0
nsx dom0 ip link set vg2 master br0
nsx dom0 sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv6.conf.eth0.accept_ra=2
start_radvd isp isp0 2001:db8:1::/64

write_config "$WORK/relay.ron" eth0 br0
start_relay dom0 "$WORK/relay.ron"
for g in g1 g2; do wait_for 30 "$g global address" has_global "$g" eth0; done
wait_for 30 "br0 proxying" proxying br0
REAL+=(g1 g2)
GUESTS+=(g1:br0 g2:br0)
for g in g1 g2; do
    wait_for 15 "isp reaches $g" reach "$(addr_of "$g")"
    wait_for 10 "$g bound with a route" binding_routed "$(addr_of "$g")" br0
done
G1="$(addr_of g1)"
ISP_MAC="$(nsx isp cat /sys/class/net/isp0/address)"
ISP_LL="$(nsx isp ip -6 -o addr show dev isp0 scope link | awk '{split($4, a, "/"); print a[1]}')"
DOM0_MAC="$(nsx dom0 cat /sys/class/net/eth0/address)"
DOM0_LL="$(nsx dom0 ip -6 -o addr show dev eth0 scope link | awk '{split($4, a, "/"); print a[1]}')"
BR0_MAC="$(nsx dom0 cat /sys/class/net/br0/address)"
# An address of its own in the prefix and isp as its router: ndpexhaust26 then makes
# isp resolve random addresses of the prefix, which is what reaches the relay.
nsx u1 ip -6 addr add 2001:db8:1::bad/128 dev eth0 nodad
nsx u1 ip -6 route add default via "$ISP_LL" dev eth0
log "measure: before any attack: RSS $(rss_kb "$RELAY_PID") kB, CPU $(cpu_ms "$RELAY_PID") ms since start"

# --------------------------------------------------------------------- RA flood
log "atk6-flood_router26 on the uplink for 5 s"
mark sw su1
nsx u1 timeout 5 atk6-flood_router26 eth0 >/dev/null 2>&1 || true
holds "atk6-flood_router26 on the uplink" 100
# The relay relays the uplink's RAs whoever sends them (the uplink's routers are not its
# to choose, RFC 4389), paced to one per interval, so the flood's last RA can still go
# out one interval after the flood: a guest up at that moment takes addresses from its
# dozens of prefixes up to the kernel's max_addresses (16) and then has no room for the
# real prefix's, as on any LAN with a rogue router. The late guest boots once two RAs
# went out after the flood (the second one is the router's).
ras_after_flood=$(($(jcounter relayed_ra) + 2))
ras_relayed() { [ "$(jcounter relayed_ra)" -ge "$1" ]; }
wait_for 15 "two RAs relayed after the flood" ras_relayed "$ras_after_flood"
boot_guest lg1 br0

# ---------------------------------------- NS toward the prefix (ND exhaustion of dom0)
# The relay's NS on br0 (source br0's MAC), seen from g1: bounded by the global NS budget
# (limits ns_rate 1000/s, ns_burst 200).
ns_downstream() {
    local what="$1" out window bound
    kill -INT "$DUMP"
    wait "$DUMP" 2>/dev/null || true
    out="$(ns_out "$WORK/br0-$2.pcap" "$BR0_MAC")"
    window="$(awk -v t="$MARK_T" -v n="$(date +%s.%N)" 'BEGIN {printf "%.1f", n - t}')"
    bound="$(awk -v w="$window" 'BEGIN {print int(200 + 1000 * w)}')"
    log "measure: $what: the relay sent $out NS on br0 in ${window} s (bound 200 + 1000/s = $bound); drop_rate_limited +$(since drop_rate_limited), relayed_ns +$(since relayed_ns)"
    [ "$out" -le "$bound" ] || fail "$what: the relay sent $out NS on br0 in ${window} s, more than $bound"
}
log "atk6-ndpexhaust26 -p toward 2001:db8:1::/64 from the uplink for 5 s"
ip netns exec "$(ns g1)" tcpdump -n -i eth0 -U -w "$WORK/br0-exhaust.pcap" "ether src $BR0_MAC and icmp6" 2>/dev/null &
DUMP=$!
PIDS+=($DUMP)
sleep 1
mark sw su1
nsx u1 timeout 5 atk6-ndpexhaust26 -p eth0 2001:db8:1:: >/dev/null 2>&1 || true
ns_downstream "atk6-ndpexhaust26" exhaust
holds "atk6-ndpexhaust26 from the uplink" 1000
log "atk6-flood_solicitate6 (NS for random targets) on the uplink for 5 s"
ip netns exec "$(ns g1)" tcpdump -n -i eth0 -U -w "$WORK/br0-solicit.pcap" "ether src $BR0_MAC and icmp6" 2>/dev/null &
DUMP=$!
PIDS+=($DUMP)
sleep 1
mark sw su1
nsx u1 timeout 5 atk6-flood_solicitate6 eth0 >/dev/null 2>&1 || true
ns_downstream "atk6-flood_solicitate6" solicit
holds "atk6-flood_solicitate6 from the uplink" 1000

# ------------------------------------------------------- NAs claiming a guest's address
log "NAs from the uplink claiming g1's address $G1 (multicast O, then unicast S+O to dom0)"
mark sw su1
scapy u1 na eth0 02:ba:d0:00:01:04 33:33:00:00:00:01 ff02::1 "$G1" O
expect_since drop_uplink_claims_guest 1 "a multicast NA claiming g1's address"
binding_routed "$G1" br0 || fail "g1's binding left br0 after a multicast NA on the uplink claimed it"
# Sent to dom0 itself, S=1: no probe of the relay's asked for it, so it may count as
# claiming a guest, as unsolicited or as consumed, but it changes nothing.
refused0=$(($(since drop_uplink_claims_guest) + $(since drop_unsolicited) + $(since consumed_na)))
scapy u1 na eth0 02:ba:d0:00:01:04 "$DOM0_MAC" "$DOM0_LL" "$G1" SO
expect_since_sum() {
    local end=$((SECONDS + 5)) n
    while :; do
        n=$(($(since drop_uplink_claims_guest) + $(since drop_unsolicited) + $(since consumed_na) - refused0))
        [ "$n" -ge 1 ] || [ "$SECONDS" -ge "$end" ] && break
        sleep 0.3
    done
    [ "$n" -ge 1 ] || fail "a unicast NA claiming g1's address was not counted (drop_uplink_claims_guest, drop_unsolicited, consumed_na)"
}
expect_since_sum
log "a unicast NA claiming g1: drop_uplink_claims_guest +$(since drop_uplink_claims_guest), drop_unsolicited +$(since drop_unsolicited), consumed_na +$(since consumed_na) in all"
binding_routed "$G1" br0 || fail "g1's binding left br0 after a unicast NA on the uplink claimed it"
[ "$(jstatus | jq -r --arg a "$G1" '.bindings[] | select(.address == $a) | .mac')" = "$(nsx g1 cat /sys/class/net/eth0/address)" ] ||
    fail "g1's binding no longer has g1's MAC after NAs on the uplink claimed it"
# isp's own kernel took the multicast NA (O=1) and points g1 at the attacker: `reach`
# flushes isp's cache, so what is checked is the relay answering for g1 again.
holds "NAs claiming a guest's address" 2
log "atk6-flood_advertise6 on the uplink for 5 s"
mark sw su1
nsx u1 timeout 5 atk6-flood_advertise6 eth0 >/dev/null 2>&1 || true
holds "atk6-flood_advertise6 on the uplink" 1000
boot_guest lg2 br0

# Item 1 goes last: on a relay that stops on a P-bit RA from the uplink (before issue
# 14's fix), nothing after it could show anything.
# ---------------------------------------------------------------- item 1: P-bit RAs
log "item 1: three P-bit RAs from an uplink neighbour that is not a router (scapy)"
U1=02:ba:d0:00:01:01
mark sw su1
scapy u1 pbit-ra eth0 "$U1" fe80::bad:1 3
expect_since drop_ra_p_bit 3 "P-bit RAs from an uplink neighbour"
all_proxying "three P-bit RAs on the uplink"
expect_since quarantined_senders 1 "P-bit RAs from an uplink neighbour"
wait_for 5 "$U1 quarantined on eth0" quarantined eth0 "$U1"
scapy u1 ns eth0 "$U1" fe80::bad:1 "$G1"
expect_since drop_quarantined 1 "an NS from the quarantined MAC"
# The router's RAs are still relayed (radvd sends one every 3-4 s).
expect_since relayed_ra 1 "isp's RAs after the P-bit RAs"
holds "scapy P-bit RAs on the uplink" 3

log "item 1: a P-bit RA claiming the router's own MAC and link-local: never quarantined"
mark sw su1
scapy u1 pbit-ra eth0 "$ISP_MAC" "$ISP_LL" 2
expect_since drop_ra_p_bit 2 "P-bit RAs spoofing the router"
all_proxying "P-bit RAs spoofing the router"
quarantined eth0 "$ISP_MAC" && fail "the router's MAC $ISP_MAC was quarantined by RAs a neighbour sent in its name"
holds "P-bit RAs spoofing the router" 2
quarantined eth0 "$ISP_MAC" && fail "the router's MAC $ISP_MAC is quarantined"

log "item 1: atk6-fake_router26 -F proxy and ra6 -q with odd options on the uplink"
U2=02:ba:d0:00:01:02
mark sw su1
nsx u1 timeout 8 atk6-fake_router26 -F proxy -A 2001:db8:1::/64 -S "$U2" -f "$U2" -n 3 -i 1 eth0 >/dev/null 2>&1 || true
expect_since drop_ra_p_bit 3 "atk6-fake_router26 -F proxy"
wait_for 5 "$U2 quarantined on eth0" quarantined eth0 "$U2"
holds "atk6-fake_router26 -F proxy" 3
U3=02:ba:d0:00:01:03
mark sw su1
nsx u1 timeout 5 ra6 -i eth0 -q -S "$U3" -s fe80::bad:1 -d ff02::1 -y 64 -e -P 2001:db8:1::/64 >/dev/null 2>&1 || true
nsx u1 timeout 5 ra6 -i eth0 -q -S "$U3" -s fe80::bad:1 -d ff02::1 -H 64 -e >/dev/null 2>&1 || true
expect_since drop_frag_nd 1 "ra6 -y (fragmented RA)"
expect_since drop_ext_hdr_nd 1 "ra6 -H (RA behind a Hop-by-Hop header)"
nsx u1 timeout 5 ra6 -i eth0 -q -S "$U3" -s fe80::bad:1 -d ff02::1 -e -t 0 -M 1280 >/dev/null 2>&1 || true
wait_for 5 "$U3 quarantined on eth0" quarantined eth0 "$U3"
holds "ra6 -q (fragmented, hop-by-hop, lifetime 0)" 3
boot_guest lg3 br0

log "measure: whole run: $ATTACK_FRAMES attack frames; relay RSS $(rss_kb "$RELAY_PID") kB, CPU $(cpu_ms "$RELAY_PID") ms since start"
log "counters: $(jstatus | jq -c '.counters | with_entries(select(.value > 0))')"
stop_relay
pass
