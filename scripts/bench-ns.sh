#!/usr/bin/env bash
# NS -> NA benchmark in the netns dom0 topology (netns-tests/lib.sh), side by side in one
# run: ndprelay, ndppd 0.2.5 (`static` and `iface` rules) and the kernel's proxy_ndp.
# Not a timed test: it prints a Markdown table (also saved to target/bench-ns.md) for
# BENCHMARKS.md. Needs root, the test peers (scripts/test.sh deps) and ndppd.
#
#   latency   NS -> NA, one at a time, 1 s timeout each: median, p99 at the kernel's
#             receive timestamp of the NA in isp ("wire", what the asking host's kernel
#             sees) and when ns_load's receiver thread has it ("app", its own wake-up
#             included). Two cases:
#             bound guest: the third guest g3 (one address, like most guests), asked
#               once unmeasured and then 100 times 20 ms apart: the relay has its binding
#               and route, ndppd its cache entry;
#             first resolution: 100 addresses of g1/g2 asked once each (each is new to
#               the relay and to ndppd: the answer comes from the guest).
#             For "ndprelay (fast path, default: in the kernel)" (fast_path: "5s") and
#             "ndprelay (fast path in userspace)" (the same with fast_path_in_kernel:
#             false) ns_load's latency-warm: one
#             unmeasured pass over the same 100 addresses first, so each guest has just
#             confirmed its binding with its own NA, then the measured pass right after;
#             the note under the table gives the oldest confirmation at measuring time,
#             which must stay under the 5 s window for the fast path to answer
#   rate      sustained rate: after one unmeasured pass over the 2000 guest addresses at
#             1000 NS/s, offered rates RATES (NS/s, round-robin over the 2000, 3 s each)
#             until one loses more than 5 % or cannot be sent; "sustained" is the
#             highest offered rate with at least 99 % of its NS sent and 99.9 % of those
#             answered (an NS counts as answered when an NA for its target arrives before
#             the next NS for that target). The sender shares the 2 vCPUs with every
#             namespace's kernel, and a veth delivers on the sender's CPU: work done in
#             the kernel (the in-kernel paths, the guests' answers) slows the sender
#             itself, so a rate it cannot send is not counted as sustained
#   scan      20k NS/s for random targets in the /64 for 10 s while 50 known guest
#             addresses (g1's, g2's and g3's own and 47 of the 2000; each resolved once,
#             unmeasured, just before) are probed round-robin, one every 10 ms: 1000 probes,
#             enough to tell 99.9 % answered from less; a probe counts as resolved when an
#             NA for its target arrives before the next probe for that target (500 ms);
#             latency at the wire and at app level, as above; the log line has the three
#             slowest probes at the wire as [seconds into the scan, ms]
#   status    `ndprelay status` during the scan, run outside the namespace (the control
#             socket is a path): slowest of 10 calls, process start included
#   RSS       peak resident set (VmHWM of /proc/PID/status) of the daemon after the scan
#
# "ndprelay (relay, default: in the kernel)" is relay mode as configured by default,
# run as root: the guest still answers every NS itself; an eBPF program on the ports
# relays the NS to it and its NA back to isp (relay_in_kernel not set). "ndprelay (relay
# in userspace)" is the same with relay_in_kernel: false, what the daemon does without
# CAP_BPF at start: the uplink's capture thread relays the NS itself under the engine's
# lock, and br0's capture thread relays the guest's answer.
#
# ONLY_RELAY=1 measures the four ndprelay rows only (quicker, for development); with
# WITH_IFACE=1 also ndppd's `iface` row, the userspace relay's yardstick.
# BEFORE=PATH adds the four ndprelay rows again with the ndprelay binary at PATH (for
# example the build before a change), tagged "(before)", in the same run.
#
# Every packet stays inside the ndpr-bench-* namespaces, which are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench-ns.sh: needs root" >&2; exit 1; }
for t in ndppd radvd ip; do command -v "$t" >/dev/null || { echo "bench-ns.sh: needs $t" >&2; exit 1; }; done
cargo build --locked --release --bin ndprelay --example ns_load >/dev/null
LOAD="$PWD/target/release/examples/ns_load"
TEST=bench
export NDPRELAY="$PWD/target/release/ndprelay"
source netns-tests/lib.sh

LAT_N="${LAT_N:-100}"
RATES="${RATES:-10000 20000 30000 40000 60000 80000 100000 120000}"
SCAN="${SCAN:-20000}"
G1=2001:db8:1::11
G2=2001:db8:1::12
G3=2001:db8:1::13
ROWS=()
NL=$'\n'
STATUS_NOTE=""
FAST_NOTE=""
KERNEL_NOTE=""

