#!/usr/bin/env bash
# `ndprelay explain ADDR` against the running daemon, text and --json, on the dom0
# topology. Four situations:
#  1. a port waiting for an RA: radvd is stopped before the relay starts, so br0 waits
#     for a router's RA; explain says so, when the relay sends its own, and what to run;
#  2. a healthy guest: g1 bound on br0, confirmed, its /128 installed and in the kernel's
#     FIB, every port proxying, the relayed (or in-kernel relayed) NS and NA among the
#     last decisions, isp's NS the uplink's last one;
#  3. an unknown address (isp pings an address nobody holds) and one outside the prefix;
#  4. g1's route deleted behind the relay's back (`ip -6 route del ADDR/128 proto 199`):
#     explain says the FIB disagrees and names the command; the relay itself does not
#     watch its routes without a routed port (no RTM_DELROUTE subscription) and leaves
#     the route missing, as explain says; the command from explain's next step restores
#     it and isp reaches g1 again.
source "$(dirname "$0")/lib.sh"

for tool in jq ndisc6 rdisc6 radvd ping; do
    command -v "$tool" >/dev/null || fail "$tool is missing (run: scripts/test.sh deps)"
done

explain() { nsx dom0 "$NDPRELAY" explain --control-socket "$WORK/ctl.sock" "$@"; }
# jqx ADDR FILTER : explain ADDR --json satisfies the jq FILTER
jqx() {
    local doc
    doc="$(explain "$1" --json)" || fail "explain $1 --json failed"
    jq -e "$2" >/dev/null <<<"$doc" || fail "explain $1 --json: not ($2):
$doc"
}
# has ADDR TEXT : the text explanation of ADDR contains TEXT (fixed string)
has() {
    local t
    t="$(explain "$1")" || fail "explain $1 failed"
    grep -qF -- "$2" <<<"$t" || fail "explain $1 lacks '$2':
$t"
}

dom0_topology
# dom0_topology started radvd last: stop it, so the relay starts without any RA.
RADVD_PID="${PIDS[-1]}"
kill -TERM "$RADVD_PID"
gone() { ! kill -0 "$1" 2>/dev/null; }
wait_for 5 "radvd stopped" gone "$RADVD_PID"
write_config "$WORK/relay.ron" eth0 br0
start_relay dom0 "$WORK/relay.ron"

log "1. no RA yet: br0 waits for one, explain says so and what comes next"
A=2001:db8:1::99
explain "$A"
jqx "$A" '.verdict == "problem" and .version == 1'
jqx "$A" '[.ports[] | select(.name == "br0")][0] | (.proxying | not) and (.why_not | startswith("waiting for a router'"'"'s RA"))'
jqx "$A" '.next_step.command == "rdisc6 eth0" and (.next_step.action | test("no router RA came on eth0 yet: the relay sends its own P-bit RAs in [0-9.]+ s"))'
has "$A" "NOT proxying: waiting for a router's RA on the uplink"
has "$A" "run:        rdisc6 eth0"

