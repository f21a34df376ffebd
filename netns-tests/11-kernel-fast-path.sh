#!/usr/bin/env bash
# kernel fast path: with fast_path and fast_path_in_kernel, an eBPF program on dom0's
# uplink answers isp's NS for a freshly confirmed guest (ndisc6 sees dom0's MAC, the
# relay counts answered_by_kernel), the relay drops CAP_BPF after start, SIGHUP turns it
# off and on (the program stays loaded),
# and a SIGKILLed relay leaves no program answering behind (before Linux 6.6, where the
# program is a tc filter that outlives the process, none once its entries expired).
source "$(dirname "$0")/lib.sh"

# CAP_BPF dropped after start: the loaded program's map and links work without it.
start_bpf_relay 'fast_path: "5s", fast_path_in_kernel: true,' "$CAPS_NET"

log "ndisc6 from isp: dom0's MAC every time, mostly from the kernel"
before="$(counter answered_by_kernel)"
resolves_to_dom0 6 "fast path in the kernel"
by_kernel=$(($(counter answered_by_kernel) - before))
log "answered by the kernel: $by_kernel of 6"
# The first NS after each confirmation is the engine's; the guest re-confirms about
# once a second while asked, so at least half are the kernel's.
[ "$by_kernel" -ge 3 ] || fail "only $by_kernel of 6 NS answered by the kernel"

log "isp's own kernel resolves g1 again (answered in dom0's kernel) and reaches it"
before="$(counter answered_by_kernel)"
nsx isp ip -6 neigh flush dev isp0
nsx isp ping -6 -c 2 -i 0.3 -W 3 "$G1" >/dev/null || fail "isp cannot ping g1 after a neighbour flush"
[ "$(counter answered_by_kernel)" -gt "$before" ] || fail "isp's NS was not answered by the kernel"

log "SIGHUP with fast_path_in_kernel: false: the relay answers itself; true again: the kernel"
reload_with 'fast_path: "5s", fast_path_in_kernel: false,' 1
before="$(counter answered_by_kernel)"
resolves_to_dom0 3 "after the reload"
[ "$(counter answered_by_kernel)" -eq "$before" ] || fail "the kernel still answered after the reload"
# With a new binding limit: the loaded program keeps its map (CAP_BPF is gone).
reload_with 'fast_path: "5s", fast_path_in_kernel: true, limits: (max_bindings: 8192),' 2
resolves_to_dom0 3 "after the second reload"
[ "$(counter answered_by_kernel)" -gt "$before" ] || fail "the kernel did not answer again"

log "SIGHUP with fast_path_in_kernel not set: the loaded program keeps answering"
reload_with 'fast_path: "5s",' 3
before="$(counter answered_by_kernel)"
resolves_to_dom0 3 "after the third reload"
[ "$(counter answered_by_kernel)" -gt "$before" ] || fail "the kernel stopped answering with the default"

kill -KILL "$RELAY_PID"
wait "$RELAY_PID" 2>/dev/null || true
RELAY_PID=""
if kernel_has_tcx; then
    log "SIGKILL: the program goes with the relay (its tcx link)"
else
    # Before 6.6 the program is a tc filter, which no process owns: it stays with its
    # map until the next start replaces it (19-tc-attach), answering only while an entry
    # is fresh, at most fast_path (5 s) after the guest's last confirmation.
    log "SIGKILL: the tc filter stays (no tcx on $(uname -r)); its entries expire within fast_path"
    nsx dom0 tc filter show dev eth0 ingress | grep -q ndprelay_ns ||
        fail "expected the killed relay's ndprelay_ns filter on eth0: $(nsx dom0 tc filter show dev eth0 ingress)"
    sleep 6
fi
got="$(resolve "$G1")"
[ -z "$got" ] || fail "an NS for $G1 was still answered ($got) with the relay gone"
log "PASS"
