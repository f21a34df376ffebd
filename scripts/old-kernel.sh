#!/usr/bin/env bash
# The in-kernel eBPF programs and their hook choice on an older kernel: boots Debian
# bookworm's Linux 6.1 (no tcx, so the relay must fall back to a tc filter by itself)
# under qemu and runs there, as root in the VM's own namespaces, the BPF_PROG_TEST_RUN
# tests, the tc attach test, the I/O layer's kernel tests and the netns tests that use the
# in-kernel programs (scripts/old-kernel-guest.sh says which and why).
#
#   scripts/old-kernel.sh            the default list (what `scripts/test.sh oldkernel` runs)
#   scripts/old-kernel.sh TEST...    only these (names from old-kernel-guest.sh, e.g. 19-tc-attach)
#
# The guest has no disk: its root is the host's `/` shared read-only over 9p with a tmpfs
# overlay on top, so it runs this checkout's already built binaries and the host's iproute2,
# radvd, ndisc6, tcpdump and scapy. Its init is an initramfs built here from busybox-static
# and the kernel package's virtio/9p/overlay modules. The kernel package
# (`apt-get download`: the version Debian's linux-image-amd64 points at, or
# $OLDKERNEL_PKG, or from $OLDKERNEL_SUITE) is cached under target/oldkernel/. Results
# come back through a second, writable 9p share (target/oldkernel/out/); the exit status
# is the tests'.
#
# KVM when /dev/kvm is usable, else TCG with a longer timeout. Under CI=true a missing
# qemu, busybox or kernel package is a failure, not a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

CI="${CI:-false}"
DIR="$ROOT/target/oldkernel"
OUT="$DIR/out"
log() { printf '==> old-kernel: %s\n' "$*"; }
die() {
    printf 'old-kernel.sh: %s\n' "$*" >&2
    exit 1
}
skip() {
    [ "$CI" = true ] && die "$* (CI=true: not skipping)"
    echo "SKIPPED oldkernel: $*"
    exit 0
}

[ "$(id -u)" -eq 0 ] || skip "needs root (the guest runs the host's binaries as root over 9p)"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
BUSYBOX="$(command -v busybox)" || skip "busybox missing (apt-get install busybox-static)"
ldd "$BUSYBOX" >/dev/null 2>&1 && skip "$BUSYBOX is not static (apt-get install busybox-static)"

# The kernel: the one linux-image-amd64 depends on (6.1.x on bookworm), unless named.
# OLDKERNEL_SUITE=bullseye takes it from that Debian suite instead (5.10), through a
# private apt state under target/oldkernel/ that leaves the host's sources alone.
mkdir -p "$DIR"
APT=()
if [ -n "${OLDKERNEL_SUITE:-}" ]; then
    a="$DIR/apt-$OLDKERNEL_SUITE"
    mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $OLDKERNEL_SUITE main" >"$a/sources.list"
    APT=(-o "Dir::Etc::SourceList=$a/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache")
    [ -n "$(find "$a/lists" -maxdepth 1 -name '*Packages*' -print -quit)" ] ||
        apt-get "${APT[@]}" update -qq || skip "apt-get update for $OLDKERNEL_SUITE failed"
