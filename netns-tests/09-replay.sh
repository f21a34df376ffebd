#!/usr/bin/env bash
# replay: the dom0 relay runs with --dump while tcpdump captures its ports; after real ND
# traffic (radvd RAs, SLAAC guests, pings and ndisc6 from isp) both captures are replayed
# and replay must reach the decisions the live relay made.
#
# Comparison rule. Keys are `port type ip-src ip-dst target lla` (nd_frames.py). LIVE is
# what the relay sent: the frames in its dump whose source is the port's own MAC (the
# dump holds received frames plus the relay's own sends; the host kernel's frames never
# reach the relay). It must be byte for byte in tcpdump's captures too. Replay's
# --output must then hold the same multiset of keys for every frame relayed in answer to
# an input frame (NS, NA, RS, Redirect relayed across, RAs relayed downstream). Frames
# the relay originates on timers (its own probes, proxy announcements, retransmits) are
# keyed the same way but may differ at the edges: replay's clock starts at the first
# captured frame, the live engine's at start-up, so a timer due just before the capture
# ended fires in one run and not the other. Those are compared by count with a small
# tolerance, and any difference is printed.
source "$(dirname "$0")/lib.sh"
PY="$ROOT/netns-tests/nd_frames.py"

dom0_topology
for p in eth0 br0; do
    # --immediate-mode: without it libpcap hands frames over a block at a time, and the
    # frames of the last block before SIGINT never reach the file.
    ip netns exec "$(ns dom0)" tcpdump -i "$p" -p -nn -U --immediate-mode -w "$WORK/$p.pcap" icmp6 2>/dev/null &
    PIDS+=($!)
done
# tcpdump writes its file header once capturing; the relay's first frames (its RS at
# start) must not go out before that, or the dump has frames tcpdump never saw.
for p in eth0 br0; do
    wait_for 10 "tcpdump capturing on $p" test -s "$WORK/$p.pcap"
done
EXTRA="seed: 7," write_config "$WORK/relay.ron" eth0 br0
ip netns exec "$(ns dom0)" env RUST_LOG=info "$NDPRELAY" run -c "$WORK/relay.ron" --dump "$WORK/dump" >>"$WORK/relay.log" 2>&1 &
RELAY_PID=$!
wait_for 10 "relay control socket" status_ok

log "guests autoconfigure, isp and guests talk, isp resolves g1 with ndisc6"
wait_for 30 "g1 global address" has_global g1 eth0
wait_for 30 "g2 global address" has_global g2 eth0
G1="$(global_addr g1 eth0)"
G2="$(global_addr g2 eth0)"
nsx isp ping -6 -c 3 -i 0.3 -W 3 "$G1" >/dev/null || fail "isp cannot ping g1 ($G1)"
nsx isp ping -6 -c 3 -i 0.3 -W 3 "$G2" >/dev/null || fail "isp cannot ping g2 ($G2)"
nsx g1 ping -6 -c 2 -i 0.3 -W 3 2001:db8:1::1 >/dev/null || fail "g1 cannot ping isp"
nsx isp ndisc6 -1 -r 3 -w 1500 "$G1" isp0 >/dev/null || fail "ndisc6 from isp got no answer for $G1"
sleep 1

stop_relay
for p in "${PIDS[@]:1:2}"; do kill -INT "$p" 2>/dev/null || true; done
sleep 0.5
MAC_UP="$(nsx dom0 cat /sys/class/net/eth0/address)"
MAC_BR="$(nsx dom0 cat /sys/class/net/br0/address)"
DUMPS=("$WORK"/dump/ndprelay-*.pcapng)
[ "${#DUMPS[@]}" -eq 1 ] || fail "expected one dump file, got: ${DUMPS[*]}"
DUMP="${DUMPS[0]}"

python3 "$PY" list --sent-by-port-mac "$DUMP" >"$WORK/live.keys"
log "dump: $(python3 "$PY" list "$DUMP" | wc -l) ND frames, $(wc -l <"$WORK/live.keys") sent by the relay"
grep -q "^br0 NS 2001:db8:1::1 .* $G1 slla=$MAC_BR\$" "$WORK/live.keys" ||
    fail "the dump lacks the NS for g1 relayed to br0 with slla $MAC_BR: $(cat "$WORK/live.keys")"
