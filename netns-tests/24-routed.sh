#!/usr/bin/env bash
# routed downstream: a tun device (a VPN's end, held open by a small process that
# answers every ICMPv6 echo request it reads) is listed in `downstream`; the relay
# answers isp's NS for the addresses dom0's main table routes through it (a /128 per
# peer and a /112), from the route dump at start and from route changes after it; isp
# pings addresses behind the tunnel; an address without a route gets no answer; when a
# route is deleted the answers stop. WireGuard is covered the same way where the kernel
# has it.
#
#   isp (2001:db8:1::1/64) --- eth0 [dom0: ndprelay, 2001:db8:1::2/64] tun0 --- tunpeer.py
source "$(dirname "$0")/lib.sh"

need() {
    if ! "$@" >/dev/null 2>&1; then
        [ "${CI:-}" = true ] && fail "prerequisite missing (CI=true: not skipping): $*"
        log "SKIP: prerequisite missing: $*"
        exit 0
    fi
}
need command -v python3
need test -c /dev/net/tun
need command -v ndisc6

mkns isp
mkns dom0
veth isp isp0 dom0 eth0
nsx isp ip -6 addr add 2001:db8:1::1/64 dev isp0 nodad
# dom0 is a host of the /64 itself (as a provider's proxy VM is) and routes the rest.
nsx dom0 ip -6 addr add 2001:db8:1::2/64 dev eth0 nodad
nsx dom0 sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv6.conf.eth0.accept_ra=2

# The VPN: tun0 held open, every echo request read from it answered through it.
cat >"$WORK/tunpeer.py" <<'PY'
import fcntl, os, struct, sys
TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", sys.argv[1].encode(), IFF_TUN | IFF_NO_PI))
print("ready", flush=True)

def checksum(src, dst, icmp):
    data = src + dst + struct.pack("!I3xB", len(icmp), 58) + icmp
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

while True:
    pkt = os.read(fd, 65536)
    # IPv6, no extension header, ICMPv6 echo request.
    if len(pkt) < 48 or pkt[0] >> 4 != 6 or pkt[6] != 58 or pkt[40] != 128:
        continue
    src, dst = pkt[8:24], pkt[24:40]
    icmp = bytearray(pkt[40:])
    icmp[0], icmp[2], icmp[3] = 129, 0, 0
    icmp[2:4] = struct.pack("!H", checksum(dst, src, bytes(icmp)))
    os.write(fd, pkt[:8] + dst + src + bytes(icmp))
PY
# start_tunpeer : tun0 created and held open by the peer process (TUNPEER), up
start_tunpeer() {
    : >"$WORK/tunpeer.log"
    # Not through nsx: a function in the background is a subshell, and the PID kept
    # must be python's own (ip netns exec execs it) for the kill below to close the
    # tunnel.
    ip netns exec "$(ns dom0)" python3 "$WORK/tunpeer.py" tun0 >"$WORK/tunpeer.log" 2>&1 &
    TUNPEER=$!
    PIDS+=("$TUNPEER")
    wait_for 10 "tun0 created by the peer process" grep -q ready "$WORK/tunpeer.log"
    nsx dom0 ip link set tun0 up
    wait_for 10 "tun0 carrier" sh -c "ip -n $(ns dom0) link show tun0 | grep -q LOWER_UP"
}
start_tunpeer

DOM0_MAC="$(nsx dom0 cat /sys/class/net/eth0/address)"
# resolve ADDR : the MAC isp's ndisc6 gets for ADDR (empty when nobody answers; two
# tries, one second each)
resolve() {
    local out
    out="$(nsx isp ndisc6 -1 -r 2 -w 1000 "$1" isp0 2>/dev/null || true)"
    awk '/Target link-layer address/ {print tolower($NF)}' <<<"$out"
}
answered() { [ "$(resolve "$1")" = "$DOM0_MAC" ]; }
pings() {
    nsx isp ip -6 neigh flush dev isp0
    nsx isp ping -6 -c 2 -i 0.3 -W 2 "$1" >/dev/null 2>&1
}
# routed_listed PREFIX : status lists PREFIX on tun0, answered
routed_listed() { status | awk -v r="$1" '$1 == r && $2 == "tun0" && $3 == "yes" {f=1} END {exit !f}'; }
unlisted() { status | awk -v r="$1" '$1 == r {f=1} END {exit f}'; }

log "a route that exists before the start comes with the first dump"
nsx dom0 ip -6 route add 2001:db8:1::300/128 dev tun0
write_config "$WORK/relay.ron" eth0 tun0
checked="$(nsx dom0 "$NDPRELAY" check -c "$WORK/relay.ron")" || fail "check refused the config: $checked"
grep -q "tun0: *routed: answered from the main routing table" <<<"$checked" ||
    fail "check does not say how tun0 is served: $checked"
start_relay dom0 "$WORK/relay.ron"
grep -q "tun0: no link-layer address" "$WORK/relay.log" || fail "the log does not say tun0 is a routed port"
status | awk '$1 == "tun0" && $NF == "routed" {f=1} END {exit !f}' || fail "status does not show tun0 as routed"
wait_for 10 "2001:db8:1::300/128 listed" routed_listed 2001:db8:1::300/128
answered 2001:db8:1::300 || fail "isp's NS for 2001:db8:1::300 unanswered"
pings 2001:db8:1::300 || fail "isp cannot ping 2001:db8:1::300 through the tunnel"

