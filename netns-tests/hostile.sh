# Helpers for the hostile-sender tests 16, 17 and 18 (sourced after lib.sh, not run: the
# name does not start with a digit, so scripts/test.sh skips it).
#
# Attackers are namespaces without autoconfiguration and with a static link-local
# (fe80::bad:N), so their kernels send nothing of their own: every frame from them is
# one the test chose. The real hosts (isp and the guests that configured themselves by
# SLAAC) are listed in REAL; a binding or a relay route for an address none of them
# holds came from an attacker. After every attack `holds` checks what issue 14 asks:
# the real guests stay reachable from isp, nothing of the attacker's is bound or routed,
# every port keeps proxying, and the relay's memory and CPU stay under the bounds below.

HOSTILE_PY="$ROOT/netns-tests/hostile.py"
# Debian's python3-scapy: the python3 first on PATH may be another one without scapy.
SCAPY_PY=/usr/bin/python3
PREFIX6=2001:db8:1::/64
REAL=(isp)   # namespaces of the well-behaved hosts
GUESTS=()    # namespace:port of the guests isp must keep reaching
ATTACK_FRAMES=0

# Bounds, from the threat model's budgets: the tables are bounded (4096 bindings, 1024
# pending, 64 per MAC, the quarantine list) at well under a kilobyte an entry, so 32 MB
# leaves room for the binary, the thread stacks and the channel buffers (6.3 MB measured
# before any attack). A received frame cost the relay 9-10 us of CPU under the 5 s
# floods (94374 NAs from atk6-flood_advertise6: 890 ms); 100 us a frame, plus 5% of a
# core for the relay's own timers, radvd's RAs and the test's status queries, is broken
# only by a relay that spins or rescans its tables per frame.
RSS_MAX_KB=$((32 * 1024))
CPU_US_PER_FRAME=100
CPU_MS_PER_SEC=50

scapy() {
    local n="$1"
    shift
    nsx "$n" "$SCAPY_PY" "$HOSTILE_PY" "$@"
}

# attacker NAME N PEER_NS PEER_IF [BRIDGE] : namespace NAME whose eth0 is plugged into
# PEER_NS as PEER_IF (enslaved to BRIDGE if given), with fe80::bad:N and nothing else
attacker() {
    mkns "$1"
    nsx "$1" sysctl -qw net.ipv6.conf.default.addr_gen_mode=1 \
        net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.default.autoconf=0
    veth "$1" eth0 "$3" "$4"
    nsx "$1" ip -6 addr flush dev eth0
    nsx "$1" ip -6 addr add "fe80::bad:$2/64" dev eth0 nodad
    if [ -n "${5:-}" ]; then nsx "$3" ip link set "$4" master "$5"; fi
    # Its own link-local is a real address: learning it is no harm.
    REAL+=("$1")
}

# guest NAME PORT : a SLAAC guest plugged into dom0's bridge PORT as vNAME
guest() {
    mkns "$1"
    veth "$1" eth0 dom0 "v$1"
    nsx dom0 ip link set "v$1" master "$2"
}

# addr_of NAME : NAME's global address (empty before SLAAC)
addr_of() { global_addr "$1" eth0; }

# reach ADDR : isp, its neighbour cache flushed, resolves ADDR through the relay and
# pings it
reach() {
    nsx isp ip -6 neigh flush dev isp0 2>/dev/null || true
    nsx isp ping -6 -c 1 -W 1 "$1" >/dev/null 2>&1
}

# lladdr_of NS IF ADDR : the link-layer address ndisc6 in NS gets for ADDR (3 tries,
# 1 s each), empty when nobody answers
lladdr_of() {
    local out
    out="$(nsx "$1" ndisc6 -1 -r 3 -w 1000 "$3" "$2" 2>/dev/null || true)"
    awk '/Target link-layer address/ {print tolower($NF)}' <<<"$out"
}

# boot_guest NAME PORT : a guest that boots now configures itself and is reachable from
# isp with a relay route within 30 s; it joins REAL and GUESTS
boot_guest() {
    local t0=$SECONDS a
    guest "$1" "$2"
    wait_for 30 "$1 global address (booted after the attacks)" has_global "$1" eth0
    a="$(addr_of "$1")"
    wait_for 20 "isp reaches $1 ($a), booted after the attacks" reach "$a"
    wait_for 10 "$1 bound on $2 with a route" binding_routed "$a" "$2"
    REAL+=("$1")
    GUESTS+=("$1:$2")
    log "late guest $1 ($a) reachable and routed $((SECONDS - t0)) s after boot"
}

