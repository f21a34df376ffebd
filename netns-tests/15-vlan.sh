#!/usr/bin/env bash
# VLAN-tagged ND (issue 14 item 4): scapy sends 802.1Q/802.1ad-tagged NS, NA and RA
# from isp onto dom0's uplink and from g2 onto br0 (the kernel moves the tag into packet
# metadata before AF_PACKET and tc see the frame). No port serves a VLAN, so none of
# them is relayed, answered or learned, even for a bound guest whose NS the in-kernel
# program relays; `drop_vlan_tagged` counts each one, and the same frames untagged
# still work. Run twice: with the in-kernel programs (the default, CAP_BPF at start)
# and with `relay_in_kernel: false`.
source "$(dirname "$0")/lib.sh"

SCAPY=/usr/bin/python3
"$SCAPY" -c 'import scapy' 2>/dev/null || fail "scapy missing: apt-get install python3-scapy"

# send_nd NS IF KIND VLAN SRC_IP TARGET [COUNT]: one scapy frame from IF's MAC, tagged with
# VLAN (802.1Q; "ad" = 802.1ad VLAN 200; "none" = untagged). KIND: ns (to TARGET's
# solicited-node group), na (unsolicited, O=1, to ff02::1), ra (P bit set, to ff02::1).
send_nd() {
    nsx "$1" "$SCAPY" - "$2" "$3" "$4" "$5" "$6" "${7:-1}" <<'PY'
import sys
import logging
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from socket import AF_INET6, inet_ntop, inet_pton
from scapy.all import (Ether, Dot1Q, Dot1AD, IPv6, ICMPv6ND_NS, ICMPv6ND_NA, ICMPv6ND_RA,
                       ICMPv6NDOptSrcLLAddr, ICMPv6NDOptDstLLAddr, ICMPv6NDOptPrefixInfo,
                       in6_getnsma, in6_getnsmac, sendp)
ifname, kind, vlan, src, target, count = sys.argv[1:7]
mac = open(f"/sys/class/net/{ifname}/address").read().strip()
if kind == "ns":
    group = in6_getnsma(inet_pton(AF_INET6, target))
    dst = inet_ntop(AF_INET6, group)
    l2dst = in6_getnsmac(group)
    nd = ICMPv6ND_NS(tgt=target) / ICMPv6NDOptSrcLLAddr(lladdr=mac)
elif kind == "na":
    dst, l2dst = "ff02::1", "33:33:00:00:00:01"
    nd = ICMPv6ND_NA(tgt=target, R=0, S=0, O=1) / ICMPv6NDOptDstLLAddr(lladdr=mac)
else:
    dst, l2dst = "ff02::1", "33:33:00:00:00:01"
    nd = (ICMPv6ND_RA(P=1, routerlifetime=1800) / ICMPv6NDOptSrcLLAddr(lladdr=mac)
          / ICMPv6NDOptPrefixInfo(prefix="2001:db8:1::", prefixlen=64, L=1, A=1))
eth = Ether(src=mac, dst=l2dst)
if vlan == "ad":
    eth = eth / Dot1AD(vlan=200) / Dot1Q(vlan=100)
elif vlan != "none":
    eth = eth / Dot1Q(vlan=int(vlan))
sendp(eth / IPv6(src=src, dst=dst, hlim=255) / nd, iface=ifname, count=int(count),
      inter=0.05, verbose=False)
PY
}

# nd_seen PCAP FILTER : frames in PCAP matching the tshark display FILTER
nd_seen() { tshark -r "$1" -Y "$2" 2>/dev/null | wc -l; }

# capture NS IF NAME : tcpdump of ICMPv6 (tagged too) on IF into $WORK/NAME.pcap
capture() {
    # No filter: `vlan` in a tcpdump expression shifts every offset after it.
    ip netns exec "$(ns "$1")" tcpdump -i "$2" -nn -U -w "$WORK/$3.pcap" 2>/dev/null &
    PIDS+=($!)
    CAPTURES+=($!)
    wait_for 10 "tcpdump on $1 $2" test -s "$WORK/$3.pcap"
}
stop_captures() {
    sleep 0.5
    local p
    for p in "${CAPTURES[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${CAPTURES[@]}"; do wait "$p" 2>/dev/null || true; done
    CAPTURES=()
}

# bound_count : bindings listed by status (lines starting with an address of the prefix)
bound_count() { status | awk '$1 ~ /^2001:db8:1::/ {n++} END {print n + 0}'; }

