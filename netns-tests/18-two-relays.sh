#!/usr/bin/env bash
# two relays (issue 14 item 1, loop prevention): two ndprelay daemons, r1 and r2, bridge
# the same uplink segment (isp with radvd) and the same guest segment (g1, SLAAC). Each
# sees the other's relayed P-bit RAs on the guest segment and quarantines the other's
# MAC there (instead of disabling the port), so nothing either relays comes back to it
# through the other: while isp and g1 ping each other and isp resolves g1 again every
# 3 s, the frames on both segments stay bounded (the second 15 s window carries no more
# than the first, plus slack) and both relays keep running and proxying. g1's
# reachability from isp is measured and reported, not asserted.
#
#   isp (radvd) --- up ---- eth0 [r1] down0 --- down --- g1
#                     \---- eth0 [r2] down0 ----/
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/hostile.sh"

switch up
switch down
mkns isp
mkns r1
mkns r2
mkns g1
plug up sisp isp isp0
plug down sg1 g1 eth0
for r in r1 r2; do
    plug up "s$r" "$r" eth0
    plug down "s$r" "$r" down0
    nsx "$r" sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv6.conf.eth0.accept_ra=2 net.ipv6.conf.down0.accept_ra=0
done
nsx isp ip -6 addr add 2001:db8:1::1/64 dev isp0 nodad
start_radvd isp isp0 2001:db8:1::/64

# r1 is the relay lib.sh knows (status, and its status on failure); r2 runs beside it.
RELAY_NS=r1
write_config "$WORK/relay.ron" eth0 down0
start_relay r1 "$WORK/relay.ron"
R1_PID=$RELAY_PID
sed "s|$WORK/ctl.sock|$WORK/ctl2.sock|" "$WORK/relay.ron" >"$WORK/relay2.ron"
ip netns exec "$(ns r2)" env RUST_LOG=info "$NDPRELAY" run -c "$WORK/relay2.ron" >>"$WORK/relay2.log" 2>&1 &
R2_PID=$!
PIDS+=($R2_PID)
r2_status() { nsx r2 "$NDPRELAY" status --control-socket "$WORK/ctl2.sock" "$@"; }
wait_for 10 "r2's control socket" r2_status
R1_DOWN="$(nsx r1 cat /sys/class/net/down0/address)"
R2_DOWN="$(nsx r2 cat /sys/class/net/down0/address)"

# relay_json N : status --json of relay rN
relay_json() { if [ "$1" = 1 ]; then status --json; else r2_status --json; fi; }
# quarantines N MAC : relay rN lists MAC as quarantined on down0
quarantines() {
    relay_json "$1" | jq -e --arg m "$2" \
        '[.ports[] | select(.name == "down0") | .quarantined // [] | .[] | .mac] | index($m) != null' >/dev/null
}

log "g1's reachability through two relays (reported)"
for _ in $(seq 200); do has_global g1 eth0 && break; sleep 0.2; done
G1="$(addr_of g1)"
if [ -n "$G1" ]; then
    ok=0
    for _ in 1 2 3 4 5; do
        if reach "$G1"; then ok=$((ok + 1)); fi
        sleep 0.5
    done
    log "measure: g1 has $G1; isp reached it $ok of 5 times (neighbour cache flushed each time); g1 -> isp: $(nsx g1 ping -6 -c 3 -i 0.3 -W 2 2001:db8:1::1 2>&1 | awk '/packets transmitted/')"
    log "measure: r1 bindings: $(status --json | jq -c '[.bindings[] | {address, state, route}]'), r2 bindings: $(r2_status --json | jq -c '[.bindings[] | {address, state, route}]')"
else
    log "measure: g1 has no global address after 40 s (no relayed RA reached it)"
fi

