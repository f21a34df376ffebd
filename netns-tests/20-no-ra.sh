#!/usr/bin/env bash
# no RA upstream (issue 16): a statically configured uplink whose router sends no RA at
# all (no radvd; a hosting provider's setup). The relay runs the minimal config
# (examples/minimal.ron with these namespaces' names); no router RA comes for its RS, so
# after timers.ra_wait (5 s) it enables br0 with its own P-bit RAs (router lifetime 0,
# no prefix) and proxies. Checks: within 20 s the router pings the statically addressed
# guest; status says why br0 is not proxying before, and proxying after; the log has the
# no-RA warning once; tcpdump on the guest's link sees the relay's RAs with P set,
# router lifetime 0 and no prefix option, and the guest's kernel takes no default route
# or address from them.
#
#   rtr (2001:db8:1::1/64, fe80::1, no radvd) --- eth0 [relay, default via fe80::1] br0
#       --- vg1 --- guest (2001:db8:1::10/64)
source "$(dirname "$0")/lib.sh"
RELAY_NS=relay
PY=/usr/bin/python3 # Debian's python, which has scapy (python3-scapy)

for tool in tcpdump ping; do
    command -v "$tool" >/dev/null || fail "$tool is missing (run: scripts/test.sh deps)"
done
"$PY" -c 'import scapy.layers.inet6' 2>/dev/null ||
    fail "scapy is missing for $PY: apt-get install python3-scapy"

mkns rtr
mkns relay
mkns guest
veth rtr r0 relay eth0
# A router by static configuration only: nothing on this link sends an RA.
nsx rtr sysctl -qw net.ipv6.conf.r0.accept_ra=0
nsx rtr ip -6 addr add 2001:db8:1::1/64 dev r0 nodad
nsx rtr ip -6 addr add fe80::1/64 dev r0 nodad
nsx relay ip link add br0 type bridge
nsx relay sysctl -qw net.ipv6.conf.br0.accept_ra=0
nsx relay ip link set br0 up
veth guest eth0 relay vg1
nsx relay ip link set vg1 master br0
nsx relay sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv6.conf.eth0.accept_ra=0
# The relay host's own static route, as a provider documents it ("gateway fe80::1").
nsx relay ip -6 route add default via fe80::1 dev eth0
nsx guest ip -6 addr add 2001:db8:1::10/64 dev eth0 nodad
GUEST=2001:db8:1::10
has_ll() { [ -n "$(nsx "$1" ip -6 -o addr show dev "$2" scope link -tentative)" ]; }
wait_for 10 "br0 link-local" has_ll relay br0
wait_for 10 "eth0 link-local" has_ll relay eth0
BR0_MAC="$(nsx relay cat /sys/class/net/br0/address)"

nsx guest tcpdump -i eth0 -p -nn -U -w "$WORK/guest.pcap" icmp6 2>/dev/null &
PIDS+=($!)
wait_for 10 "tcpdump capturing on the guest" test -s "$WORK/guest.pcap"

# Machine-readable logs (`log_format: Json`), the relay's decisions included.
EXTRA='log_format: Json,' write_config "$WORK/relay.ron" eth0 br0
RUST_LOG=info,ndprelay::decision=debug start_relay relay "$WORK/relay.ron"
START=$SECONDS

log "before the wait ends, status says why br0 does not proxy"
why="$(status --json | "$PY" -c 'import json,sys
d = json.load(sys.stdin)
p = [p for p in d["ports"] if p["name"] == "br0"][0]["loop_prevention"]
print(p["state"], (p.get("why") or {}).get("reason"))')"
case "$why" in
"enabling waiting_for_ra" | "enabling sending_ras") ;;
*) fail "br0 right after start: '$why', expected enabling with waiting_for_ra or sending_ras" ;;
esac
text="$(status)"
grep -Eq "^br0 .*enabling: (waiting for a router RA for [0-9]+s, own P-bit RAs in [0-9]+s|sending own P-bit RAs \([01] of 2\))" <<<"$text" ||
    fail "status text does not say why br0 waits: $text"