dom0_topology
# g3: a guest with one address, for the bound-guest latency (g1 and g2 carry 1000 extra
# addresses each, which slows their kernels' handling of every multicast NS).
mkns g3
veth g3 eth0 dom0 vg3
nsx dom0 ip link set vg3 master br0
nsx g3 ip -6 addr add "$G3/64" dev eth0 nodad
# Static guest addresses, so every contender sees the same guests from the first second:
# g1 and g2 with 1000 addresses each (a router resolving many hosts asks each once).
nsx g1 ip -6 addr add "$G1/64" dev eth0 nodad
nsx g2 ip -6 addr add "$G2/64" dev eth0 nodad
MANY=()
for i in $(seq 0 999); do
    printf -v a1 '2001:db8:1::1:%x' "$i"
    printf -v a2 '2001:db8:1::2:%x' "$i"
    echo "addr add $a1/128 dev eth0 nodad" >>"$WORK/g1.batch"
    echo "addr add $a2/128 dev eth0 nodad" >>"$WORK/g2.batch"
    MANY+=("$a1" "$a2")
done
nsx g1 ip -6 -batch "$WORK/g1.batch"
nsx g2 ip -6 -batch "$WORK/g2.batch"
# the scan's known guests: each guest's own address and 47 of the 2000
KNOWN=("$G1" "$G2" "$G3" "${MANY[@]:100:47}")
# g1 and g2 each hold 1001 addresses behind one MAC, beyond the relay's default share of
# 64 bindings per MAC (a guest must not fill the table for others): the bench raises the
# share so the relay can bind every address it is asked for, as an operator with such
# guests would.
LIMITS='limits: (max_bindings_per_mac: 1100),'
load() { nsx isp "$LOAD" isp0 2001:db8:1::1 "$@"; }
field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d[sys.argv[2]])' "$1" "$2"; }

# status_ms : slowest of 10 `ndprelay status` calls 0.5 s apart (process start included)
status_ms() {
    local max=0 t0 ms
    for _ in $(seq 10); do
        t0="$(date +%s%N)"
        "$NDPRELAY" status --control-socket "$WORK/ctl.sock" >/dev/null
        ms=$((($(date +%s%N) - t0) / 1000000))
        [ "$ms" -gt "$max" ] && max="$ms"
        sleep 0.5
    done
    echo "$max"
}

# vmhwm_mb PID : peak RSS in MB (VmHWM of /proc/PID/status)
vmhwm_mb() { awk '$1 == "VmHWM:" {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# sustained : the rate ramp; prints "SUSTAINED|ANSWERED/s at LAST OFFERED"
sustained() {
    local best=0 r out sent answered offered last=""
    load rate 1000 3 "${MANY[@]}" >/dev/null
    for r in $RATES; do
        out="$(load rate "$r" 3 "${MANY[@]}")"
        sent="$(field "$out" sent)"
        answered="$(field "$out" answered)"
        offered=$((r * 3))
        log "  $r NS/s offered: $sent of $offered sent, $answered answered, $(field "$out" na_frames) NAs received" >&2
        last="$(field "$out" answered_per_s) at $r"
        [ $((sent * 100)) -ge $((offered * 99)) ] && [ $((answered * 1000)) -ge $((sent * 999)) ] && best="$r"
        { [ $((answered * 100)) -lt $((sent * 95)) ] || [ $((sent * 100)) -lt $((offered * 95)) ]; } && break
    done
    echo "$best|$last"
}

# measure NAME [PID [LATENCY_MODE]] : one table row; PID is the daemon whose peak RSS is
# read after the scan (none for the kernel)
measure() {
    local name="$1" pid="${2:-}" mode="${3:-latency}" bound lat rate scan rss="–"
    log "$name: bound guest"
    bound="$(load latency-warm "$LAT_N" "$G3")"
    log "$name: first resolution ($mode)"
    lat="$(load "$mode" "$LAT_N" "${MANY[@]:0:100}")"
    if [ "$mode" = latency-warm ]; then
        FAST_NOTE="${FAST_NOTE:+$FAST_NOTE
}$name: latency measured after one unmeasured pass over the same $LAT_N addresses (warm-up lost $(field "$lat" warm_lost)); oldest guest NA at measuring time $(field "$lat" max_confirm_age_ms) ms (window 5000 ms)"
    fi
    log "$name: rate ramp"
    rate="$(sustained)"
    log "$name: scan"
    # The known guests are resolved once, unmeasured, before the scan starts.
    load latency "${#KNOWN[@]}" "${KNOWN[@]}" >/dev/null
    if [ -n "${STATUS_DURING_SCAN:-}" ]; then
        status_ms >"$WORK/status_ms" &
        local sp=$!
    fi
    scan="$(load scan "$SCAN" 10 2001:db8:1:: "${KNOWN[@]}")"
    log "$name: scan: $scan"
    if [ -n "${STATUS_DURING_SCAN:-}" ]; then
        wait "$sp"
        STATUS_NOTE="$name: ndprelay status during the ${SCAN} NS/s scan: slowest of 10 calls $(cat "$WORK/status_ms") ms (process start included)"
    fi
    if [ -n "$pid" ]; then
        rss="$(vmhwm_mb "$pid")"
        log "$name: peak RSS $rss MB (pid $pid, $(awk '$1 == "Name:" {print $2}' "/proc/$pid/status"))"
    fi
    ROWS+=("| $name | $(field "$bound" wire_median_ms) | $(field "$bound" wire_p99_ms) | $(field "$bound" lost)/$LAT_N | $(field "$lat" wire_median_ms) | $(field "$lat" wire_p99_ms) | $(field "$lat" median_ms) | $(field "$lat" lost)/$LAT_N | ${rate%%|*} | ${rate#*|} | $(field "$scan" guest_resolved)/$(field "$scan" guest_probes) | $(field "$scan" guest_wire_median_ms) | $(field "$scan" guest_wire_p99_ms) | $(field "$scan" guest_p99_ms) | $(field "$scan" scan_answered) | $rss |")
}

