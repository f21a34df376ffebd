#!/usr/bin/env bash
# Throughput of `ndprelay replay` (issue 5): a 1,000,000-frame synthetic capture
# (examples/gen_capture.rs) replayed without --output, listing to /dev/null, as text and
# as --json; median wall time of 5 runs each, release build, one core (taskset).
#
#   scripts/bench-replay.sh [FRAMES] [RUNS]
#
# Target: >= 1,000,000 frames/s. Results go in BENCHMARKS.md, "pcap replay (issue 5)".
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FRAMES="${1:-1000000}"
RUNS="${2:-5}"
DIR="$ROOT/target/bench-replay"
mkdir -p "$DIR"
cd "$ROOT"
cargo build --release --quiet --bin ndprelay --example gen_capture
BIN="$ROOT/target/release/ndprelay"
CAP="$DIR/capture-$FRAMES.pcapng"
[ -f "$CAP" ] || target/release/examples/gen_capture "$CAP" "$FRAMES"
cat >"$DIR/bench.ron" <<'EOF'
(
    uplink: "eth0",
    downstream: ["br0"],
    prefixes: ["2001:db8:1::/64"],
    ra_relay: true,
    install_routes: true,
)
EOF
PIN=()
command -v taskset >/dev/null && PIN=(taskset -c 0)

# median_secs ARGS... : median wall time in seconds of RUNS runs of replay with ARGS
median_secs() {
    local times=() i start end
    for i in $(seq "$RUNS"); do
        start="$(date +%s.%N)"
        "${PIN[@]}" "$BIN" replay -c "$DIR/bench.ron" --input "$CAP" "$@" >/dev/null 2>&1
        end="$(date +%s.%N)"
        times+=("$(echo "$end - $start" | bc -l)")
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'
}

echo "capture: $CAP ($FRAMES frames, $(du -h "$CAP" | cut -f1))"
for mode in text json; do
    args=()
    [ "$mode" = json ] && args=(--json)
    secs="$(median_secs "${args[@]}")"
    rate="$(echo "$FRAMES / $secs" | bc -l)"
    printf '%-5s median of %d: %.3f s, %.0f frames/s\n' "$mode" "$RUNS" "$secs" "$rate"
done