fi
PKG="${OLDKERNEL_PKG:-$(apt-cache "${APT[@]}" depends linux-image-amd64 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1)}"
[ -n "$PKG" ] || PKG="$(find "$DIR" -maxdepth 1 -name 'linux-image-*.deb' -printf '%f\n' | sed 's/_.*//' | sort | tail -n 1)"
[ -n "$PKG" ] || skip "no linux-image package known to apt (apt-get update) and none cached in $DIR"
DEB="$(find "$DIR" -maxdepth 1 -name "${PKG}_*.deb" | sort | tail -n 1)"
if [ -z "$DEB" ]; then
    log "downloading $PKG"
    (cd "$DIR" && apt-get "${APT[@]}" download -q "$PKG" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    DEB="$(find "$DIR" -maxdepth 1 -name "${PKG}_*.deb" | sort | tail -n 1)"
    [ -n "$DEB" ] || skip "apt-get download $PKG failed"
fi
KROOT="$DIR/${PKG}"
if [ ! -e "$KROOT/.done" ]; then
    log "unpacking $(basename "$DEB")"
    rm -rf "$KROOT"
    dpkg-deb -x "$DEB" "$KROOT"
    KVER="$(basename "$(find "$KROOT/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)")"
    # The package's postinst would run depmod; busybox's is enough for busybox's modprobe.
    "$BUSYBOX" depmod -b "$KROOT" "$KVER"
    touch "$KROOT/.done"
fi
KVER="$(basename "$(find "$KROOT/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)")"
VMLINUZ="$KROOT/boot/vmlinuz-$KVER"
[ -f "$VMLINUZ" ] || die "$DEB has no boot/vmlinuz-$KVER"

# The initramfs: busybox, the modules that reach the 9p root, and /init.
INITRD="$DIR/initramfs-$KVER.cpio.gz"
INIT_SRC="$ROOT/scripts/old-kernel-init.sh"
if [ ! -f "$INITRD" ] || [ "$INIT_SRC" -nt "$INITRD" ]; then
    log "building the initramfs"
    staging="$(mktemp -d)"
    mkdir -p "$staging"/{bin,dev,proc,sys,lower,upper,newroot}
    mknod -m 600 "$staging/dev/console" c 5 1
    cp "$BUSYBOX" "$staging/bin/busybox"
    ln -s busybox "$staging/bin/sh"
    # The modules that reach the 9p root and what they need (modules.dep: busybox's
    # modprobe loads the dependencies first).
    mdir="lib/modules/$KVER"
    mkdir -p "$staging/$mdir"
    cp "$KROOT/$mdir/modules.dep" "$staging/$mdir/"
    for m in virtio_pci 9pnet_virtio 9p overlay; do
        line="$(grep -E "/$m\.ko:" "$KROOT/$mdir/modules.dep")" || { rm -rf "$staging"; die "$m.ko not in $PKG"; }
        for f in $(echo "$line" | tr -d ':'); do
            mkdir -p "$staging/$mdir/$(dirname "$f")"
            cp "$KROOT/$mdir/$f" "$staging/$mdir/$f"
        done
        echo "$m" >>"$staging/modules"
    done
    cp "$INIT_SRC" "$staging/init"
    chmod +x "$staging/init"
    (cd "$staging" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null | gzip -1 >"$INITRD.tmp")
    mv "$INITRD.tmp" "$INITRD"
    rm -rf "$staging"
fi

# What the guest runs: the release binary and the lib's test binary, built here.
log "building the release binary and the lib's test binary"
cargo build --locked --release -q
TESTBIN="$(cargo test --locked --lib --no-run --message-format=json -q 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)"
[ -x "$TESTBIN" ] || die "no test binary from cargo test --lib --no-run"

rm -rf "$OUT"
mkdir -p "$OUT"
printf '%s\n' "$@" >"$OUT/tests"
cat >"$OUT/env" <<EOF
REPO=$ROOT
TESTBIN=$TESTBIN
NDPRELAY=$ROOT/target/release/ndprelay
KMODS=$KROOT/lib/modules/$KVER
CI=$CI
OLDKERNEL_ALL=${OLDKERNEL_ALL:-0}
EOF

# The kernel as an ELF (PVH entry): no real-mode setup and no decompression in the guest,
# which under TCG take a while.
VMLINUX="$KROOT/vmlinux"
if [ ! -f "$VMLINUX" ]; then
    python3 - "$VMLINUZ" "$VMLINUX" <<'PY'
import lzma, sys
data = open(sys.argv[1], "rb").read()
at = data.find(b"\xfd7zXZ\x00")
if at < 0:
    sys.exit(f"{sys.argv[1]}: no xz stream (CONFIG_KERNEL_XZ)")
elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[at:])
if elf[:4] != b"\x7fELF":
    sys.exit(f"{sys.argv[1]}: the xz stream is no ELF")
