# Shared helpers for the namespace tests (sourced, not run).
#
# Every namespace is called ndpr-<test>-<name> and removed by the EXIT trap, also when a
# check fails; every packet the tests send stays inside those namespaces. The relay
# binary is $NDPRELAY (default: target/release/ndprelay).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NDPRELAY="${NDPRELAY:-$ROOT/target/release/ndprelay}"
TEST="${TEST:-$(basename "$0" .sh)}"
TAG="${TEST//[^a-z0-9]/}"
TAG="${TAG:0:6}"
WORK="$(mktemp -d "/tmp/ndpr-$TAG.XXXXXX")"
NAMESPACES=()
RELAY_PID=""
PIDS=()

log() { printf '[%s] %s\n' "$TEST" "$*"; }
fail() {
    printf '[%s] FAIL: %s\n' "$TEST" "$*" >&2
    if [ -n "$RELAY_PID" ] && [ -S "$WORK/ctl.sock" ]; then
        echo "--- relay status ---" >&2
        ip netns exec "$(ns "${RELAY_NS:-dom0}")" "$NDPRELAY" status --control-socket "$WORK/ctl.sock" >&2 || true
    fi
    if [ -f "$WORK/relay.log" ]; then
        echo "--- relay log (last 40 lines) ---" >&2
        tail -n 40 "$WORK/relay.log" >&2
    fi
    exit 1
}

cleanup() {
    local rc=$?
    set +e
    exec 2>/dev/null # no job-control chatter about the helpers killed below
    [ -n "$RELAY_PID" ] && kill -KILL "$RELAY_PID" 2>/dev/null
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for n in "${NAMESPACES[@]}"; do
        # Processes still inside (radvd, tcpdump) die with the namespace's last reference.
        ip netns pids "$n" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
        ip netns del "$n" 2>/dev/null
    done
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

# ns NAME -> full namespace name
ns() { echo "ndpr-$TAG-$1"; }

mkns() {
    local n
    n="$(ns "$1")"
    ip netns del "$n" 2>/dev/null || true
    ip netns add "$n"
    NAMESPACES+=("$n")
    ip -n "$n" link set lo up
    # Keep DAD short and predictable.
    ip netns exec "$n" sysctl -qw net.ipv6.conf.all.dad_transmits=1 net.ipv6.conf.default.dad_transmits=1
}

# nsx NAME CMD... : run a command inside a namespace
nsx() {
    local n
    n="$(ns "$1")"
    shift
    ip netns exec "$n" "$@"
}

# veth A_NS A_IF B_NS B_IF [A_MAC]
veth() {
    ip link add "ndpr$$tmp" type veth peer name "ndpr$$tmq"
    ip link set "ndpr$$tmp" netns "$(ns "$1")" name "$2"
    ip link set "ndpr$$tmq" netns "$(ns "$3")" name "$4"
    if [ -n "${5:-}" ]; then nsx "$1" ip link set "$2" address "$5"; fi
    nsx "$1" ip link set "$2" up
    nsx "$3" ip link set "$4" up
}

# wait_for SECONDS DESCRIPTION CMD... : poll CMD every 0.2 s until it succeeds
wait_for() {
    local secs="$1" what="$2"
    shift 2
    local end=$((SECONDS + secs))
    while [ "$SECONDS" -lt "$end" ]; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    fail "timed out after ${secs}s waiting for: $what"
}

# global_addr NS IF : the first non-tentative global address (awk reads all of ip's
# output: a reader that quits early would fail the pipeline under pipefail)
global_addr() {
    nsx "$1" ip -6 -o addr show dev "$2" scope global -tentative -dadfailed |
        awk 'NR == 1 {split($4, a, "/"); print a[1]}'
}

has_global() { [ -n "$(global_addr "$1" "$2")" ]; }

# start_radvd NS IF PREFIX : a router advertising PREFIX (A and L set) every 3-4 s
start_radvd() {
    local n="$1" ifc="$2" prefix="$3"
    cat >"$WORK/radvd-$n.conf" <<EOF
interface $ifc {
    AdvSendAdvert on;
    MinRtrAdvInterval 3;
    MaxRtrAdvInterval 4;
    prefix $prefix {
        AdvOnLink on;
        AdvAutonomous on;
    };
};
EOF
    nsx "$n" sysctl -qw net.ipv6.conf.all.forwarding=1
    ip netns exec "$(ns "$n")" radvd -n -C "$WORK/radvd-$n.conf" -p "$WORK/radvd-$n.pid" -m stderr >"$WORK/radvd-$n.log" 2>&1 &
    PIDS+=($!)
}

# relay config for NS: write_config FILE UPLINK DOWNSTREAM... (extra keys in $EXTRA)
write_config() {
    local file="$1" up="$2"
    shift 2
    local down=""
    for d in "$@"; do down="$down\"$d\", "; done
    cat >"$file" <<EOF
(
    uplink: "$up",
    downstream: [${down%, }],
    prefixes: ["${PREFIX:-2001:db8:1::/64}"],
    ra_relay: true,
    install_routes: true,
    control_socket: "$WORK/ctl.sock",
    ${EXTRA:-}
)
EOF
}

# start_relay NS CONFIG : run the relay in the background, wait until status answers
start_relay() {
    local n="$1" cfg="$2"
    # shellcheck disable=SC2086 # RELAY_ENV is a list of VAR=value words
    ip netns exec "$(ns "$n")" env RUST_LOG="${RUST_LOG:-info}" ${RELAY_ENV:-} "$NDPRELAY" run -c "$cfg" >>"$WORK/relay.log" 2>&1 &
    RELAY_PID=$!
    wait_for 10 "relay control socket" status_ok
    kill -0 "$RELAY_PID" 2>/dev/null || fail "relay exited at start"
}

status_ok() { nsx "${RELAY_NS:-dom0}" "$NDPRELAY" status --control-socket "$WORK/ctl.sock" >/dev/null; }
status() { nsx "${RELAY_NS:-dom0}" "$NDPRELAY" status --control-socket "$WORK/ctl.sock" "$@"; }

# stop_relay : SIGTERM and wait; fails if the exit is not clean
stop_relay() {
    kill -TERM "$RELAY_PID"
    local i
    for i in $(seq 50); do
        kill -0 "$RELAY_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$RELAY_PID" 2>/dev/null && fail "relay did not stop within 5 s of SIGTERM"
    wait "$RELAY_PID" || fail "relay exited with status $? after SIGTERM"
    RELAY_PID=""
}

# own_routes NS : routes the relay owns (protocol 199)
own_routes() { nsx "$1" ip -6 route show proto 199; }

# owns_route NS PATTERN : one of the relay's routes matches PATTERN. The listing is read
# whole before matching: ip writes route by route, so `own_routes | grep -q` under
# pipefail fails (or, negated, passes) whenever grep exits before ip's last write.
owns_route() { grep -q -- "$2" <<<"$(own_routes "$1")"; }

# kernel_has_tcx : this kernel has tcx (Linux 6.6+); before, the in-kernel programs run as
# tc filters (in_kernel_attach: Auto), which outlive a killed relay
kernel_has_tcx() {
    local major minor
    IFS=. read -r major minor _ </proc/sys/kernel/osrelease
    minor="${minor%%[!0-9]*}"
    [ "$major" -gt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -ge 6 ]; }
}