log "the router reaches the guest within 20 s of the relay's start"
reaches() { nsx rtr ping -6 -c 1 -W 1 "$GUEST"; }
wait_for 20 "rtr pings the guest ($GUEST) through the relay" reaches
log "first echo answered $((SECONDS - START)) s after start"
nsx rtr ping -6 -c 3 -i 0.3 -W 2 "$GUEST" >/dev/null || fail "rtr lost echoes to the guest once proxying"
nsx guest ping -6 -c 2 -i 0.3 -W 2 2001:db8:1::1 >/dev/null || fail "the guest cannot ping rtr"
wait_for 10 "br0 proxying" proxying br0
wait_for 10 "guest bound on br0 with a route" binding_routed "$GUEST" br0
[ "$(counter sent_own_ra)" -ge 2 ] || fail "sent_own_ra is $(counter sent_own_ra), expected at least 2"
[ "$(counter relayed_ra)" -eq 0 ] || fail "relayed_ra is $(counter relayed_ra): no router RA exists here"

log "the log says once that no RA was seen and what that means"
warn="$(grep -c 'WARN.*no router advertisement on eth0 within 5s' "$WORK/relay.log" || true)"
[ "$warn" -eq 1 ] || fail "expected the no-RA warning once in the log, found $warn"
grep -q 'no prefix and no default route from the relay' "$WORK/relay.log" ||
    fail "the warning does not say what it means for the guests"

log "log_format: Json: every line one JSON object, the warning and the decisions with their fields"
"$PY" - "$WORK/relay.log" "$GUEST" <<'PY' || fail "the JSON log is not what a pipeline can read"
import json, sys
path, guest = sys.argv[1], sys.argv[2]
lines = open(path).read().splitlines()
objs = []
for i, line in enumerate(lines, 1):
    try:
        o = json.loads(line)
    except ValueError:
        sys.exit(f"line {i} is not JSON: {line!r}")
    missing = {"ts", "level", "target", "message"} - o.keys()
    if missing:
        sys.exit(f"line {i} lacks {missing}: {line!r}")
    objs.append(o)
warn = [o for o in objs if o.get("event") == "no_router_ra"]
if len(warn) != 1 or warn[0]["level"] != "WARN" or warn[0].get("port") != "eth0":
    sys.exit(f"no_router_ra events: {warn}")
bound = [o for o in objs if o.get("event") == "binding" and o.get("address") == guest]
if not bound or bound[-1].get("port") != "br0" or bound[-1]["target"] != "ndprelay::decision":
    sys.exit(f"no binding event with its fields for {guest}: {bound}")
print(f"{len(objs)} JSON lines, {len(bound)} binding events for the guest")
PY

log "the guest's link saw the relay's own RAs: P set, lifetime 0, no prefix"
sleep 0.5
kill -INT "${PIDS[-1]}" 2>/dev/null || true
sleep 0.5
"$PY" - "$WORK/guest.pcap" "$BR0_MAC" <<'PY' || fail "the RAs on the guest's link are not the relay's own P-bit RAs"
import sys
from scapy.all import rdpcap
from scapy.layers.inet6 import ICMPv6ND_RA, ICMPv6NDOptPrefixInfo, ICMPv6NDOptSrcLLAddr
from scapy.layers.l2 import Ether

path, mac = sys.argv[1], sys.argv[2].lower()
ras = [p for p in rdpcap(path) if p.haslayer(ICMPv6ND_RA)]
print(f"{len(ras)} RAs on the guest's link")
ok = len(ras) >= 2
for p in ras:
    ra = p[ICMPv6ND_RA]
    slla = p[ICMPv6NDOptSrcLLAddr].lladdr.lower() if p.haslayer(ICMPv6NDOptSrcLLAddr) else None
    line = (f"  from {p[Ether].src} P={ra.P} M={ra.M} O={ra.O} lifetime={ra.routerlifetime} "
            f"prefix={p.haslayer(ICMPv6NDOptPrefixInfo)} slla={slla}")
    print(line)
    if (ra.P, ra.M, ra.O, ra.routerlifetime) != (1, 0, 0, 0) or p.haslayer(ICMPv6NDOptPrefixInfo):
        ok = False
    if p[Ether].src.lower() != mac or slla != mac:
        ok = False
sys.exit(0 if ok else 1)
PY
[ -z "$(nsx guest ip -6 route show default)" ] ||
    fail "the guest took a default route from a lifetime-0 RA: $(nsx guest ip -6 route show default)"
addrs="$(nsx guest ip -6 -o addr show dev eth0 scope global | awk '{print $4}' | paste -sd' ')"
[ "$addrs" = "$GUEST/64" ] || fail "the guest's global addresses are '$addrs', expected only $GUEST/64"

stop_relay
log "PASS"