# real_addrs : every address a real host holds, one a line
real_addrs() {
    local n
    for n in "${REAL[@]}"; do
        nsx "$n" ip -6 -o addr show | awk '{split($4, a, "/"); print a[1]}'
    done | sort -u
}

jstatus() { status --json; }
# jcounter NAME [FILE] : counter NAME now (or in the status document FILE); 0 when absent
jcounter() {
    if [ -n "${2:-}" ]; then jq -r --arg c "$1" '.counters[$c] // 0' "$2"; else
        jstatus | jq -r --arg c "$1" '.counters[$c] // 0'
    fi
}

cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' "/proc/$1/stat"; }
rss_kb() { awk '$1 == "VmRSS:" {print $2}' "/proc/$1/status"; }

# rx_frames NS IF : frames IF in NS received so far (the attacker's frames on its port)
rx_frames() { nsx "$1" cat "/sys/class/net/$2/statistics/rx_packets"; }

# mark NS IF : start of an attack whose frames arrive on IF in NS: counters, CPU and the
# frame count are taken here and compared by `since` and `holds`
mark() {
    MARK_NS="$1" MARK_IF="$2"
    jstatus >"$WORK/mark.json"
    MARK_CPU="$(cpu_ms "$RELAY_PID")"
    MARK_RX="$(rx_frames "$1" "$2")"
    MARK_T="$(date +%s.%N)"
}

# since NAME : how much counter NAME grew since `mark`
since() { echo $(($(jcounter "$1") - $(jcounter "$1" "$WORK/mark.json"))); }

# expect_since NAME MIN WHAT : counter NAME grew by at least MIN since `mark` (waits 5 s)
expect_since() {
    local end=$((SECONDS + 5))
    while [ "$(since "$1")" -lt "$2" ] && [ "$SECONDS" -lt "$end" ]; do sleep 0.3; done
    [ "$(since "$1")" -ge "$2" ] || fail "$3: $1 grew by $(since "$1"), expected at least $2"
    log "$3: $1 +$(since "$1")"
}

# port_doc PORT : the port's object in status --json
port_doc() { jstatus | jq -c --arg p "$1" '.ports[] | select(.name == $p)'; }

# all_proxying WHAT : every port of the relay is proxying, loop prevention included
all_proxying() {
    local bad
    bad="$(jstatus | jq -r '.ports[] | select(.proxying != true or .loop_prevention.state != "proxying")
        | "\(.name): proxying=\(.proxying) loop_prevention=\(.loop_prevention)"')"
    [ -z "$bad" ] || fail "$1: a port stopped proxying: $bad"
}

# quarantined PORT MAC : status lists MAC as quarantined on PORT
quarantined() {
    jstatus | jq -e --arg p "$1" --arg m "$2" \
        '[.ports[] | select(.name == $p) | .quarantined // [] | .[] | .mac] | index($m) != null' >/dev/null
}

