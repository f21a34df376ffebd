#!/usr/bin/env bash
# instance: the relay run with the template unit's flags (ndprelay@NAME.service:
# --control-socket /run/ndprelay/NAME.sock, --state-file) answers `ndprelay status -n
# NAME`, which finds its socket by name alone; a wrong name fails and names the socket.
source "$(dirname "$0")/lib.sh"

NAME="ndpr-test-$TAG-$$"
SOCK="/run/ndprelay/$NAME.sock"
MADE_DIR=""
[ -d /run/ndprelay ] || { mkdir -m 0755 /run/ndprelay; MADE_DIR=1; }
# The shared RuntimeDirectory is removed only if this test made it (and nothing else
# is in it); then lib.sh's cleanup (with this script's exit status).
trap 'rc=$?; rm -f "$SOCK"; [ -n "$MADE_DIR" ] && rmdir /run/ndprelay 2>/dev/null; (exit $rc); cleanup' EXIT

named_status() { nsx dom0 "$NDPRELAY" status -n "$NAME" "$@"; }

dom0_topology
write_config "$WORK/relay.ron" eth0 br0
# As ExecStart= of packaging/ndprelay@.service, with the test's paths for config and state.
ip netns exec "$(ns dom0)" env RUST_LOG=info "$NDPRELAY" run -c "$WORK/relay.ron" \
    --control-socket "$SOCK" --state-file "$WORK/state" >>"$WORK/relay.log" 2>&1 &
RELAY_PID=$!
wait_for 10 "status -n $NAME answers" named_status
[ -S "$SOCK" ] || fail "no socket at $SOCK"
[ ! -e "$WORK/ctl.sock" ] || fail "the config's control_socket was used despite --control-socket"

wait_for 30 "g1 global address" has_global g1 eth0
G1="$(global_addr g1 eth0)"
wait_for 15 "isp reaches g1" nsx isp ping -6 -c 1 -W 1 "$G1"
wait_for 10 "g1 bound, seen through status -n" \
    bash -c 'ip netns exec "$1" "$2" status -n "$3" --json | jq -e --arg a "$4" ".bindings[] | select(.address == \$a)" >/dev/null' \
    _ "$(ns dom0)" "$NDPRELAY" "$NAME" "$G1"
named_status | grep -q br0 || fail "status -n does not list br0"
v="$(nsx dom0 "$NDPRELAY" explain -n "$NAME" "$G1" --json | jq -r '.verdict')"
[ "$v" = healthy ] || fail "explain -n $NAME $G1: verdict '$v', expected healthy"

log "a wrong name fails and names the socket it tried"
if out=$(nsx dom0 "$NDPRELAY" status -n "$NAME-other" 2>&1); then
    fail "status -n with a wrong name succeeded: $out"
fi
grep -q "/run/ndprelay/$NAME-other.sock" <<<"$out" || fail "the error does not name the socket: $out"
if out=$(nsx dom0 "$NDPRELAY" status -n ../etc 2>&1); then fail "status -n ../etc accepted"; fi
if out=$(nsx dom0 "$NDPRELAY" status --control-socket "$WORK/none.sock" 2>&1); then
    fail "status on a missing socket succeeded"
fi
grep -q "ndprelay status -n NAME" <<<"$out" && grep -q "$NAME" <<<"$out" ||
    fail "a failed status does not point at the running instance: $out"

stop_relay
[ ! -e "$SOCK" ] || fail "control socket left at $SOCK after SIGTERM"
log "PASS"
