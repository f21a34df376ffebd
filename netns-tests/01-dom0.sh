#!/usr/bin/env bash
# dom0: isp (radvd, owns 2001:db8:1::1) -- eth0 [dom0: ndprelay] br0 -- g1, g2 (SLAAC).
# Guests configure from the relayed RA, isp and guests reach each other, status lists
# both bindings with routes, ndisc6 from isp resolves a guest to dom0's MAC, rdisc6 in a
# guest sees the P bit, the kernel never forwards relayed ND (nf_tables guard), and a
# SIGTERM leaves no route, guard or socket behind.
source "$(dirname "$0")/lib.sh"

dom0_topology
ip netns exec "$(ns isp)" tcpdump -i isp0 -nn -U -w "$WORK/isp.pcap" icmp6 2>/dev/null &
PIDS+=($!)
ip netns exec "$(ns dom0)" tcpdump -i br0 -nn -U -w "$WORK/br0.pcap" icmp6 2>/dev/null &
PIDS+=($!)
write_config "$WORK/relay.ron" eth0 br0
# A stand-in for systemd's notification socket.
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    with open(sys.argv[2], "a") as f:
        f.write(s.recv(4096).decode() + "\n")
' "$WORK/notify.sock" "$WORK/notify.txt" &
PIDS+=($!)
wait_for 5 "notify socket" test -S "$WORK/notify.sock"
RELAY_ENV="NOTIFY_SOCKET=$WORK/notify.sock" start_relay dom0 "$WORK/relay.ron"

log "readiness via sd_notify; only CAP_NET_RAW and CAP_NET_ADMIN left"
wait_for 5 "READY=1 on the notify socket" grep -q "READY=1" "$WORK/notify.txt"
for set in CapEff CapPrm CapBnd; do
    caps="$(awk -v s="$set:" '$1 == s {print $2}' "/proc/$RELAY_PID/status")"
    # bits 12 (CAP_NET_ADMIN) and 13 (CAP_NET_RAW)
    [ "$caps" = 0000000000003000 ] || fail "$set is $caps, expected only CAP_NET_ADMIN and CAP_NET_RAW (0000000000003000)"
done
every_task_caps "$CAPS_NET" # and no other thread holds more (capabilities are per thread)

# The in-kernel relay is on by default, in_kernel_attach not set: the relay picks the
# hook itself, tcx from Linux 6.6, a tc filter before (scripts/old-kernel.sh runs this
# on 6.1).
want=tc
kernel_has_tcx && want=tcx
log "in-kernel relay hooked with $want on $(uname -r)"
for p in eth0 br0; do
    got="$(status --json | jq -r --arg p "$p" '.ports[] | select(.name == $p) | .in_kernel_hook')"
    [ "$got" = "$want" ] || fail "$p: status says in_kernel_hook '$got', expected $want"
    grep -q "relay_in_kernel: attached to $p with $want" "$WORK/relay.log" ||
        fail "$p: no log line saying $want: $(grep -i attached "$WORK/relay.log")"
done

# libpcap prints this when the kernel refuses its filter and it filters in userspace.
if grep -q "Kernel filter failed" "$WORK/relay.log"; then
    fail "the capture filter runs in userspace: $(grep -m1 'Kernel filter failed' "$WORK/relay.log")"
fi

log "guests autoconfigure from the relayed RA"
wait_for 30 "g1 global address" has_global g1 eth0
wait_for 30 "g2 global address" has_global g2 eth0
wait_for 30 "br0 proxying" proxying br0
G1="$(global_addr g1 eth0)"
G2="$(global_addr g2 eth0)"
case "$G1" in 2001:db8:1:*) ;; *) fail "g1 address $G1 is not from the isp prefix" ;; esac
log "g1=$G1 g2=$G2"