log "counting frames on both segments in two 15 s windows, with traffic through the relays"
ip netns exec "$(ns down)" tcpdump -n -i sg1 -U -w "$WORK/down.pcap" 2>/dev/null &
PIDS+=($!)
ip netns exec "$(ns up)" tcpdump -n -i sisp -U -w "$WORK/up.pcap" 2>/dev/null &
PIDS+=($!)
# Pings both ways, and isp's neighbour cache flushed every 3 s so that isp resolves g1
# through the relays again and again: each relay relays isp's NS onto the guest segment,
# where the other one must not relay it back.
if [ -n "$G1" ]; then
    ip netns exec "$(ns isp)" ping -6 -i 0.5 -W 1 "$G1" >/dev/null 2>&1 &
    PIDS+=($!)
    ip netns exec "$(ns g1)" ping -6 -i 0.5 -W 1 2001:db8:1::1 >/dev/null 2>&1 &
    PIDS+=($!)
    (while :; do
        nsx isp ip -6 neigh flush dev isp0 2>/dev/null || true
        sleep 3
    done) &
    PIDS+=($!)
fi
W=()
for w in 1 2; do
    u0="$(segment_frames up)" d0="$(segment_frames down)"
    c1="$(cpu_ms "$R1_PID")" c2="$(cpu_ms "$R2_PID")"
    sleep 15
    u=$(($(segment_frames up) - u0)) d=$(($(segment_frames down) - d0))
    W+=("$u" "$d")
    log "measure: window $w (15 s): $u frames on the uplink segment, $d on the guest segment; CPU r1 $(($(cpu_ms "$R1_PID") - c1)) ms, r2 $(($(cpu_ms "$R2_PID") - c2)) ms"
done
kill -0 "$R1_PID" 2>/dev/null || fail "r1 died"
kill -0 "$R2_PID" 2>/dev/null || fail "r2 died: $(tail -n 20 "$WORK/relay2.log")"
# A loop grows from one window to the next; without one, a window carries radvd's RAs
# (4-5 per 15 s) and their relayed copies (2 relays), 30 pings each way with replies,
# isp's 5 resolutions of g1 (each NS relayed by both relays) and the relays' own ND.
for i in 0 1; do
    seg=$([ "$i" = 0 ] && echo uplink || echo guest)
    first=${W[$i]} second=${W[$((i + 2))]}
    [ "$second" -le $((first * 3 / 2 + 20)) ] || fail "frames on the $seg segment grow: $first, then $second in 15 s"
    [ "$second" -le 450 ] || fail "$second frames on the $seg segment in 15 s (30/s): a loop"
done

log "per relay: ports and quarantine"
for n in 1 2; do
    log "r$n ports: $(relay_json $n | jq -c '[.ports[] | {name, proxying, loop_prevention, quarantined}]')"
    log "r$n counters: $(relay_json $n | jq -c '.counters | with_entries(select(.value > 0))')"
done
quarantines 1 "$R2_DOWN" || fail "r1 does not quarantine r2's MAC $R2_DOWN on down0"
quarantines 2 "$R1_DOWN" || fail "r2 does not quarantine r1's MAC $R1_DOWN on down0"
for n in 1 2; do
    bad="$(relay_json $n | jq -r '.ports[] | select(.proxying != true) | .name')"
    [ -z "$bad" ] || fail "r$n stopped proxying on: $bad"
done
log "frame mix on the guest segment (ICMPv6 types): $(tcpdump -n -r "$WORK/down.pcap" icmp6 2>/dev/null | awk '{for (i = 1; i <= NF; i++) if ($i == "ICMP6,") print $(i + 1), $(i + 2)}' | sort | uniq -c | tr -s ' \n' ' ')"
log "frame mix on the uplink segment (ICMPv6 types): $(tcpdump -n -r "$WORK/up.pcap" icmp6 2>/dev/null | awk '{for (i = 1; i <= NF; i++) if ($i == "ICMP6,") print $(i + 1), $(i + 2)}' | sort | uniq -c | tr -s ' \n' ' ')"
pass