# ndprelay_rows ROW_TAG : the four ndprelay rows with the binary in $NDPRELAY, named
# "ndprelay$ROW_TAG (...)"
ndprelay_rows() {
    local ROW_TAG="$1" SUFFIX="${1:+-before}" STATUS_SCAN="${1:-1}"
    [ -n "$ROW_TAG" ] && STATUS_SCAN=""
    # 1. ndprelay as configured by default: relay mode, relayed in the kernel (relay_in_kernel
    # not set, the daemon is root: eBPF on eth0 and br0)
    EXTRA="$LIMITS" write_config "$WORK/relay.ron" eth0 br0
    start_relay dom0 "$WORK/relay.ron"
    wait_for 30 "br0 proxying" proxying br0
    grep -q "relay_in_kernel: NS and NA for bound guests relayed in the kernel" "$WORK/relay.log" ||
        { echo "bench-ns.sh: the default relay did not set up the in-kernel relay" >&2; exit 1; }
    STATUS_DURING_SCAN="$STATUS_SCAN" measure "ndprelay$ROW_TAG (relay, default: in the kernel)" "$RELAY_PID"
    status >target/bench-ns-ndprelay$SUFFIX-status.txt
    RELAY_KERNEL_NOTE="${RELAY_KERNEL_NOTE:+$RELAY_KERNEL_NOTE$NL}ndprelay$ROW_TAG (relay, default: in the kernel): $(awk '$1 ~ /^relayed_n[sa](_by_kernel)?$/ {v[$1] = $2} END {printf "relayed by the kernel %d NS and %d NAs, by the relay itself %d NS and %d NAs", v["relayed_ns_by_kernel"], v["relayed_na_by_kernel"], v["relayed_ns"], v["relayed_na"]}' target/bench-ns-ndprelay$SUFFIX-status.txt)"
    stop_relay

    # 1a. relay mode in userspace (relay_in_kernel: false): the ports' capture threads
    EXTRA="$LIMITS relay_in_kernel: false," write_config "$WORK/relay-userspace.ron" eth0 br0
    start_relay dom0 "$WORK/relay-userspace.ron"
    wait_for 30 "br0 proxying" proxying br0
    measure "ndprelay$ROW_TAG (relay in userspace)" "$RELAY_PID"
    status >target/bench-ns-ndprelay$SUFFIX-userspace-status.txt
    stop_relay

    # 1b. the same relay with the opt-in fast path (answers from bindings confirmed within 5 s),
    # answered in the kernel as by default (fast_path_in_kernel not set: eBPF on eth0's ingress)
    EXTRA="$LIMITS fast_path: \"5s\"," write_config "$WORK/relay-kernel.ron" eth0 br0
    start_relay dom0 "$WORK/relay-kernel.ron"
    wait_for 30 "br0 proxying" proxying br0
    grep -q "fast_path_in_kernel: fast-path answers sent in the kernel" "$WORK/relay.log" ||
        { echo "bench-ns.sh: the fast path did not set up the in-kernel answers" >&2; exit 1; }
    measure "ndprelay$ROW_TAG (fast path, default: in the kernel)" "$RELAY_PID" latency-warm
    status >target/bench-ns-ndprelay$SUFFIX-kernel-status.txt
    KERNEL_NOTE="${KERNEL_NOTE:+$KERNEL_NOTE$NL}ndprelay$ROW_TAG (fast path, default: in the kernel): $(awk '$1 == "answered_by_kernel" {k = $2} $1 == "answered_ns" {e = $2} END {printf "%d NS answered by the kernel, %d by the relay itself", k, e}' target/bench-ns-ndprelay$SUFFIX-kernel-status.txt)"
    stop_relay

    # 1c. the fast path answered by the uplink's capture thread (fast_path_in_kernel: false)
    EXTRA="$LIMITS fast_path: \"5s\", fast_path_in_kernel: false," write_config "$WORK/relay-fast.ron" eth0 br0
    start_relay dom0 "$WORK/relay-fast.ron"
    wait_for 30 "br0 proxying" proxying br0
    measure "ndprelay$ROW_TAG (fast path in userspace)" "$RELAY_PID" latency-warm
    status >target/bench-ns-ndprelay$SUFFIX-fast-status.txt
    stop_relay
}