log "2. radvd starts: g1 configures and is bound, routed and proxied"
start_radvd isp isp0 2001:db8:1::/64
wait_for 30 "g1 global address" has_global g1 eth0
G1="$(global_addr g1 eth0)"
wait_for 30 "br0 proxying" proxying br0
nsx isp ping -6 -c 3 -i 0.3 -W 3 "$G1" >/dev/null || fail "isp cannot ping g1 ($G1)"
wait_for 10 "g1 binding with route" binding_routed "$G1" br0
G1_MAC="$(nsx g1 cat /sys/class/net/eth0/address)"
# A fresh resolution from isp: its NS and g1's NA are the last decisions.
nsx isp ip -6 neigh flush dev isp0
[ -n "$(resolve "$G1")" ] || fail "ndisc6 from isp did not resolve g1"
ISP_LL="$(nsx isp ip -6 -o addr show dev isp0 scope link | awk '{split($4, a, "/"); print a[1]}')"
jqx "$G1" '.verdict == "healthy" and .next_step == null'
jqx "$G1" '.prefix.proxied and .prefix.prefix == "2001:db8:1::/64" and .prefix.mode == "relay"'
jqx "$G1" ".binding.port == \"br0\" and .binding.mac == \"$G1_MAC\" and .binding.confirmed_secs_ago != null"
jqx "$G1" '.binding.state | IN("REACHABLE", "STALE", "DELAY", "PROBE")'
jqx "$G1" '.route.installed and .route.port == "br0" and .route.fib.state == "agrees"'
jqx "$G1" '[.ports[] | .proxying] | all'
jqx "$G1" "[.decisions[].text] | any(test(\"^NS $G1 from eth0 relayed to br0|relayed the NS for $G1 from eth0 to br0\"))"
jqx "$G1" "[.decisions[].text] | any(test(\"^NA $G1 from br0 relayed to eth0|relayed the NA for $G1 from br0 to eth0\"))"
jqx "$G1" "[.decisions[].ago_secs] | all(. >= 0)"
jqx "$G1" ".uplink_ns.source | IN(\"$ISP_LL\", \"2001:db8:1::1\")"
has "$G1" "$G1 is bound on br0 ($G1_MAC"
has "$G1" "$G1/128 dev br0 proto 199 installed by the relay; the kernel's FIB agrees"
has "$G1" "port:       br0 (downstream) proxying"
has "$G1" "next step:  none needed"
explain "$G1"

log "3. an address nobody holds, and one outside the prefix"
U=2001:db8:1::dead
nsx isp ping -6 -c 1 -W 1 "$U" >/dev/null 2>&1 && fail "isp reached $U, which nobody holds"
jqx "$U" '.verdict == "unknown" and .binding == null and .route.fib.state == "no_route"'
jqx "$U" "[.decisions[].text] | any(. == \"NS $U from eth0 relayed to br0\")"
jqx "$U" ".uplink_ns != null and .next_step.command == \"ndisc6 $U eth0\""
has "$U" "$U is unknown: no guest on a downstream port has answered for it"
has "$U" "binding:    none"
O=2001:db8:2::1
jqx "$O" '.verdict == "not_proxied" and (.prefix.proxied | not)'
has "$O" "not in any proxied prefix"

log "4. g1's route removed behind the relay's back"
owns_route dom0 "$G1 dev br0" || fail "the relay's route for g1 is not there: $(own_routes dom0)"
nsx dom0 ip -6 route del "$G1/128" proto 199
jqx "$G1" '.verdict == "problem" and .route.installed and .route.fib.state == "missing"'
jqx "$G1" ".next_step.command == \"ip -6 route replace $G1/128 dev br0 proto 199\""
jqx "$G1" '.next_step.problem | contains("does not watch its routes")'
has "$G1" "the kernel's FIB DISAGREES: it has no such route"
explain "$G1"
has "$G1" "run:        ip -6 route replace $G1/128 dev br0 proto 199"
# What explain says the relay does: nothing; the route stays missing.
sleep 3
owns_route dom0 "$G1" && fail "the route came back by itself, but explain says the relay does not watch its routes"
binding_routed "$G1" br0 || fail "status no longer shows g1 routed"
nsx isp ping -6 -c 2 -i 0.3 -W 1 "$G1" >/dev/null 2>&1 &&
    fail "isp reached g1 without its route: the FIB disagreement explain reports has no effect?"
log "the command from the next step restores it"
cmd="$(explain "$G1" --json | jq -r .next_step.command)"
# shellcheck disable=SC2086 # the command is words, as an operator would paste it
nsx dom0 $cmd
jqx "$G1" '.verdict == "healthy" and .route.fib.state == "agrees"'
nsx isp ping -6 -c 3 -i 0.3 -W 3 "$G1" >/dev/null || fail "isp cannot ping g1 after the route was restored"

stop_relay
[ -z "$(own_routes dom0)" ] || fail "routes left after SIGTERM: $(own_routes dom0)"
log "PASS"
