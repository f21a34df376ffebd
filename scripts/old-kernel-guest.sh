#!/bin/bash
# The test runner inside scripts/old-kernel.sh's VM (PID 1 after switch_root; never run
# it on a host). Mounts what a booted system has, loads modules from the kernel package,
# runs the tests one by one with a timeout each and writes their logs, a summary and the
# exit status to /ndpr-out (the host's target/oldkernel/out), then powers the VM off.
#
# The tests (name: what and why it is here):
#   ebpf_test_run   every in-kernel program loaded by this kernel's verifier and run on
#                   crafted frames (BPF_PROG_TEST_RUN)
#   live-tc         tc attach: filter, replace after a kill, removal; Auto picks tc here
#   live-tests      the I/O layer's kernel tests (capture filter, routes, links, guard, the
#                   programs attached to veths and a bridge, the CAP_BPF map-access probe)
#   01-dom0 14-host-safety 07-bad-input           the default config (in-kernel relay on,
#                   hooked as the relay chooses: tc here) and the capabilities it keeps
#   19-tc-attach    the relay's tc filters, and its own choice of tc with in_kernel_attach unset
#   11-kernel-fast-path 12-kernel-relay 15-vlan   the in-kernel answer and relay end to end
#                   (with KVM or OLDKERNEL_ALL=1 only: their counts are timing-bound)
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
OUT=/ndpr-out
# shellcheck source=/dev/null
. "$OUT/env"
export CI NDPRELAY

poweroff() {
    sync
    echo o >/proc/sysrq-trigger
    sleep 30
}
trap poweroff EXIT

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/net
mount -t devpts -o ptmxmode=666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# The checkout may live under /tmp or /run (a CI clone): keep it in reach of the tmpfs
# mounts below, which would hide it with the binaries the tests run.
mkdir -p /ndpr-repo
mount --bind "$REPO" /ndpr-repo
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
if [ ! -d "$REPO/scripts" ]; then
    mkdir -p "$REPO"
    mount --bind /ndpr-repo "$REPO"
fi
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null || true
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true
ln -sf /proc/self/fd /dev/fd
hostname oldkernel

# The kernel asks /sbin/modprobe for veth, bridge, nf_tables, cls_bpf...: busybox's,
# reading the package's modules (depmod'ed by old-kernel.sh).
mkdir -p /lib/modules /usr/local/sbin
ln -sfn "$KMODS" "/lib/modules/$(uname -r)"
ln -sf /bin/busybox /usr/local/sbin/modprobe
echo /usr/local/sbin/modprobe >/proc/sys/kernel/modprobe
# virtio_rng: a seeded pool early (5.10's getrandom() blocks until it is).
for m in virtio_rng veth bridge tun sch_ingress cls_bpf nf_tables nft_chain_nat nf_reject_ipv6 \
    nft_reject_inet nft_ct af_packet; do
    modprobe "$m" 2>/dev/null || true
done
ip link set lo up

echo "==> guest: Linux $(uname -r), unprivileged_bpf_disabled=$(cat /proc/sys/kernel/unprivileged_bpf_disabled)"

ACCEL="$(sed -n 's/.*ndpr_accel=\([a-z]*\).*/\1/p' /proc/cmdline)"
: >"$OUT/summary"
mapfile -t TESTS < <(grep -v '^$' "$OUT/tests")
if [ ${#TESTS[@]} -eq 0 ]; then
    TESTS=(ebpf_test_run live-tc live-tests 01-dom0 14-host-safety 07-bad-input)
    # These count what the kernel relayed or answered within a RetransTimer (1 s) of
    # the engine's first frame for a guest; under TCG one ndisc6 round takes about that
    # long (1.3 s against 0.4 s under KVM or on the host), so their counts measure the
    # emulator, not the kernel.
    SLOW=(19-tc-attach 11-kernel-fast-path 12-kernel-relay 15-vlan)
    if [ "$ACCEL" = kvm ] || [ "${OLDKERNEL_ALL:-0}" = 1 ]; then
        TESTS+=("${SLOW[@]}")
    else
        echo "==> guest: under TCG, not running the timing-bound ${SLOW[*]} (KVM runs them; OLDKERNEL_ALL=1 forces them)" |
            tee -a "$OUT/summary"
    fi
fi

cd "$REPO" || exit 1
failed=()
for t in "${TESTS[@]}"; do
    start=$(date +%s)
    case "$t" in
        ebpf_test_run) cmd=("$TESTBIN" --ignored --test-threads=1 ebpf_test_run) ;;
        live-tc) cmd=("$TESTBIN" --ignored --test-threads=1 live::tc::) ;;
        live-tests) cmd=("$TESTBIN" --ignored --test-threads=1 live::tests::) ;;
        [0-9][0-9]-*) cmd=(bash "netns-tests/$t.sh") ;;
        *)
            echo "FAIL $t (unknown test)" | tee -a "$OUT/summary"
            failed+=("$t")
            continue
            ;;
    esac
    echo "==> guest: $t"
    if timeout 300 "${cmd[@]}" >"$OUT/$t.log" 2>&1; then
        line="PASS $t ($(($(date +%s) - start))s)"
    else
        line="FAIL $t ($(($(date +%s) - start))s, log: target/oldkernel/out/$t.log)"
        failed+=("$t")
        tail -n 25 "$OUT/$t.log"
    fi
    echo "$line" | tee -a "$OUT/summary"
done
echo "oldkernel on $(uname -r): ${#TESTS[@]} run, ${#failed[@]} failed ${failed[*]}" | tee -a "$OUT/summary"
echo "${#failed[@]}" >"$OUT/rc"
[ ${#failed[@]} -eq 0 ] || echo 1 >"$OUT/rc"