log "isp reaches both guests and they reach isp"
nsx isp ping -6 -c 3 -i 0.3 -W 3 "$G1" >/dev/null || fail "isp cannot ping g1 ($G1)"
nsx isp ping -6 -c 3 -i 0.3 -W 3 "$G2" >/dev/null || fail "isp cannot ping g2 ($G2)"
nsx g1 ping -6 -c 3 -i 0.3 -W 3 2001:db8:1::1 >/dev/null || fail "g1 cannot ping isp"
nsx g2 ping -6 -c 3 -i 0.3 -W 3 2001:db8:1::1 >/dev/null || fail "g2 cannot ping isp"

log "status lists both bindings on br0 with routes"
wait_for 10 "g1 binding with route" binding_routed "$G1" br0
wait_for 10 "g2 binding with route" binding_routed "$G2" br0
grep -q "\"address\": \"$G1\"" <<<"$(status --json)" || fail "--json lacks $G1"
owns_route dom0 "^$G1 dev br0" || fail "no proto-199 route for $G1: $(own_routes dom0)"
owns_route dom0 "^$G2 dev br0" || fail "no proto-199 route for $G2: $(own_routes dom0)"

log "systemctl status would show the ports proxying and the confirmed bindings (STATUS=)"
wait_for 5 "STATUS= with both bindings" grep -q "^STATUS=proxying on 1 of 1 downstream port; 2 bindings confirmed" "$WORK/notify.txt"
grep -q "^STATUS=proxying on 0 of 1 downstream port" "$WORK/notify.txt" ||
    fail "no STATUS= line while br0 waited for its P-bit RAs: $(grep STATUS= "$WORK/notify.txt")"

log "ndisc6 from isp resolves g1 to dom0's uplink MAC"
DOM0_MAC="$(nsx dom0 cat /sys/class/net/eth0/address)"
GOT="$(nsx isp ndisc6 -1 -r 3 -w 1500 "$G1" isp0 | awk '/Target link-layer address/ {print tolower($NF)}')"
[ "$GOT" = "$DOM0_MAC" ] || fail "ndisc6 resolved $G1 to '$GOT', expected dom0's $DOM0_MAC"

log "rdisc6 in g1 sees the RA with the P bit"
nsx g1 rdisc6 -1 -r 3 -w 4000 eth0 >"$WORK/rdisc6.txt" 2>&1 || fail "rdisc6 got no RA: $(cat "$WORK/rdisc6.txt")"
grep -Eq 'Neighbor discovery proxy *: *Yes' "$WORK/rdisc6.txt" || fail "relayed RA lacks the P bit: $(cat "$WORK/rdisc6.txt")"

log "the kernel guard is active and no forwarded ND (hop limit < 255) reached a segment"
nsx dom0 nft list table netdev ndprelay >/dev/null || fail "nf_tables guard missing"
sleep 1
for p in "${PIDS[@]:1:2}"; do kill -INT "$p" 2>/dev/null || true; done
sleep 0.5
for f in isp br0; do
    bad="$(tcpdump -nn -r "$WORK/$f.pcap" 'ip6[7] != 255 and ip6[6] == 58 and ip6[40] >= 133 and ip6[40] <= 137' 2>/dev/null | wc -l)"
    [ "$bad" -eq 0 ] || fail "$bad ND packets with hop limit < 255 on $f (the kernel forwarded relayed ND)"
    redirects="$(tcpdump -nn -r "$WORK/$f.pcap" 'ip6[6] == 58 and ip6[40] == 137' 2>/dev/null | wc -l)"
    [ "$redirects" -eq 0 ] || fail "$redirects Redirects on $f"
done

log "SIGTERM removes routes, guard and control socket"
stop_relay
grep -q "STOPPING=1" "$WORK/notify.txt" || fail "no STOPPING=1 on the notify socket"
[ -z "$(own_routes dom0)" ] || fail "routes left behind: $(own_routes dom0)"
nsx dom0 nft list table netdev ndprelay >/dev/null 2>&1 && fail "guard table left behind"
[ ! -e "$WORK/ctl.sock" ] || fail "control socket left behind"
log "PASS"