# phase MODE : MODE "kernel" (default config) or "userspace" (relay_in_kernel: false)
phase() {
    local mode="$1"
    CAPTURES=()
    if [ "$mode" = kernel ]; then
        EXTRA='' write_config "$WORK/relay.ron" eth0 br0
    else
        EXTRA='relay_in_kernel: false,' write_config "$WORK/relay.ron" eth0 br0
    fi
    start_relay dom0 "$WORK/relay.ron"
    wait_for 30 "br0 proxying" proxying br0
    # isp resolves g1 afresh: the stopped relay took its routes with it.
    nsx isp ip -6 neigh flush dev isp0
    wait_for 20 "$mode: isp reaches g1 ($G1)" nsx isp ping -6 -c 1 -W 1 "$G1"
    wait_for 10 "$mode: g1 binding with route" binding_routed "$G1" br0
    # isp resolves g1 a few times: in kernel mode the program now holds g1's NS path.
    resolves_to_dom0 3 "$mode: before the tagged frames"
    if [ "$mode" = kernel ]; then
        [ "$(counter relayed_ns_by_kernel)" -gt 0 ] || fail "kernel: the program relayed no NS (is it loaded? CAP_BPF?)"
    fi

    local vlan0 bound0 pbit0 kns0 kna0
    vlan0="$(counter drop_vlan_tagged)"
    bound0="$(bound_count)"
    pbit0="$(counter drop_ra_p_bit)"
    kns0="$(counter relayed_ns_by_kernel)"
    kna0="$(counter relayed_na_by_kernel)"

    log "$mode: tagged NS/NA/RA from isp onto eth0 and from g2 onto br0"
    capture isp isp0 "isp-$mode"
    capture g1 eth0 "g1-$mode"
    # From the uplink: an NS for bound g1 from a source nobody else uses (VLAN 100 and
    # 802.1ad QinQ), an NA claiming a new address, an RA with the P bit.
    send_nd isp isp0 ns 100 fe80::1234 "$G1" 2
    send_nd isp isp0 ns ad fe80::1234 "$G1" 1
    send_nd isp isp0 na 100 2001:db8:1::bad4 2001:db8:1::bad4 1
    send_nd isp isp0 ra 100 fe80::1234 :: 1
    # From a guest: an NS for an unknown target from a spoofed in-prefix source, an
    # unsolicited NA, an RA; one priority-tagged (VLAN 0).
    send_nd g2 eth0 ns 7 2001:db8:1::bad2 2001:db8:1::bad1 2
    send_nd g2 eth0 ns 0 2001:db8:1::bad2 2001:db8:1::bad1 1
    send_nd g2 eth0 na 7 2001:db8:1::bad3 2001:db8:1::bad3 1
    send_nd g2 eth0 ra 7 fe80::bad5 :: 1
    # The QinQ frame's inner tag stays in the frame data (the kernel takes out the outer
    # one only): it is not IPv6 to the capture filter, which never takes it.
    local sent=9
    sleep 1.5
    stop_captures
    local counted=$(($(counter drop_vlan_tagged) - vlan0))
    log "$mode: drop_vlan_tagged +$counted for $sent tagged frames"
    [ "$(counter drop_ra_p_bit)" -eq "$pbit0" ] || fail "$mode: the tagged P-bit RA reached the RA rules"
    [ "$(counter relayed_ns_by_kernel)" -eq "$kns0" ] || fail "$mode: the kernel relayed a tagged NS"
    [ "$(counter relayed_na_by_kernel)" -eq "$kna0" ] || fail "$mode: the kernel relayed an NA to a tagged NS"
    [ "$(bound_count)" -eq "$bound0" ] || fail "$mode: bindings $bound0 -> $(bound_count) after tagged frames"
    for a in 2001:db8:1::bad1 2001:db8:1::bad2 2001:db8:1::bad3 2001:db8:1::bad4; do
        no_binding "$a" || fail "$mode: tagged frames bound $a"
        ! owns_route dom0 "$a" || fail "$mode: tagged frames installed a route for $a"
    done
    proxying br0 || fail "$mode: br0 stopped proxying after the tagged P-bit RAs"
    # Nothing relayed: g1 never gets isp's tagged NS (by its source), isp never sees
    # the guest's NS, NA or RA, nor an answer for the NS it tagged.
    local leaked
    leaked="$(nd_seen "$WORK/g1-$mode.pcap" 'ipv6.src == fe80::1234')"
    [ "$leaked" -eq 0 ] || fail "$mode: g1 got $leaked copies of isp's tagged NS"
    leaked="$(nd_seen "$WORK/isp-$mode.pcap" 'ipv6.src == 2001:db8:1::bad2 || icmpv6.nd.na.target_address == 2001:db8:1::bad3 || ipv6.src == fe80::bad5')"
    [ "$leaked" -eq 0 ] || fail "$mode: isp got $leaked relayed copies of g2's tagged frames"
    leaked="$(nd_seen "$WORK/isp-$mode.pcap" "ipv6.dst == fe80::1234")"
    [ "$leaked" -eq 0 ] || fail "$mode: isp's tagged NS was answered ($leaked frames to fe80::1234)"
    [ "$counted" -eq "$sent" ] || fail "$mode: drop_vlan_tagged grew by $counted, $sent frames were sent"

    log "$mode: the same frames untagged still work"
    capture isp isp0 "isp-plain-$mode"
    capture g1 eth0 "g1-plain-$mode"
    send_nd isp isp0 ns none fe80::1235 "$G1" 1
    send_nd g2 eth0 ns none "$G2" 2001:db8:1::bad1 1
    sleep 1
    stop_captures
    [ "$(nd_seen "$WORK/g1-plain-$mode.pcap" 'ipv6.src == fe80::1235 && icmpv6.type == 135')" -ge 1 ] ||
        fail "$mode: isp's untagged NS for g1 was not relayed to g1"
    [ "$(nd_seen "$WORK/isp-plain-$mode.pcap" "ipv6.src == $G2 && icmpv6.nd.ns.target_address == 2001:db8:1::bad1")" -ge 1 ] ||
        fail "$mode: g2's untagged NS was not relayed to the uplink"
    [ "$(counter drop_vlan_tagged)" -eq "$((vlan0 + sent))" ] || fail "$mode: an untagged frame counted as tagged"
    resolves_to_dom0 3 "$mode: after the tagged frames"
    stop_relay
}

dom0_topology
EXTRA='' write_config "$WORK/relay.ron" eth0 br0
start_relay dom0 "$WORK/relay.ron"
log "g1 and g2 configure"
wait_for 30 "g1 global address" has_global g1 eth0
wait_for 30 "g2 global address" has_global g2 eth0
G1="$(global_addr g1 eth0)"
G2="$(global_addr g2 eth0)"
DOM0_MAC="$(nsx dom0 cat /sys/class/net/eth0/address)"
stop_relay

phase kernel
phase userspace
log "PASS"