open(sys.argv[2] + ".tmp", "wb").write(elf)
PY
    mv "$VMLINUX.tmp" "$VMLINUX"
fi

CPUS="$(nproc)"
[ "$CPUS" -le 4 ] || CPUS=4
QEMU_PID=""
WATCHDOG=""
cleanup() {
    [ -n "$QEMU_PID" ] && kill -KILL "$QEMU_PID" 2>/dev/null
    [ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2>/dev/null
    true
}
trap cleanup EXIT

# boot ACCEL-ARGS...: starts the VM in the background (QEMU_PID), console in console.log.
boot() {
    : >"$OUT/console.log"
    qemu-system-x86_64 "$@" -smp "$CPUS" -m 3072 \
        -nodefaults -nographic -no-reboot -serial stdio -monitor none \
        -kernel "$VMLINUX" -initrd "$INITRD" \
        -append "console=ttyS0 earlyprintk=serial,ttyS0 panic=-1 loglevel=4 random.trust_cpu=on ndpr_accel=$2" \
        -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
        -virtfs "local,path=$OUT,mount_tag=ndprout,security_model=none" \
        -device virtio-rng-pci </dev/null >"$OUT/console.log" 2>&1 &
    QEMU_PID=$!
}

# KVM where it runs a guest: a /dev/kvm can be there and still not (a nested KVM without
# support for it hangs before the kernel's first line), so the first line decides.
ACCEL=""
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    # Without arch-capabilities: a nested KVM may refuse its MSR.
    boot -accel kvm -cpu host,-arch-capabilities
    for _ in $(seq 1 "${OLDKERNEL_KVM_PROBE:-20}"); do
        grep -q 'Linux version' "$OUT/console.log" && { ACCEL=kvm; break; }
        kill -0 "$QEMU_PID" 2>/dev/null || break
        sleep 1
    done
    if [ -z "$ACCEL" ]; then
        log "/dev/kvm is there but runs no guest here ($(tail -c 200 "$OUT/console.log" | tr -cd '[:print:]' | tail -c 120)): TCG"
        kill -KILL "$QEMU_PID" 2>/dev/null
        wait "$QEMU_PID" 2>/dev/null || true
        QEMU_PID=""
    fi
fi
if [ -z "$ACCEL" ]; then
    ACCEL=tcg
    boot -accel tcg,thread=multi -cpu max
fi
LIMIT="${OLDKERNEL_TIMEOUT:-$([ "$ACCEL" = kvm ] && echo 540 || echo 2400)}"
log "booted $PKG ($KVER) with $ACCEL, $CPUS CPUs, at most ${LIMIT}s"
started=$(date +%s)
(
    sleep "$LIMIT" &
    s=$!
    trap 'kill $s 2>/dev/null; exit 0' TERM
    wait "$s"
    kill -KILL "$QEMU_PID" 2>/dev/null
    echo timeout >"$OUT/timed-out"
) &
WATCHDOG=$!
tail -n +1 --pid="$QEMU_PID" -f "$OUT/console.log" 2>/dev/null | grep -v --line-buffered '^\[ *[0-9]' || true
wait "$QEMU_PID" 2>/dev/null || true
QEMU_PID=""
kill "$WATCHDOG" 2>/dev/null
WATCHDOG=""
log "VM ran $(($(date +%s) - started))s"
[ ! -f "$OUT/timed-out" ] || { tail -n 40 "$OUT/console.log"; die "the VM did not finish within ${LIMIT}s"; }
[ -f "$OUT/rc" ] || { tail -n 60 "$OUT/console.log"; die "the guest wrote no result (console: $OUT/console.log)"; }
cat "$OUT/summary" 2>/dev/null || true
exit "$(cat "$OUT/rc")"
