#!/usr/bin/env bash
# The project's one test command: installs what the tests need, then runs every check.
#
#   scripts/test.sh            everything (what CI runs)
#   scripts/test.sh STEP...    only these steps: deps lint unit libpcap doc scenarios package fuzz netns
#                              oldkernel
#
# Under CI=true nothing is skipped: a step whose prerequisites are missing fails.
# The oldkernel step boots Debian's Linux 6.1 (no tcx) under qemu and runs the in-kernel
# programs' tests there (scripts/old-kernel.sh).
# The fuzz step runs each fuzz target 20 s on the stable toolchain (scripts/fuzz.sh, which
# also does the long runs) and fails on any crash.
set -euo pipefail
cd "$(dirname "$0")/.."

CI="${CI:-false}"
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(deps lint unit libpcap doc scenarios package fuzz netns oldkernel)

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# Debian packages the tests use; installed only when something is missing.
# radvd, ndisc6 (ndisc6/rdisc6), iputils-ping, tcpdump, nftables and util-linux (setpriv)
# are the real Linux peers and probes of the netns tests; ndppd is for scripts/bench-ns.sh.
# thc-ipv6 (atk6-*), ipv6toolkit (ns6, na6, ra6), python3-scapy (exact frames, run with
# /usr/bin/python3; 13 and 15 use it too) and jq (status --json) are the attackers and checks
# of tests 16-18.
# man-db, groff-base, zsh, fish, systemd (systemd-analyze), dpkg, binutils (objdump,
# strip) and lintian are what the package step renders, loads, builds and checks with.
APT_PACKAGES=(libpcap-dev tshark iproute2 radvd ndisc6 iputils-ping tcpdump nftables util-linux ndppd
    thc-ipv6 ipv6toolkit python3-scapy jq
    man-db groff-base zsh fish systemd dpkg binutils lintian
    # netns-tests/25-metrics.sh: scrapes /metrics (curl) and parses it with a real
    # Prometheus parser (prometheus_client.parser)
    python3-prometheus-client curl
    # qemu-system-x86 and busybox-static boot the older kernel of the oldkernel step (its
    # initramfs is busybox).
    qemu-system-x86 busybox-static)

step_deps() {
    log "deps: Debian packages and Rust components"
    local missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            die "missing packages: ${missing[*]} (run: sudo apt-get install -y ${missing[*]})"
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    cargo fmt --version >/dev/null 2>&1 || die "rustfmt missing (run: rustup component add rustfmt)"
    cargo clippy --version >/dev/null 2>&1 || die "clippy missing (run: rustup component add clippy)"
}

step_lint() {
    log "lint: rustfmt and clippy -D warnings"
    cargo fmt --all -- --check
    cargo clippy --all-targets --locked -- -D warnings
    # The simulator's TAP attachment (tun-tap) is behind a feature; lint it too.
    cargo clippy --locked --features tap --all-targets -- -D warnings
}

step_unit() {
    log "unit: cargo test (unit, property, golden-frame, engine harness, CLI, scenarios)"
    cargo test --locked
}

step_libpcap() {
    log "libpcap: build and test the optional libpcap feature"
    dpkg -s libpcap-dev >/dev/null 2>&1 || die "libpcap-dev missing (run: apt-get install -y libpcap-dev)"
    cargo clippy --locked --features libpcap -- -D warnings
    cargo test --locked --features libpcap --lib
}

step_doc() {
    log "doc: rustdoc with warnings denied"
    RUSTDOCFLAGS=-Dwarnings cargo doc --locked --no-deps
}

