#!/usr/bin/env bash
# Core benchmarks (issue 2): parse+validate and the engine's NS path, with criterion.
# Runs every bench RUNS times (default 5) and prints the median of criterion's point
# estimates per bench, as frames (or NS) per second on one core. No network, no root.
#
#   scripts/bench-core.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

cargo bench --locked --no-run --bench wire --bench engine >/dev/null 2>&1
for run in $(seq 1 "$RUNS"); do
    cargo bench --locked --bench wire --bench engine -- --warm-up-time 1 --measurement-time 3 \
        >"$out/run-$run.txt" 2>&1
    echo "run $run/$RUNS done" >&2
done

# criterion prints "<name>  time: [low point high]"; take the point estimate in ns.
python3 - "$out" "$RUNS" <<'PY'
import re, sys, statistics, pathlib
out, runs = pathlib.Path(sys.argv[1]), int(sys.argv[2])
samples = {}
for f in sorted(out.glob("run-*.txt")):
    name = None
    for line in f.read_text().splitlines():
        m = re.match(r"^(\S+/\S+)\s*(time:.*)?$", line.strip())
        if m and "/" in m.group(1) and not line.startswith(" "):
            name = m.group(1)
        t = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
        if t and name:
            value, unit = float(t.group(1)), t.group(2)
            ns = value * {"ps": 1e-3, "ns": 1, "µs": 1e3, "us": 1e3, "ms": 1e6}[unit]
            samples.setdefault(name, []).append(ns)
print(f"{'bench':<36} {'median ns/op':>12} {'median Mops/s':>14}  runs")
for name, v in samples.items():
    med = statistics.median(v)
    print(f"{name:<36} {med:>12.1f} {1e3 / med:>14.2f}  {len(v)}/{runs}")
PY
