#!/usr/bin/env bash
# Bad input: a missing interface, a config error, a missing capability (also CAP_BPF
# for fast_path_in_kernel and relay_in_kernel) and a wrong sysctl each stop the start
# with one clear message naming the fix, a non-zero exit,
# and nothing left behind (no route, no nf_tables guard, no control socket).
source "$(dirname "$0")/lib.sh"

mkns r
mkns peer
veth r eth0 peer p0
nsx r ip link add br0 type bridge
nsx r ip link set br0 up
nsx r sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv6.conf.eth0.accept_ra=2

# expect_refusal NAME PATTERN CMD... : CMD (run in namespace r) must fail fast, print
# PATTERN and leave nothing behind
expect_refusal() {
    local name="$1" pattern="$2"
    shift 2
    local out rc=0
    out="$(ip netns exec "$(ns r)" timeout 10 "$@" 2>&1)" || rc=$?
    [ "$rc" -ne 0 ] || fail "$name: the relay started (exit 0); output: $out"
    [ "$rc" -ne 124 ] || fail "$name: the relay hung instead of refusing"
    echo "$out" | grep -Eq -- "$pattern" || fail "$name: message lacks /$pattern/: $out"
    [ -z "$(nsx r ip -6 route show proto 199)" ] || fail "$name: routes left behind"
    nsx r nft list table netdev ndprelay >/dev/null 2>&1 && fail "$name: guard left behind"
    [ ! -e "$WORK/ctl.sock" ] || fail "$name: control socket left behind"
    log "$name: refused with: $(echo "$out" | grep -E -- "$pattern" | head -n1)"
}

write_config "$WORK/missing.ron" eth0 br0 vm7
expect_refusal "missing interface" 'downstream port "vm7" does not exist' \
    "$NDPRELAY" run -c "$WORK/missing.ron"

printf '(\n    uplink: "eth0",\n    downstream: ["br0"],\n    prefixes: ["2001:db8:1::/129"],\n)\n' >"$WORK/bad.ron"
expect_refusal "config error" 'bad\.ron:4:' "$NDPRELAY" run -c "$WORK/bad.ron"

write_config "$WORK/ok.ron" eth0 br0
expect_refusal "missing capability" 'CAP_NET_(RAW|ADMIN).*setcap' \
    setpriv --inh-caps=-all --bounding-set=-net_raw,-net_admin "$NDPRELAY" run -c "$WORK/ok.ron"

EXTRA='fast_path: "2s", fast_path_in_kernel: true,' write_config "$WORK/kernel.ron" eth0 br0
expect_refusal "fast_path_in_kernel without CAP_BPF" 'CAP_BPF.*fast_path_in_kernel' \
    setpriv --inh-caps=-all --bounding-set=-bpf "$NDPRELAY" run -c "$WORK/kernel.ron"
EXTRA='relay_in_kernel: true,' write_config "$WORK/kernel-relay.ron" eth0 br0
expect_refusal "relay_in_kernel without CAP_BPF" 'CAP_BPF.*relay_in_kernel' \
    setpriv --inh-caps=-all --bounding-set=-bpf "$NDPRELAY" run -c "$WORK/kernel-relay.ron"

nsx r sysctl -qw net.ipv6.conf.br0.proxy_ndp=1
expect_refusal "proxy_ndp on a port" 'sysctl -w net\.ipv6\.conf\.br0\.proxy_ndp=0' \
    "$NDPRELAY" run -c "$WORK/ok.ron"
nsx r sysctl -qw net.ipv6.conf.br0.proxy_ndp=0

nsx r sysctl -qw net.ipv6.conf.all.forwarding=0
expect_refusal "forwarding off" 'sysctl -w net\.ipv6\.conf\.all\.forwarding=1' \
    "$NDPRELAY" run -c "$WORK/ok.ron"

log "with fix_sysctls the relay fixes them itself"
nsx r sysctl -qw net.ipv6.conf.br0.proxy_ndp=1
EXTRA="fix_sysctls: true," write_config "$WORK/fix.ron" eth0 br0
RELAY_NS=r start_relay r "$WORK/fix.ron"
[ "$(nsx r sysctl -n net.ipv6.conf.all.forwarding)" = 1 ] || fail "forwarding not fixed"
[ "$(nsx r sysctl -n net.ipv6.conf.br0.proxy_ndp)" = 0 ] || fail "proxy_ndp not fixed"
log "a second relay on the same control socket is refused, the first keeps running"
expect_refusal_running() {
    local out rc=0
    out="$(ip netns exec "$(ns r)" timeout 10 "$NDPRELAY" run -c "$WORK/fix.ron" 2>&1)" || rc=$?
    [ "$rc" -ne 0 ] && echo "$out" | grep -q "in use" || fail "second relay not refused: $out"
}
expect_refusal_running
RELAY_NS=r status_ok || fail "first relay stopped answering"
stop_relay
log "PASS"