log "nothing of the relay's on tun0: no packet socket, no route"
TUN_IX="$(nsx dom0 cat /sys/class/net/tun0/ifindex)"
ETH_IX="$(nsx dom0 cat /sys/class/net/eth0/ifindex)"
sockets="$(nsx dom0 cat /proc/net/packet)"
awk -v ix="$ETH_IX" 'NR > 1 && $5 == ix {f=1} END {exit !f}' <<<"$sockets" ||
    fail "no packet socket on eth0 (the check below would prove nothing): $sockets"
awk -v ix="$TUN_IX" 'NR > 1 && $5 == ix {f=1} END {exit f}' <<<"$sockets" ||
    fail "a packet socket is bound to tun0: $sockets"
[ -z "$(own_routes dom0)" ] || fail "the relay installed routes: $(own_routes dom0)"

log "a /128 added while running: answered, and isp pings the peer"
nsx dom0 ip -6 route add 2001:db8:1::100/128 dev tun0
wait_for 10 "2001:db8:1::100/128 listed" routed_listed 2001:db8:1::100/128
[ "$(resolve 2001:db8:1::100)" = "$DOM0_MAC" ] || fail "2001:db8:1::100 not resolved to dom0's $DOM0_MAC"
pings 2001:db8:1::100 || fail "isp cannot ping 2001:db8:1::100 through the tunnel"

log "a /112 through the tunnel covers its range"
nsx dom0 ip -6 route add 2001:db8:1::1:0/112 dev tun0
wait_for 10 "2001:db8:1::1:0/112 listed" routed_listed 2001:db8:1::1:0/112
for a in 2001:db8:1::1:42 2001:db8:1::1:ffff; do
    pings "$a" || fail "isp cannot ping $a (inside the /112) through the tunnel"
done

log "an address without a route gets no answer"
for a in 2001:db8:1::101 2001:db8:1::2:1; do
    got="$(resolve "$a")"
    [ -z "$got" ] || fail "$a has no route through tun0 but was answered ($got)"
done

log "route deleted: the answers stop"
before="$(counter answered_routed)"
nsx dom0 ip -6 route del 2001:db8:1::100/128 dev tun0
wait_for 10 "2001:db8:1::100/128 gone from status" unlisted 2001:db8:1::100/128
got="$(resolve 2001:db8:1::100)"
[ -z "$got" ] || fail "2001:db8:1::100's route is gone but it was answered ($got)"
pings 2001:db8:1::100 && fail "isp still pings 2001:db8:1::100 after its route was deleted"
nsx dom0 ip -6 route del 2001:db8:1::1:0/112 dev tun0
sleep 1
got="$(resolve 2001:db8:1::1:42)"
[ -z "$got" ] || fail "the /112 is gone but 2001:db8:1::1:42 was answered ($got)"
answered 2001:db8:1::300 || fail "the remaining route 2001:db8:1::300/128 is no longer answered"
after="$(counter answered_routed)"
[ "$after" -gt "$before" ] || fail "answered_routed did not count ($before -> $after)"

[ -z "$(own_routes dom0)" ] || fail "the relay installed routes: $(own_routes dom0)"
tx="$(nsx dom0 cat /sys/class/net/tun0/statistics/tx_packets)"
[ "$tx" -gt 0 ] || fail "tun0 sent nothing (the echo requests went elsewhere?)"

log "the tunnel's process ends: no carrier, no answers"
kill -KILL "$TUNPEER"
wait "$TUNPEER" 2>/dev/null || true
wait_for 10 "tun0 gone" sh -c "! ip -n $(ns dom0) link show tun0 >/dev/null 2>&1"
got="$(resolve 2001:db8:1::300)"
[ -z "$got" ] || fail "tun0 is gone but 2001:db8:1::300 was answered ($got)"

log "the tunnel comes back (new ifindex): only the routes it has now are served"
start_tunpeer
wait_for 10 "2001:db8:1::300/128 gone from status" unlisted 2001:db8:1::300/128
got="$(resolve 2001:db8:1::300)"
[ -z "$got" ] || fail "the route went with the old tun0 but 2001:db8:1::300 was answered ($got)"
nsx dom0 ip -6 route add 2001:db8:1::300/128 dev tun0
wait_for 10 "2001:db8:1::300/128 listed again" routed_listed 2001:db8:1::300/128
pings 2001:db8:1::300 || fail "isp cannot ping 2001:db8:1::300 through the new tun0"
stop_relay

if nsx dom0 ip link add wgtest type wireguard 2>"$WORK/wg.err"; then
    log "WireGuard: the same with a wireguard interface"
    nsx dom0 ip link set wgtest up
    nsx dom0 ip -6 route add 2001:db8:1::500/128 dev wgtest
    write_config "$WORK/relay.ron" eth0 wgtest
    start_relay dom0 "$WORK/relay.ron"
    wait_for 10 "the wireguard route answered" answered 2001:db8:1::500
    nsx dom0 ip -6 route del 2001:db8:1::500/128 dev wgtest
    sleep 1
    got="$(resolve 2001:db8:1::500)"
    [ -z "$got" ] || fail "the wireguard route is gone but 2001:db8:1::500 was answered ($got)"
    stop_relay
else
    log "covers tun only: this kernel has no wireguard link type ($(tr -d '\n' <"$WORK/wg.err"))"
fi
log "PASS"
