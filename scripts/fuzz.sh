#!/usr/bin/env bash
# Coverage-guided fuzzing of the frame parser and the engine on the stable toolchain.
#
#   scripts/fuzz.sh [TARGET...] [--runs N | --time SECS] [--build-only]
#
# Targets (fuzz/fuzz_targets/): frame, engine; default both, one after the other, each in
# one process on one core. Without --runs or --time each runs for 60 s.
#
# No nightly and no cargo-fuzz needed: the targets are libFuzzer harnesses (libfuzzer-sys
# builds libFuzzer from its bundled sources with the system C++ compiler) and rustc's
# sancov pass, a stable -C option, gives libFuzzer its edge counters and comparison hooks,
# exactly as `cargo fuzz build --sanitizer none` would. Debug assertions and overflow
# checks are on, so an arithmetic overflow is a crash too.
#
# Corpus: fuzz/seeds/TARGET (committed, a handful of files written by
# `cargo run --example fuzz_seeds`) plus fuzz/corpus/TARGET, where libFuzzer keeps what it
# finds (ignored by git). A crash, timeout or out-of-memory input is saved as
# fuzz/artifacts/TARGET/crash-* (or timeout-*, oom-*) and the script exits 1; replay it
# with `fuzz/target/stable/HOST/release/TARGET FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { printf 'fuzz.sh: %s\n' "$*" >&2; exit 2; }

targets=()
limit=(-max_total_time=60)
build_only=false
while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --runs)
            [[ "${2:-}" =~ ^[0-9]+$ ]] || die "--runs needs a count (e.g. --runs 10000000)"
            limit=(-runs="$2"); shift 2 ;;
        --time)
            [[ "${2:-}" =~ ^[0-9]+$ ]] || die "--time needs seconds (e.g. --time 600)"
            limit=(-max_total_time="$2"); shift 2 ;;
        --build-only) build_only=true; shift ;;
        -*) die "unknown option '$1' (see scripts/fuzz.sh --help)" ;;
        *) targets+=("$1"); shift ;;
    esac
done
all=()
for f in fuzz/fuzz_targets/*.rs; do all+=("$(basename "$f" .rs)"); done
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for t in "${targets[@]}"; do
    [ -f "fuzz/fuzz_targets/$t.rs" ] || die "unknown target '$t' (targets: ${all[*]})"
done

# The flags `cargo fuzz build --sanitizer none` passes, all stable: instrument every edge
# with an 8-bit counter and a PC table (libFuzzer's coverage), hook comparisons (so it
# solves magic values such as ICMPv6 types and option kinds), keep branches as branches.
# `--target` keeps them off build scripts and proc macros, which run on the host.
host="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
-Cdebug-assertions -Coverflow-checks"
export CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
# Not --locked: fuzz/Cargo.lock has to follow the main crate's dependencies, and cargo
# keeps every version already locked there, adding only what is new.
cargo build --release --manifest-path fuzz/Cargo.toml --target "$host" \
    --target-dir fuzz/target/stable --bins
$build_only && exit 0

failed=()
for t in "${targets[@]}"; do
    bin="fuzz/target/stable/$host/release/$t"
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    log="fuzz/artifacts/$t/last-run.log"
    printf '\n==> fuzz %s (%s)\n' "$t" "${limit[*]}"
    # New inputs go to the first directory only; the committed seeds stay as they are.
    # -timeout: an input that takes 10 s is a hang; -rss_limit_mb: a leak or blow-up.
    status=0
    "$bin" -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 -timeout=10 \
        -rss_limit_mb=2048 "${limit[@]}" "fuzz/corpus/$t" "fuzz/seeds/$t" >"$log" 2>&1 \
        || status=$?
    grep -E '^#[0-9]+[[:space:]]+(INITED|pulse|DONE)' "$log" | tail -n 3 || true
    done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)"
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")"
    secs="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")"
    corp="$(sed -n 's/.* corp: \([0-9]*\)\/\([0-9a-zA-Z]*\).*/\1 inputs, \2/p' <<<"$done_line")"
    if [ "$status" -ne 0 ] || [ -z "$done_line" ]; then
        # libFuzzer prints the panic, the stack and where it wrote the input.
        if ! grep -E -m1 -A4 'panicked at' "$log" >&2; then
            tail -n 30 "$log" >&2
        fi
        grep -E -m1 'ERROR: libFuzzer' "$log" >&2 || true
        grep -E -m1 'Test unit written to' "$log" >&2 || true
        echo "fuzz $t: FAILED (exit $status) after ${execs:-?} executions; input saved in fuzz/artifacts/$t/, log $log" >&2
        failed+=("$t")
        continue
    fi
    echo "fuzz $t: ${execs} executions in ${secs} s (${rate} exec/s), coverage ${cov} edges, ${ft} features, corpus ${corp}, no crash"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: ${#failed[@]} of ${#targets[@]} targets crashed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash"
