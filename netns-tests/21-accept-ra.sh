#!/usr/bin/env bash
# accept_ra on the uplink (issue 16): with forwarding on, accept_ra=1 makes the host ignore
# the uplink's RAs. That breaks the host only when it lives on them now, so:
# A. a statically configured uplink (address and default route by hand, no RA-learned
#    route or address) with accept_ra=1 and forwarding=1: the relay starts and logs a
#    warning with the fix; `ndprelay check` says the same;
# B. an uplink whose default route came from radvd's RAs (`proto ra`, learned with
#    accept_ra=2, then set back to 1): the relay refuses to start, naming the fix;
#    `ndprelay check` says it would refuse;
# C. the same host with `fix_sysctls: true`: the relay sets accept_ra=2 and starts.
source "$(dirname "$0")/lib.sh"

FIX='sysctl -w net.ipv6.conf.eth0.accept_ra=2'

mkns isp
mkns dom0
mkns g1
veth isp isp0 dom0 eth0
nsx isp ip -6 addr add 2001:db8:1::1/64 dev isp0 nodad
nsx dom0 ip link add br0 type bridge
nsx dom0 sysctl -qw net.ipv6.conf.br0.accept_ra=0
nsx dom0 ip link set br0 up
veth g1 eth0 dom0 vg1
nsx dom0 ip link set vg1 master br0

log "A: static uplink, accept_ra=1, forwarding=1: the relay starts with a warning"
nsx dom0 sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv6.conf.eth0.accept_ra=1
nsx dom0 ip -6 addr add 2001:db8:1::2/64 dev eth0 nodad
nsx dom0 ip -6 route add default via 2001:db8:1::1 dev eth0
[ -z "$(nsx dom0 ip -6 route show proto ra)" ] || fail "case A has RA routes: $(nsx dom0 ip -6 route show proto ra)"
write_config "$WORK/relay.ron" eth0 br0
nsx dom0 "$NDPRELAY" check -c "$WORK/relay.ron" >"$WORK/check-a.txt" || fail "check failed: $(cat "$WORK/check-a.txt")"
grep -q "warning" "$WORK/check-a.txt" && grep -qF "fix: $FIX" "$WORK/check-a.txt" ||
    fail "check does not warn with the fix: $(cat "$WORK/check-a.txt")"
grep -q "would refuse" "$WORK/check-a.txt" && fail "check says run would refuse: $(cat "$WORK/check-a.txt")"
start_relay dom0 "$WORK/relay.ron"
grep "net.ipv6.conf.eth0.accept_ra is 1, recommended 2" "$WORK/relay.log" | grep WARN | grep -qF "fix: $FIX" ||
    fail "no WARN line with the fix in the relay's log"
[ "$(nsx dom0 sysctl -n net.ipv6.conf.eth0.accept_ra)" = 1 ] || fail "accept_ra changed without fix_sysctls"
grep "accept_ra" "$WORK/relay.log" | sed 's/^/    /'
stop_relay
nsx dom0 ip -6 route del default via 2001:db8:1::1 dev eth0
nsx dom0 ip -6 addr del 2001:db8:1::2/64 dev eth0

log "B: the uplink's default route comes from radvd: the relay refuses with the fix"
# A default-route lifetime far beyond the test, so the learned route cannot run out
# while accept_ra=1 ignores the RAs that would refresh it.
cat >"$WORK/radvd.conf" <<EOF
interface isp0 {
    AdvSendAdvert on;
    MinRtrAdvInterval 3;
    MaxRtrAdvInterval 4;
    AdvDefaultLifetime 1800;
    prefix 2001:db8:1::/64 {
        AdvOnLink on;
        AdvAutonomous on;
    };
};
EOF
nsx isp sysctl -qw net.ipv6.conf.all.forwarding=1
nsx dom0 sysctl -qw net.ipv6.conf.eth0.accept_ra=2
ip netns exec "$(ns isp)" radvd -n -C "$WORK/radvd.conf" -p "$WORK/radvd.pid" -m stderr >"$WORK/radvd.log" 2>&1 &
PIDS+=($!)
ra_default() { [[ "$(nsx dom0 ip -6 route show proto ra default dev eth0)" == default* ]]; }
wait_for 20 "dom0's RA default route on eth0" ra_default
nsx dom0 ip -6 route show proto ra | sed 's/^/    /'
nsx dom0 sysctl -qw net.ipv6.conf.eth0.accept_ra=1
nsx dom0 "$NDPRELAY" check -c "$WORK/relay.ron" >"$WORK/check-b.txt" || fail "check failed: $(cat "$WORK/check-b.txt")"
grep -q "would refuse to start" "$WORK/check-b.txt" && grep -qF "fix: $FIX" "$WORK/check-b.txt" ||
    fail "check does not say run would refuse with the fix: $(cat "$WORK/check-b.txt")"
rc=0
nsx dom0 timeout 10 "$NDPRELAY" run -c "$WORK/relay.ron" >"$WORK/refused.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "relay did not refuse (exit $rc): $(cat "$WORK/refused.log")"
grep -q "net.ipv6.conf.eth0.accept_ra is 1, ndprelay needs 2" "$WORK/refused.log" &&
    grep -qF "fix: $FIX" "$WORK/refused.log" ||
    fail "refusal does not name the fix: $(cat "$WORK/refused.log")"
[ -S "$WORK/ctl.sock" ] && fail "control socket left behind"
ra_default || fail "the RA default route is gone"
sed 's/^/    /' "$WORK/refused.log"

log "C: fix_sysctls sets accept_ra=2 on that uplink and starts"
EXTRA='fix_sysctls: true,' write_config "$WORK/fix.ron" eth0 br0
start_relay dom0 "$WORK/fix.ron"
[ "$(nsx dom0 sysctl -n net.ipv6.conf.eth0.accept_ra)" = 2 ] || fail "fix_sysctls did not set accept_ra=2"
grep "fix_sysctls: set net.ipv6.conf.eth0.accept_ra=2" "$WORK/relay.log" | grep -q WARN ||
    fail "the accept_ra fix was not logged at WARN"
stop_relay
log "PASS"
