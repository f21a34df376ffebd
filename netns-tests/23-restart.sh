#!/usr/bin/env bash
# restart with state_file: while isp pings g1 five times a second, the relay is stopped
# with SIGTERM and started again, then killed with SIGKILL and started again; each time
# at most two of the 50 echoes are lost (routes kept, bindings restored, br0 proxying
# at once). A guest whose address went away while the relay was down (killed) loses its
# route after re-verification; `status` shows restored bindings as such until then. A
# corrupt state file is reported in the log and ignored, and the relay works.
source "$(dirname "$0")/lib.sh"

MAX_LOST=2
STATE="$WORK/state"

dom0_topology
EXTRA="state_file: \"$STATE\"," write_config "$WORK/relay.ron" eth0 br0
start_relay dom0 "$WORK/relay.ron"
wait_for 30 "g1 global address" has_global g1 eth0
wait_for 30 "g2 global address" has_global g2 eth0
wait_for 30 "br0 proxying" proxying br0
G1="$(global_addr g1 eth0)"
G2="$(global_addr g2 eth0)"
reach() { nsx isp ping -6 -c 1 -W 1 "$1" >/dev/null; }
wait_for 15 "isp reaches g1" reach "$G1"
wait_for 15 "isp reaches g2" reach "$G2"
wait_for 10 "g1 routed on br0" binding_routed "$G1" br0
wait_for 10 "g2 routed on br0" binding_routed "$G2" br0

# saved ADDR : the state file lists ADDR
saved() { [ -f "$STATE" ] && grep -q "\"address\": \"$1\"" "$STATE"; }
wait_for 5 "g1 and g2 saved in the state file" sh -c "grep -q '\"$G1\"' '$STATE' && grep -q '\"$G2\"' '$STATE'"
mode="$(stat -c %a "$STATE")"
[ "$mode" = 600 ] || fail "state file mode $mode, want 600"

# ping_during WHAT CMD... : isp pings g1 50 times, 5 per second; CMD runs 2 s in; sets
# LOST to the echoes lost
ping_during() {
    local what="$1"
    shift
    nsx isp ping -6 -i 0.2 -c 50 -W 1 "$G1" >"$WORK/ping.out" 2>&1 &
    local ping_pid=$!
    PIDS+=("$ping_pid")
    sleep 2
    "$@"
    wait "$ping_pid" || true
    local received
    received="$(awk '/packets transmitted/ {print $4}' "$WORK/ping.out")"
    [ -n "$received" ] || fail "$what: no ping summary: $(cat "$WORK/ping.out")"
    LOST=$((50 - received))
    log "$what: $LOST of 50 echoes lost"
}

restart_term() {
    local t0=$SECONDS
    stop_relay
    owns_route dom0 "^$G1 dev br0" || fail "SIGTERM with state_file removed g1's route"
    start_relay dom0 "$WORK/relay.ron"
    log "SIGTERM to status answering again: $((SECONDS - t0)) s"
}

restart_kill() {
    kill -KILL "$RELAY_PID"
    wait "$RELAY_PID" 2>/dev/null || true
    RELAY_PID=""
    rm -f "$WORK/ctl.sock"
    start_relay dom0 "$WORK/relay.ron"
}

log "SIGTERM and start during a continuous ping"
ping_during "SIGTERM + start" restart_term
[ "$LOST" -le "$MAX_LOST" ] || fail "SIGTERM + start lost $LOST echoes (at most $MAX_LOST allowed)"
grep -q "routes kept for the next start" "$WORK/relay.log" || fail "the stop did not say the routes were kept"
grep -q "restored 2 bindings from $STATE" "$WORK/relay.log" ||
    fail "the start did not say it restored 2 bindings: $(grep -i 'state\|restored' "$WORK/relay.log" | tail -5)"
grep -q "proxying resumed at once on br0" "$WORK/relay.log" || fail "br0 did not resume proxying at once"
log "relay said: $(grep -m1 -o 'restored 2 bindings.*' "$WORK/relay.log")"
wait_for 15 "g1 re-verified" sh -c "! ip netns exec $(ns dom0) $NDPRELAY status --control-socket $WORK/ctl.sock | grep -q '^$G1 .*restored'"
binding_routed "$G1" br0 || fail "g1 lost its route after re-verification"

log "SIGKILL and start during a continuous ping"
wait_for 5 "state file rewritten with g1" saved "$G1"
ping_during "SIGKILL + start" restart_kill
[ "$LOST" -le "$MAX_LOST" ] || fail "SIGKILL + start lost $LOST echoes (at most $MAX_LOST allowed)"
wait_for 15 "g1 re-verified after SIGKILL" sh -c "! ip netns exec $(ns dom0) $NDPRELAY status --control-socket $WORK/ctl.sock | grep -q '^$G1 .*restored'"

log "g2's address goes away while the relay is down (SIGKILL): its route goes after re-verification"
wait_for 5 "state file lists g2" saved "$G2"
kill -KILL "$RELAY_PID"
wait "$RELAY_PID" 2>/dev/null || true
RELAY_PID=""
rm -f "$WORK/ctl.sock"
owns_route dom0 "^$G2 dev br0" || fail "g2's route did not outlive the killed relay"
# Gone for good: without autoconf, the next relayed RA (the relay asks for one at once)
# does not give g2 the same SLAAC address back.
nsx g2 sysctl -qw net.ipv6.conf.eth0.autoconf=0
nsx g2 ip -6 addr del "$G2/64" dev eth0
start_relay dom0 "$WORK/relay.ron"
# Right after the start, before its probes are answered or fail, g2 is shown restored.
row="$(status | awk -v a="$G2" '$1 == a')"
grep -q "restored" <<<"$row" || fail "status does not show g2 as restored right after the start: '$row'"
status --json | python3 -c "
import json, sys
doc = json.load(sys.stdin)
b = [b for b in doc['bindings'] if b['address'] == '$G2']
assert b and b[0]['restored'] is True, b
" || fail "status --json does not carry restored: true for g2"
wait_for 10 "g2's route removed after re-verification" sh -c "! ip -n $(ns dom0) -6 route show proto 199 | grep -q '^$G2 '"
no_binding "$G2" || fail "g2 still bound after failing re-verification"
[ "$(counter bindings_restore_failed)" -ge 1 ] || fail "bindings_restore_failed not counted"
binding_routed "$G1" br0 || fail "g1 lost its route"
reach "$G1" || fail "isp cannot reach g1"

log "a corrupt state file is reported and ignored"
stop_relay
head -c 100 "$STATE" >"$STATE.cut" && mv "$STATE.cut" "$STATE"
start_relay dom0 "$WORK/relay.ron"
grep -q "state file $STATE ignored: it is not a readable ndprelay state file" "$WORK/relay.log" ||
    fail "the corrupt state file was not reported: $(grep -i 'state file' "$WORK/relay.log" | tail -3)"
wait_for 30 "isp reaches g1 after the corrupt state file" reach "$G1"
wait_for 20 "g1 routed again" binding_routed "$G1" br0
wait_for 5 "the state file rewritten" saved "$G1"
stop_relay
log "PASS"