# Capability mask in /proc/PID/status: bits 12 (CAP_NET_ADMIN) and 13 (CAP_NET_RAW)
CAPS_NET=0000000000003000

# has_caps MASK : the relay's effective, permitted and bounding sets are MASK, and no
# other thread of it holds more (every_task_caps)
has_caps() {
    local set got
    for set in CapEff CapPrm CapBnd; do
        got="$(awk -v s="$set:" '$1 == s {print $2}' "/proc/$RELAY_PID/status")"
        [ "$got" = "$1" ] || fail "$set is $got, expected $1"
    done
    every_task_caps "$1"
}

# every_task_caps MASK : on every thread of the relay (Linux keeps capabilities per
# thread) the bounding set is MASK and the effective and permitted sets hold nothing
# outside it; sets TASKS to "comm:CapEff" per thread
every_task_caps() {
    local t set got comm
    TASKS=""
    for t in /proc/"$RELAY_PID"/task/*; do
        comm="$(cat "$t/comm" 2>/dev/null)" || continue # the thread just ended
        for set in CapEff CapPrm CapBnd; do
            got="$(awk -v s="$set:" '$1 == s {print $2}' "$t/status" 2>/dev/null)" || continue 2
            [ -n "$got" ] || continue 2
            if [ "$set" = CapBnd ]; then
                [ "$got" = "$1" ] || fail "thread $comm: $set is $got, expected $1"
            else
                (((0x$got & ~0x$1) == 0)) || fail "thread $comm: $set is $got, more than $1"
            fi
            [ "$set" = CapEff ] && TASKS="$TASKS $comm:$got"
        done
    done
    [ -n "$TASKS" ] || fail "no thread of the relay found"
}

# start_bpf_relay EXTRA CAPS : the dom0 topology with the relay started with config EXTRA
# (which asks for an in-kernel program), checks its capabilities after start are CAPS,
# waits until g1 is configured, reachable from isp and bound with a route; sets G1 and
# DOM0_MAC
start_bpf_relay() {
    dom0_topology
    EXTRA="$1" write_config "$WORK/relay.ron" eth0 br0
    start_relay dom0 "$WORK/relay.ron"

    log "capabilities after start: $2"
    has_caps "$2"

    log "g1 configures and is reachable"
    wait_for 30 "g1 global address" has_global g1 eth0
    G1="$(global_addr g1 eth0)"
    nsx isp ping -6 -c 3 -i 0.3 -W 3 "$G1" >/dev/null || fail "isp cannot ping g1 ($G1)"
    wait_for 10 "g1 binding with route" binding_routed "$G1" br0
    DOM0_MAC="$(nsx dom0 cat /sys/class/net/eth0/address)"
}

# counter NAME : the relay's counter NAME from `ndprelay status`
counter() { status | awk -v c="$1" '$1 == c {v = $2} END {print v + 0}'; }
# resolve ADDR : the MAC isp learns for ADDR with ndisc6, empty when nobody answers
resolve() {
    local out
    out="$(nsx isp ndisc6 -1 -r 1 -w 1000 "$1" isp0 2>/dev/null || true)"
    awk '/Target link-layer address/ {print tolower($NF)}' <<<"$out"
}
# resolves_to_dom0 N WHEN : ndisc6 from isp resolves $G1 to $DOM0_MAC N times in a row
resolves_to_dom0() {
    local i got start
    start=$(date +%s%N)
    for i in $(seq "$1"); do
        got="$(resolve "$G1")"
        [ "$got" = "$DOM0_MAC" ] || fail "$2: ndisc6 #$i resolved $G1 to '$got', expected $DOM0_MAC"
        sleep 0.3
    done
    # The in-kernel NS relay's entries live a RetransTimer (1 s) from the first NS the
    # engine relays: how many of these the kernel takes depends on this pace.
    log "$2: $1 resolutions in $((($(date +%s%N) - start) / 1000000)) ms"
}
# reloads_logged N : the relay logged at least N reloads
reloads_logged() { [ "$(grep -c "configuration reloaded" "$WORK/relay.log")" -ge "$1" ]; }

# reload_with EXTRA N : rewrites the dom0 relay's config with EXTRA, sends SIGHUP and
# waits for the Nth reload of the run to be logged
reload_with() {
    EXTRA="$1" write_config "$WORK/relay.ron" eth0 br0
    kill -HUP "$RELAY_PID"
    wait_for 10 "reload $2 logged" reloads_logged "$2"
}

# binding_routed ADDR PORT : status lists ADDR on PORT with a route installed
binding_routed() { [ "$(status | awk -v a="$1" '$1 == a {print $2, $NF}')" = "$2 yes" ]; }

# proxying PORT : status shows PORT enabled for proxying (two P-bit RAs sent)
proxying() { status | awk -v p="$1" '$1 == p && $NF == "proxying" {f=1} END {exit !f}'; }

# no_binding ADDR : status does not list ADDR
no_binding() { ! status | awk -v a="$1" '$1 == a {f=1} END {exit !f}'; }

# The standard dom0 topology of netns-tests/README.md: isp -- eth0 [dom0 relay] br0 -- g1, g2
dom0_topology() {
    mkns isp
    mkns dom0
    mkns g1
    mkns g2
    veth isp isp0 dom0 eth0 "" 
    nsx isp ip -6 addr add 2001:db8:1::1/64 dev isp0 nodad
    nsx dom0 ip link add br0 type bridge
    nsx dom0 sysctl -qw net.ipv6.conf.br0.accept_ra=0 2>/dev/null || true
    nsx dom0 ip link set br0 up
    veth g1 eth0 dom0 vg1
    veth g2 eth0 dom0 vg2
    nsx dom0 ip link set vg1 master br0
    nsx dom0 ip link set vg2 master br0
    # dom0 as a router: forwarding, RAs still accepted on the uplink.
    nsx dom0 sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv6.conf.eth0.accept_ra=2
    start_radvd isp isp0 2001:db8:1::/64
}

# unsolicited_na NS IF ADDR : send what a migrated guest's kernel sends after
# netdev_notify_peers (Xen netfront, virtio): an unsolicited NA, O=1, to ff02::1, with
# the interface's MAC as TLLA, from ADDR.
unsolicited_na() {
    nsx "$1" python3 - "$2" "$3" <<'PY'
import socket, struct, sys
ifname, addr = sys.argv[1], sys.argv[2]
mac = bytes.fromhex(open(f"/sys/class/net/{ifname}/address").read().strip().replace(":", ""))
src = socket.inet_pton(socket.AF_INET6, addr)
dst = socket.inet_pton(socket.AF_INET6, "ff02::1")
icmp = struct.pack("!BBHI", 136, 0, 0, 0x20000000) + src + bytes([2, 1]) + mac
pseudo = src + dst + struct.pack("!I3xB", len(icmp), 58)
data = pseudo + icmp
s = sum(struct.unpack(f"!{len(data) // 2}H", data))
while s >> 16:
    s = (s & 0xFFFF) + (s >> 16)
icmp = icmp[:2] + struct.pack("!H", ~s & 0xFFFF) + icmp[4:]
ip6 = struct.pack("!IHBB", 0x60000000, len(icmp), 58, 255) + src + dst
eth = bytes.fromhex("333300000001") + mac + b"\x86\xdd"
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((ifname, 0))
sock.send(eth + ip6 + icmp)
PY
}
