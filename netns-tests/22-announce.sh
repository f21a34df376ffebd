#!/usr/bin/env bash
# announce (issue 16): a router that learns neighbours from unsolicited NAs (Linux with
# net.ipv6.conf.IF.accept_untracked_na=1, RFC 9131; some clouds) gets a guest's entry,
# with dom0's uplink MAC, without ever soliciting it.
#
#   isp (radvd, accept_untracked_na=1) --- eth0 [dom0: ndprelay] br0 --- g1
#                                                                br1 --- g2
#
# g2 pings g1 only (no traffic toward isp): its NS for g1 is relayed to br0, g1's answer
# confirms g1's binding. With `announce: false` isp learns nothing about g1; after a
# restart with the default (announce on) the first confirmation of g1 in the new run
# announces it, and isp's neighbour table shows g1 at dom0's MAC. tcpdump on isp0 shows
# that isp never sent an NS for g1.
source "$(dirname "$0")/lib.sh"

mkns isp
mkns dom0
mkns g1
mkns g2
KNOB=/proc/sys/net/ipv6/conf/all/accept_untracked_na
if ! nsx isp test -e "$KNOB"; then
    msg="this kernel ($(uname -r)) has no net.ipv6.conf.*.accept_untracked_na (Linux 5.18+): no Linux router here learns from unsolicited NAs"
    [ "${CI:-}" = true ] && fail "$msg (CI=true: not skipping)"
    log "SKIP: $msg"
    exit 0
fi
veth isp isp0 dom0 eth0
nsx isp ip -6 addr add 2001:db8:1::1/64 dev isp0 nodad
nsx isp sysctl -qw net.ipv6.conf.isp0.accept_untracked_na=1
for b in br0 br1; do
    nsx dom0 ip link add "$b" type bridge
    nsx dom0 sysctl -qw "net.ipv6.conf.$b.accept_ra=0"
    nsx dom0 ip link set "$b" up
done
veth g1 eth0 dom0 vg1
veth g2 eth0 dom0 vg2
nsx dom0 ip link set vg1 master br0
nsx dom0 ip link set vg2 master br1
nsx dom0 sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv6.conf.eth0.accept_ra=2
start_radvd isp isp0 2001:db8:1::/64
DOM0_MAC="$(nsx dom0 cat /sys/class/net/eth0/address)"
ISP_MAC="$(nsx isp cat /sys/class/net/isp0/address)"

nsx isp tcpdump -i isp0 -n -U -w "$WORK/isp0.pcap" icmp6 >"$WORK/tcpdump.log" 2>&1 &
PIDS+=($!)
TCPDUMP=$!

# isp_entry ADDR : isp's neighbour entry for ADDR on isp0 (empty if none)
isp_entry() { nsx isp ip -6 neigh show "$1" dev isp0; }
isp_knows_via_dom0() { [[ "$(isp_entry "$1")" == *"lladdr $DOM0_MAC"* ]]; }
# g1_confirmed : g2 sends traffic to g1 (nothing toward isp); g1's binding is routed
g1_confirmed() {
    nsx g2 ping -6 -c 1 -W 1 "$G1" >/dev/null 2>&1 || true
    binding_routed "$G1" br0
}

log "announce: false: the guest is bound, isp learns nothing about it"
EXTRA='announce: false,' write_config "$WORK/relay.ron" eth0 br0 br1
start_relay dom0 "$WORK/relay.ron"
wait_for 30 "br0 proxying" proxying br0
wait_for 30 "br1 proxying" proxying br1
wait_for 30 "g1 global address" has_global g1 eth0
wait_for 30 "g2 global address" has_global g2 eth0
G1="$(global_addr g1 eth0)"
wait_for 20 "g1 bound on br0 after g2's traffic" g1_confirmed
sleep 1
[ -z "$(isp_entry "$G1")" ] || fail "isp has an entry for $G1 without announcements: $(isp_entry "$G1")"
[ "$(counter announced_na)" = 0 ] || fail "announced_na is $(counter announced_na) with announce: false"
stop_relay

log "restart with announce on (the default): g1's first confirmation announces it"
nsx g2 ip -6 neigh flush dev eth0 # g2 asks for g1 again, so the new run binds it
write_config "$WORK/relay.ron" eth0 br0 br1
start_relay dom0 "$WORK/relay.ron"
wait_for 30 "br0 proxying" proxying br0
wait_for 30 "br1 proxying" proxying br1
wait_for 20 "g1 bound on br0 after g2's traffic" g1_confirmed
wait_for 5 "isp's entry for $G1 at dom0's MAC $DOM0_MAC" isp_knows_via_dom0 "$G1"
log "isp: $(isp_entry "$G1")"
[ "$(counter announced_na)" -ge 1 ] || fail "announced_na is $(counter announced_na)"
stop_relay

sleep 0.5 # tcpdump writes each packet (-U); let the last ones land
# TERM, not INT: a background job of a non-interactive shell ignores SIGINT.
kill -TERM "$TCPDUMP" 2>/dev/null || true
wait "$TCPDUMP" 2>/dev/null || true
# frames FILTER : tcpdump's one-line listing of the capture's frames matching FILTER
frames() { tcpdump -r "$WORK/isp0.pcap" -n -v "$@" 2>/dev/null || true; }
asked="$(frames "ether src $ISP_MAC and icmp6 and ip6[40] == 135" | grep -c "who has $G1" || true)"
[ "$asked" = 0 ] || fail "isp sent $asked NS for $G1: the entry must come from the announcement"
told="$(frames "ether src $DOM0_MAC and ip6 dst ff02::1 and icmp6 and ip6[40] == 136" | grep -c "tgt is $G1" || true)"
[ "$told" -ge 1 ] || fail "no NA to ff02::1 for $G1 from dom0 in isp's capture"
log "isp saw $told announcement(s) of $G1 and sent no NS for it"
log "PASS"
