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

# median ARGS... : "WALL CPU" medians in seconds of RUNS runs of replay with ARGS (CPU =
# user + sys: on a shared machine the wall time also counts waiting for a core)
median() {
    local i mid
    : >"$DIR/times.txt"
    for i in $(seq "$RUNS"); do
        /usr/bin/time -f "%e %U %S" -o "$DIR/time.txt" \
            "${PIN[@]}" "$BIN" replay -c "$DIR/bench.ron" --input "$CAP" "$@" >/dev/null 2>"$DIR/stderr.txt"
        cat "$DIR/time.txt" >>"$DIR/times.txt"
    done
    mid=$(((RUNS + 1) / 2))
    echo "$(awk '{print $1}' "$DIR/times.txt" | sort -n | sed -n "${mid}p")" \
        "$(awk '{print $2 + $3}' "$DIR/times.txt" | sort -n | sed -n "${mid}p")"
}

echo "capture: $CAP ($FRAMES frames, $(du -h "$CAP" | cut -f1)); load: $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in text json; do
    args=()
    [ "$mode" = json ] && args=(--json)
    read -r wall cpu < <(median "${args[@]}")
    printf '%-5s median of %d: wall %.3f s (%.2fM frames/s), cpu %.3f s (%.2fM frames/s)\n' \
        "$mode" "$RUNS" "$wall" "$(echo "$FRAMES / $wall / 1000000" | bc -l)" \
        "$cpu" "$(echo "$FRAMES / $cpu / 1000000" | bc -l)"
done
