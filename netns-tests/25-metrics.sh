#!/usr/bin/env bash
# metrics_listen: the relay in dom0 serves GET /metrics on [::1]:9630. After the guests
# configured and isp resolved and pinged them, a scrape parses with Debian's
# python3-prometheus-client and agrees with `status --json` (relayed NS, NS->NA
# histogram count, br0's two bindings by state); `status --prometheus` parses too; other
# paths get 404 and POST 405; the listener is not reachable from isp nor on dom0's own
# uplink address. Under a bounded 20k NS/s scan from isp (ns_load, 4 s: 80000 NS) every
# scrape is answered within 100 ms. A second relay whose metrics_listen is taken stops at
# start naming the key, leaving nothing behind.
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3 # Debian's, with python3-prometheus-client
HELPER="$(dirname "$0")/metrics.py"
NS_LOAD="${NS_LOAD:-$(dirname "$NDPRELAY")/examples/ns_load}"
$PY -c 'import prometheus_client' 2>/dev/null ||
    fail "needs python3-prometheus-client (scripts/test.sh deps)"
[ -x "$NS_LOAD" ] || fail "needs $NS_LOAD: cargo build --release --example ns_load"
URL='http://[::1]:9630/metrics'

dom0_topology
EXTRA='metrics_listen: "[::1]:9630",' write_config "$WORK/relay.ron" eth0 br0
start_relay dom0 "$WORK/relay.ron"
grep -q 'metrics on http://\[::1\]:9630/metrics' "$WORK/relay.log" || fail "no log line for the listener"

log "guests configure; isp resolves and pings them (NS relayed, answers relayed back)"
wait_for 30 "g1 global address" has_global g1 eth0
wait_for 30 "g2 global address" has_global g2 eth0
wait_for 30 "br0 proxying" proxying br0
G1="$(global_addr g1 eth0)"
G2="$(global_addr g2 eth0)"
nsx isp ping -6 -c 3 -i 0.3 -W 3 "$G1" >/dev/null || fail "isp cannot ping g1 ($G1)"
nsx isp ping -6 -c 3 -i 0.3 -W 3 "$G2" >/dev/null || fail "isp cannot ping g2 ($G2)"
wait_for 10 "g1 binding with route" binding_routed "$G1" br0
wait_for 10 "g2 binding with route" binding_routed "$G2" br0
for a in "$G1" "$G2"; do nsx isp ndisc6 -1 -r 3 -w 1000 "$a" isp0 >/dev/null || fail "ndisc6 $a"; done

log "a scrape parses and agrees with status --json"
nsx dom0 $PY "$HELPER" check "$URL" "$NDPRELAY" "$WORK/ctl.sock" >"$WORK/check.txt" 2>&1 ||
    fail "scrape check: $(cat "$WORK/check.txt")"
log "$(cat "$WORK/check.txt")"

log "capabilities: the metrics thread and the HTTP server's threads hold none"
every_task_caps "$CAPS_NET"
[[ " $TASKS " == *" metrics:"* ]] || fail "no metrics thread among:$TASKS"
for t in /proc/"$RELAY_PID"/task/*; do
    # Only the daemon thread (the main one) keeps CAP_NET_RAW and CAP_NET_ADMIN; the
    # HTTP server's threads are unnamed (they show the process name).
    [ "${t##*/}" = "$RELAY_PID" ] && continue
    eff="$(awk '$1 == "CapEff:" {print $2}' "$t/status" 2>/dev/null)" || continue
    [ -z "$eff" ] || [ "$eff" = 0000000000000000 ] || fail "thread $(cat "$t/comm") ${t##*/} holds $eff"
done
log "threads:$TASKS"

log "status --prometheus prints the same format (textfile collector)"
status --prometheus >"$WORK/ndprelay.prom" || fail "status --prometheus failed"
$PY "$HELPER" textfile "$WORK/ndprelay.prom" >"$WORK/textfile.txt" 2>&1 ||
    fail "status --prometheus does not parse: $(cat "$WORK/textfile.txt")"
status --prometheus --json >/dev/null 2>&1 && fail "--prometheus with --json accepted"
nsx dom0 curl -sS "$URL" >"$WORK/scrape.prom" || fail "curl scrape"
diff <(grep '^# ' "$WORK/ndprelay.prom") <(grep '^# ' "$WORK/scrape.prom") >/dev/null ||
    fail "status --prometheus and /metrics have different families"

