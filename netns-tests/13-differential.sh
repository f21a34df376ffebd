#!/usr/bin/env bash
# differential: one corpus of valid and malformed ND frames (differential.py) through the
# Linux kernel and through ndprelay's wire validation, compared frame by frame.
#
# Kernel side: namespace `peer` sends each frame with a packet socket over a veth to
# namespace `host`, whose kernel is the implementation under test (h0 holds 2001:db8::1;
# its default route, for the Redirects, goes via the peer's link-local). The verdict is
# what the kernel visibly does: NA answered, neighbour entry made or updated, RA route
# installed, Redirect applied (differential.py says which for each message).
# ndprelay side: `ndprelay replay --json` of the same frames, NS/NA/RS on a downstream
# port and RA/Redirect on the uplink; the wire verdict is the parse result (accept, or
# the drop reason), the engine's decision is listed beside it.
# The test fails when any frame's pair of verdicts differs from differential_expected.txt:
# every disagreement there is explained in docs/differential-nd.md. DIFF_TABLE=FILE
# also writes the comparison table (markdown) to FILE.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3 # Debian's python, which has scapy (python3-scapy)
SCRIPT="$ROOT/netns-tests/differential.py"
EXPECTED="$ROOT/netns-tests/differential_expected.txt"

"$PY" -c 'import scapy.layers.inet6' 2>/dev/null ||
    fail "scapy is missing for $PY: apt-get install python3-scapy"

log "corpus: $("$PY" "$SCRIPT" pcap "$WORK/corpus" && wc -l <"$WORK/corpus/index.txt") frames"

log "ndprelay: replay of the corpus"
cat >"$WORK/relay.ron" <<EOF
(
    uplink: "up",
    downstream: ["down"],
    prefixes: ["2001:db8::/64"],
    ra_relay: true,
    install_routes: true,
    control_socket: "$WORK/ctl.sock",
)
EOF
"$NDPRELAY" replay -c "$WORK/relay.ron" --json \
    --input down="$WORK/corpus/down.pcap" --input up="$WORK/corpus/up.pcap" \
    --mac up=02:00:00:00:99:01 --mac down=02:00:00:00:99:02 \
    >"$WORK/replay.jsonl" 2>"$WORK/replay.err" || fail "replay failed: $(cat "$WORK/replay.err")"

log "kernel: each frame over a veth into a namespace"
mkns host
mkns peer
ip link add "ndpr$$a" type veth peer name "ndpr$$b"
ip link set "ndpr$$a" netns "$(ns peer)"
ip link set "ndpr$$b" netns "$(ns host)"
nsx peer ip link set "ndpr$$a" name p0 address 02:00:00:00:00:0a
nsx host ip link set "ndpr$$b" name h0 address 02:00:00:00:01:01
# The peer must not learn anything from the host (it answers the host's NS only).
nsx peer sysctl -qw net.ipv6.conf.p0.accept_ra=0
nsx host sysctl -qw net.ipv6.conf.h0.router_solicitations=0
nsx peer ip link set p0 up
nsx host ip link set h0 up
nsx peer ip -6 addr add 2001:db8::a/64 dev p0 nodad
nsx host ip -6 addr add 2001:db8::1/64 dev h0 nodad
has_ll() { [ -n "$(nsx "$1" ip -6 -o addr show dev "$2" scope link -tentative)" ]; }
wait_for 10 "h0 link-local" has_ll host h0
wait_for 10 "p0 link-local" has_ll peer p0

started=$SECONDS
nsx peer "$PY" "$SCRIPT" kernel --host-ns "$(ns host)" --iface p0 >"$WORK/kernel.jsonl" ||
    fail "the kernel side failed"
log "kernel verdicts in $((SECONDS - started)) s"

log "compare with $(basename "$EXPECTED")"
table=()
[ -n "${DIFF_TABLE:-}" ] && table=(--table "$DIFF_TABLE")
"$PY" "$SCRIPT" compare "$WORK/kernel.jsonl" "$WORK/replay.jsonl" "$WORK/corpus/index.txt" "$EXPECTED" "${table[@]}" ||
    {
        echo "--- what $(basename "$EXPECTED") would be for this run ---" >&2
        "$PY" "$SCRIPT" expected "$WORK/kernel.jsonl" "$WORK/replay.jsonl" "$WORK/corpus/index.txt" >&2
        fail "a verdict differs from $(basename "$EXPECTED"): explain it in docs/differential-nd.md (or fix src/wire), then update the file"
    }
log "PASS"