step_scenarios() {
    log "scenarios: every shipped lab scenario through the release binary"
    cargo build --locked --release
    local n=0 failed=()
    for f in scenarios/*.ron; do
        [ -e "$f" ] || continue
        n=$((n + 1))
        if ./target/release/ndprelay --scenario "$f" >"target/scenario-$(basename "$f" .ron).log" 2>&1; then
            echo "PASS $f"
        else
            echo "FAIL $f (log: target/scenario-$(basename "$f" .ron).log)"
            tail -n 30 "target/scenario-$(basename "$f" .ron).log"
            failed+=("$f")
        fi
    done
    [ "$n" -gt 0 ] || die "no scenarios found in scenarios/"
    echo "scenarios: $((n - ${#failed[@]})) passed, ${#failed[@]} failed"
    [ ${#failed[@]} -eq 0 ]
}

step_package() {
    log "package: manual pages, completions and the .deb, installed and purged in a throwaway root"
    # scripts/test-package.sh builds the package (scripts/package.sh), renders each page
    # with man -l, loads each completion in its shell, and installs, verifies (systemd-
    # analyze), removes and purges the package under an overlayfs in its own mount
    # namespace. It needs root for the mounts.
    if [ "$(id -u)" -ne 0 ]; then
        [ "$CI" = true ] && die "package step needs root (CI=true: not skipping)"
        echo "SKIPPED package: needs root"
        return 0
    fi
    timeout 900 scripts/test-package.sh
}

step_fuzz() {
    log "fuzz: coverage-guided fuzzing of the frame parser and the engine (stable, libFuzzer)"
    # Nothing to install: scripts/fuzz.sh builds libFuzzer from libfuzzer-sys's sources
    # with the system C++ compiler and instruments with rustc's stable sancov pass. Each
    # target runs 20 s from the committed seeds plus what earlier runs found; any crash,
    # hang or out-of-memory input fails the step (saved in fuzz/artifacts/TARGET/).
    command -v c++ >/dev/null 2>&1 || die "fuzz needs a C++ compiler for libFuzzer (run: apt-get install -y g++)"
    scripts/fuzz.sh --time 20
}

step_netns() {
    log "netns: kernel integration tests and network-namespace topologies with real Linux peers"
    local tests=(netns-tests/[0-9]*.sh)
    if [ "$(id -u)" -ne 0 ] || ! ip netns add ndpr-probe-$$ 2>/dev/null; then
        [ "$CI" = true ] && die "netns tests need root and network namespaces (CI=true: not skipping)"
        echo "SKIPPED netns: needs root and network namespaces"
        return 0
    fi
    ip netns del ndpr-probe-$$
    local tool
    for tool in radvd ndisc6 rdisc6 ping tcpdump nft setpriv; do
        have "$tool" || die "netns tests need '$tool' (run: scripts/test.sh deps)"
    done
    [ -c /dev/net/tun ] || die "netns tests need /dev/net/tun (the TAP tests)"
    # The I/O layer on its own: capture filter, all-multicast, routes, link events, guard.
    cargo test --locked --lib live::tests -- --ignored --test-threads=1
    # The in-kernel programs on crafted frames (BPF_PROG_TEST_RUN): verdict and bytes of
    # every frame; a program that does not load fails.
    cargo test --locked --lib -- --ignored ebpf_test_run
    # The tc attach (the hook before Linux 6.6): a left filter replaced, removed on drop.
    cargo test --locked --lib live::tc -- --ignored
    # The libpcap backend's drop statistics (a separate target dir: other features).
    cargo test --locked --features libpcap --target-dir target/libpcap --lib \
        live::tests::the_libpcap -- --ignored --test-threads=1
    # The lab simulator with its LAN on a TAP device: a real kernel in a namespace gets a
    # SLAAC address through the relay and pings the simulated router (about 20 s).
    cargo test --locked --features tap --test sim_tap -- --ignored --test-threads=1
    [ -e "${tests[0]}" ] || die "no namespace tests found in netns-tests/"
    # ns_load: the 20k NS/s scan 25-metrics.sh scrapes under.
    cargo build --locked --release --bins --example ns_load
    local failed=() t
    for t in "${tests[@]}"; do
        if NDPRELAY="$PWD/target/release/ndprelay" timeout 600 bash "$t"; then
            echo "PASS $t"
        else
            echo "FAIL $t"
            failed+=("$t")
        fi
    done
    # The libpcap capture backend on the main topology.
    cargo build --locked --release --features libpcap --target-dir target/libpcap
    if NDPRELAY="$PWD/target/libpcap/release/ndprelay" timeout 600 bash netns-tests/01-dom0.sh; then
        echo "PASS netns-tests/01-dom0.sh (libpcap backend)"
    else
        echo "FAIL netns-tests/01-dom0.sh (libpcap backend)"
        failed+=("01-dom0/libpcap")
    fi
    echo "netns: ${#failed[@]} failed ${failed[*]}"
    [ ${#failed[@]} -eq 0 ]
}

step_oldkernel() {
    log "oldkernel: the in-kernel programs and the tc fallback on Linux 6.1 under qemu"
    scripts/old-kernel.sh
}

for s in "${STEPS[@]}"; do
    case "$s" in
        deps | lint | unit | libpcap | doc | scenarios | package | fuzz | netns | oldkernel) "step_$s" ;;
        *) die "unknown step '$s' (steps: deps lint unit libpcap doc scenarios package fuzz netns oldkernel)" ;;
    esac
done
log "all requested steps passed: ${STEPS[*]}"