log "404 elsewhere, 405 for POST"
[ "$(nsx dom0 $PY "$HELPER" code GET 'http://[::1]:9630/')" = 404 ] || fail "GET / is not 404"
[ "$(nsx dom0 $PY "$HELPER" code GET 'http://[::1]:9630/metricsx')" = 404 ] || fail "GET /metricsx is not 404"
[ "$(nsx dom0 $PY "$HELPER" code POST "$URL")" = 405 ] || fail "POST /metrics is not 405"

log "bound to loopback: not reachable from isp, nor on dom0's uplink address"
DOM0_LL="$(nsx dom0 ip -6 -o addr show dev eth0 scope link | awk 'NR == 1 {split($4, a, "/"); print a[1]}')"
nsx isp curl -sS -m 2 "http://[$DOM0_LL%isp0]:9630/metrics" >/dev/null 2>&1 &&
    fail "isp reached the metrics listener on $DOM0_LL"
nsx dom0 curl -sS -m 2 "http://[$DOM0_LL%eth0]:9630/metrics" >/dev/null 2>&1 &&
    fail "the listener answers on dom0's uplink address $DOM0_LL"
nsx dom0 curl -sS -m 2 "$URL" >/dev/null || fail "but it answers on [::1]"

log "scrapes during a 20k NS/s scan from isp (4 s, 80000 NS)"
RX0="$(status --json | jq '.counters.rx_frames')"
nsx isp "$NS_LOAD" isp0 2001:db8:1::1 scan 20000 4 2001:db8:1:: "$G1" "$G2" >"$WORK/scan.json" 2>&1 &
LOAD_PID=$!
PIDS+=("$LOAD_PID")
sleep 0.5
nsx dom0 $PY "$HELPER" latency "$URL" 3 >"$WORK/latency.txt" 2>&1 || fail "scrapes during the scan: $(cat "$WORK/latency.txt")"
wait "$LOAD_PID" || fail "ns_load failed: $(cat "$WORK/scan.json")"
RX1="$(status --json | jq '.counters.rx_frames')"
read -r N MEDIAN MAX _ <"$WORK/latency.txt"
log "scan: $(cat "$WORK/scan.json")"
log "relay received $((RX1 - RX0)) frames; $N scrapes: median ${MEDIAN} ms, max ${MAX} ms ($(cut -d' ' -f4- "$WORK/latency.txt") ms)"
[ "$((RX1 - RX0))" -ge 40000 ] || fail "the scan did not reach the relay ($((RX1 - RX0)) frames)"
[ "$N" -ge 15 ] || fail "only $N scrapes in 3 s"
awk -v m="$MAX" 'BEGIN {exit !(m < 100)}' ||
    fail "slowest scrape took $MAX ms (bound 100 ms; load average $(cut -d' ' -f1-3 /proc/loadavg))"

log "SIGHUP with another metrics_listen: the listener stays, a restart is asked for"
reload_with 'metrics_listen: "[::1]:9631",' 1
grep -q "metrics_listen changes take effect at the next start" "$WORK/relay.log" ||
    fail "no WARN about the metrics_listen change"
nsx dom0 curl -sS -m 2 "$URL" >/dev/null || fail "the listener went away on reload"
stop_relay

log "a taken metrics_listen stops the start, naming the key"
nsx dom0 $PY -c '
import socket, sys, time
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the scrapes in TIME_WAIT
s.bind(("::1", 9630)); s.listen()
open(sys.argv[1], "w").close()
time.sleep(30)
' "$WORK/taken" &
PIDS+=($!)
wait_for 5 "port 9630 taken" test -e "$WORK/taken"
EXTRA='metrics_listen: "[::1]:9630",' write_config "$WORK/relay.ron" eth0 br0
if nsx dom0 "$NDPRELAY" run -c "$WORK/relay.ron" >"$WORK/taken.log" 2>&1; then
    fail "started with its metrics port taken"
fi
grep -q 'cannot listen on \[::1\]:9630 for metrics (`metrics_listen`' "$WORK/taken.log" ||
    fail "the error does not name metrics_listen: $(cat "$WORK/taken.log")"
log "$(grep error "$WORK/taken.log")"
[ -z "$(own_routes dom0)" ] || fail "routes left behind: $(own_routes dom0)"
nsx dom0 nft list table netdev ndprelay >/dev/null 2>&1 && fail "guard table left behind"
[ ! -e "$WORK/ctl.sock" ] || fail "control socket left behind"
log "PASS"