grep -q "^eth0 NA $G1 .* $G1 tlla=$MAC_UP\$" "$WORK/live.keys" ||
    fail "the dump lacks g1's NA relayed to eth0 with tlla $MAC_UP: $(cat "$WORK/live.keys")"

log "every dumped frame, received or sent, is byte for byte in tcpdump's captures"
python3 "$PY" list --raw "$DUMP" | sort >"$WORK/dump.raw"
python3 "$PY" list --raw eth0="$WORK/eth0.pcap" br0="$WORK/br0.pcap" | sort >"$WORK/tcpdump.raw"
missing="$(comm -23 "$WORK/dump.raw" "$WORK/tcpdump.raw" | wc -l)"
[ "$missing" -eq 0 ] || fail "$missing dumped frames are not in tcpdump's captures:
$(comm -23 "$WORK/dump.raw" "$WORK/tcpdump.raw" | head -5)"

# The relay's own addresses: what it originates (RS, probes) comes from these.
OWN="$(nsx dom0 ip -6 -o addr show scope link | awk '$2 == "eth0" || $2 == "br0" {print $4}' | cut -d/ -f1 | paste -sd,)"

log "replay (a): the tcpdump captures reach the live relay's decisions"
# --cold-start: both captures begin before the relay started, so replay starts from
# zero as the live relay did (RS, two P-bit RAs before proxying).
"$NDPRELAY" replay --cold-start -c "$WORK/relay.ron" --input eth0="$WORK/eth0.pcap" --input br0="$WORK/br0.pcap" \
    --mac eth0="$MAC_UP" --mac br0="$MAC_BR" --output "$WORK/replay-tcpdump.pcapng" \
    >"$WORK/replay-tcpdump.txt" 2>"$WORK/replay-tcpdump.err" ||
    fail "replay of tcpdump captures failed: $(cat "$WORK/replay-tcpdump.err")"
python3 "$PY" compare --own "$OWN" "$DUMP" "$WORK/replay-tcpdump.pcapng" ||
    fail "replay of the tcpdump captures decided differently from the live relay"
grep -q "relayed to br0" "$WORK/replay-tcpdump.txt" || fail "listing shows no relay decision"
grep -Eq "^ +$G1 +br0 .* routed" "$WORK/replay-tcpdump.txt" ||
    fail "replay did not end with g1 bound and routed on br0: $(tail -12 "$WORK/replay-tcpdump.txt")"

log "replay (b): the dump alone, MACs from its interface descriptions"
"$NDPRELAY" replay --cold-start -c "$WORK/relay.ron" --input "$DUMP" --output "$WORK/replay-dump.pcapng" \
    >"$WORK/replay-dump.txt" 2>"$WORK/replay-dump.err" ||
    fail "replay of the dump failed: $(cat "$WORK/replay-dump.err")"
for m in "eth0: relay MAC $MAC_UP" "br0: relay MAC $MAC_BR"; do
    grep -q "port $m (from the capture's interface description)" "$WORK/replay-dump.err" ||
        fail "replay did not take $m from the dump: $(cat "$WORK/replay-dump.err")"
done
python3 "$PY" compare --own "$OWN" "$DUMP" "$WORK/replay-dump.pcapng" ||
    fail "replay of the dump decided differently from the live relay"

log "tshark decodes every frame replay wrote, with good ICMPv6 checksums"
for out in replay-tcpdump replay-dump; do
    n="$(python3 "$PY" list "$WORK/$out.pcapng" | wc -l)"
    tshark -r "$WORK/$out.pcapng" -T fields -e frame.interface_name -e icmpv6.type -e icmpv6.checksum.status \
        >"$WORK/$out.tshark" 2>"$WORK/$out.tshark.err" || fail "tshark cannot read $out: $(cat "$WORK/$out.tshark.err")"
    [ "$(wc -l <"$WORK/$out.tshark")" -eq "$n" ] || fail "tshark read $(wc -l <"$WORK/$out.tshark") frames of $out, expected $n"
    bad="$(awk -F'\t' '!($1 == "eth0" || $1 == "br0") || $2 < 133 || $2 > 137 || $3 != 1' "$WORK/$out.tshark")"
    [ -z "$bad" ] || fail "tshark on $out: $bad"
done
log "PASS"