# The build under test, then (with BEFORE=PATH, another ndprelay binary such as the
# previous release) the same four rows with that one, in the same run.
ndprelay_rows ""
if [ -n "${BEFORE:-}" ]; then
    NDPRELAY_NOW="$NDPRELAY"
    NDPRELAY="$BEFORE"
    ndprelay_rows " (before)"
    NDPRELAY="$NDPRELAY_NOW"
fi

# 2. ndppd static and iface
run_ndppd() {
    local name="$1" rule="$2"
    printf 'route-ttl 30000\nproxy eth0 {\n    router no\n    timeout 500\n    ttl 30000\n    rule 2001:db8:1::/64 {\n        %s\n    }\n}\n' "$rule" >"$WORK/ndppd.conf"
    ip netns exec "$(ns dom0)" ndppd -c "$WORK/ndppd.conf" -p "$WORK/ndppd.pid" >"$WORK/ndppd.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    sleep 2
    kill -0 "$pid" || fail "ndppd did not start: $(cat "$WORK/ndppd.log")"
    measure "$name" "$pid"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}
if [ -n "${ONLY_RELAY:-}" ] && [ -n "${WITH_IFACE:-}" ]; then
    run_ndppd "ndppd 0.2.5 iface" "iface br0"
fi
if [ -z "${ONLY_RELAY:-}" ]; then
    run_ndppd "ndppd 0.2.5 static" "static"
    run_ndppd "ndppd 0.2.5 iface" "iface br0"

    # 3. the kernel's proxy_ndp with one entry per guest: as shipped (answers to multicast NS
    # delayed by a random 0-800 ms, proxy_delay) and with proxy_delay 0 (answers at once)
    nsx dom0 sysctl -qw net.ipv6.conf.eth0.proxy_ndp=1
    nsx dom0 ip -6 neigh add proxy "$G1" dev eth0
    nsx dom0 ip -6 neigh add proxy "$G2" dev eth0
    nsx dom0 ip -6 neigh add proxy "$G3" dev eth0
    for a in "${MANY[@]}"; do echo "neigh add proxy $a dev eth0"; done >"$WORK/proxy.batch"
    nsx dom0 ip -6 -batch "$WORK/proxy.batch"
    measure "kernel proxy_ndp"
    nsx dom0 sysctl -qw net.ipv6.neigh.eth0.proxy_delay=0
    measure "kernel proxy_ndp, proxy_delay 0"
fi

{
    echo "| contender | bound guest: wire median ms | wire p99 ms | lost | first resolution: wire median ms | wire p99 ms | app median ms | lost | sustained NS/s (>= 99.9 % answered) | answered/s at last offered NS/s | known guests resolved during ${SCAN} NS/s scan | wire median ms | wire p99 ms | app p99 ms | scan targets answered | peak RSS MB |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "${STATUS_NOTE:-}"
    echo
    echo "${FAST_NOTE:-}"
    echo
    echo "${KERNEL_NOTE:-}"
    echo
    echo "${RELAY_KERNEL_NOTE:-}"
} | tee target/bench-ns.md