# holds WHAT [MIN] : after an attack of at least MIN frames (default 1: a tool that
# failed to send fails the test), what issue 14 asks holds (see the file's header)
holds() {
    local what="$1" min="${2:-1}" g n p a bad routes rss cpu frames secs
    secs="$(awk -v t="$MARK_T" -v n="$(date +%s.%N)" 'BEGIN {printf "%.1f", n - t}')"
    cpu=$(($(cpu_ms "$RELAY_PID") - MARK_CPU))
    frames=$(($(rx_frames "$MARK_NS" "$MARK_IF") - MARK_RX))
    rss="$(rss_kb "$RELAY_PID")"
    ATTACK_FRAMES=$((ATTACK_FRAMES + frames))
    log "measure: $what: $frames frames in ${secs} s, relay CPU ${cpu} ms, RSS ${rss} kB, $(jstatus | jq '.bindings | length') bindings"
    [ "$frames" -ge "$min" ] || fail "$what: only $frames frames reached dom0, expected at least $min (did the tool run?)"
    kill -0 "$RELAY_PID" 2>/dev/null || fail "$what: the relay died"
    [ "$rss" -le "$RSS_MAX_KB" ] || fail "$what: relay RSS $rss kB > $RSS_MAX_KB kB"
    local bound
    bound="$(awk -v f="$frames" -v s="$secs" -v u="$CPU_US_PER_FRAME" -v m="$CPU_MS_PER_SEC" 'BEGIN {print int(f * u / 1000 + s * m)}')"
    [ "$cpu" -le "$bound" ] ||
        fail "$what: relay CPU $cpu ms for $frames frames in $secs s, over ${CPU_US_PER_FRAME} us a frame + $CPU_MS_PER_SEC ms a second ($bound ms)"
    all_proxying "$what"
    for g in "${GUESTS[@]}"; do
        n="${g%%:*}" p="${g#*:}"
        a="$(addr_of "$n")"
        wait_for 10 "$what: isp reaches $n ($a)" reach "$a"
        binding_routed "$a" "$p" || fail "$what: $n ($a) not bound on $p with a route"
    done
    real_addrs >"$WORK/real.txt"
    jstatus | jq -r '.bindings[] | "\(.address) \(.mac) \(.age_secs != null)"' >"$WORK/bindings.txt"
    # Confirmed bindings (answered a solicitation or probe) only for real hosts; learning
    # from an NS's source leaves an unconfirmed, unrouted binding, at most
    # max_bindings_per_mac (64) per sender.
    bad="$(awk 'NR == FNR {real[$1] = 1; next} !($1 in real) && $3 == "true" {print $1}' "$WORK/real.txt" "$WORK/bindings.txt")"
    [ -z "$bad" ] || fail "$what: $(wc -l <<<"$bad") confirmed bindings for addresses no real host holds, e.g. $(head -n 3 <<<"$bad" | tr '\n' ' ')"
    bad="$(awk 'NR == FNR {real[$1] = 1; next} !($1 in real) {n[$2]++} END {for (m in n) if (n[m] > 64) print m, n[m]}' "$WORK/real.txt" "$WORK/bindings.txt")"
    [ -z "$bad" ] || fail "$what: more than 64 bindings of addresses nobody holds for one MAC: $bad"
    routes="$(own_routes dom0 | awk '{print $1}')"
    bad="$(grep -vxF -f "$WORK/real.txt" <<<"$routes" || true)"
    [ -z "$bad" ] || fail "$what: $(wc -l <<<"$bad") proto-199 routes no real guest holds, e.g. $(head -n 3 <<<"$bad" | tr '\n' ' ')"
}

# ns_out PCAP MAC : NS in PCAP sent from MAC
ns_out() { tcpdump -n -r "$1" "ether src $2 and icmp6 and ip6[40] == 135" 2>/dev/null | wc -l; }

# switch NAME : a namespace NAME holding bridge sw0, a plain Ethernet segment; no IPv6
# of its own, so it sends nothing
switch() {
    mkns "$1"
    nsx "$1" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.all.disable_ipv6=1
    nsx "$1" ip link add sw0 type bridge
    nsx "$1" ip link set sw0 up
}

# plug SWITCH PORT NS IF : NS's IF plugged into SWITCH's sw0 as PORT
plug() {
    veth "$1" "$2" "$3" "$4"
    nsx "$1" ip link set "$2" master sw0
}

# segment_frames SWITCH : frames entering SWITCH's segment so far (sum over its ports)
segment_frames() {
    nsx "$1" sh -c 'cat /sys/class/net/*/brport/../statistics/rx_packets' | awk '{s += $1} END {print s + 0}'
}

# HOSTILE_KEEP_GOING=1: a failed check is printed and counted and the test goes on, so one
# run shows every check a build fails (how the failures before issue 14's fixes were
# recorded); the test still fails at the end. Never set in scripts/test.sh.
FAILS=0
if [ "${HOSTILE_KEEP_GOING:-0}" = 1 ]; then
    fail() {
        printf '[%s] FAIL (going on): %s\n' "$TEST" "$*" >&2
        FAILS=$((FAILS + 1))
    }
fi

# pass : the end of a test
pass() {
    [ "$FAILS" -eq 0 ] || {
        printf '[%s] FAIL: %s checks failed\n' "$TEST" "$FAILS" >&2
        exit 1
    }
    log "PASS"
}
