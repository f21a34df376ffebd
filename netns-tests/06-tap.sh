#!/usr/bin/env bash
# tap: a downstream port that is a TAP device, as a VM's virtio/vif backend is. Behind
# it, a helper process plays the hypervisor: it shuttles frames between tap0 and a veth
# into namespace g3, a plain Linux guest. g3 autoconfigures from the relayed RA, isp
# and g3 reach each other, status lists g3 on tap0 with its route.
source "$(dirname "$0")/lib.sh"

dom0_topology
mkns g3
veth g3 eth0 dom0 tg
nsx dom0 sysctl -qw net.ipv6.conf.tg.disable_ipv6=1
nsx dom0 ip tuntap add dev tap0 mode tap
nsx dom0 ip link set tap0 up
# The "hypervisor": tap0 <-> tg, frame for frame.
ip netns exec "$(ns dom0)" python3 - <<'PY' &
import fcntl, os, select, socket, struct
TUNSETIFF, IFF_TAP, IFF_NO_PI = 0x400454CA, 0x0002, 0x1000
tap = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tap, TUNSETIFF, struct.pack("16sH", b"tap0", IFF_TAP | IFF_NO_PI))
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
raw.bind(("tg", 0))
while True:
    for fd in select.select([tap, raw], [], [])[0]:
        if fd == tap:
            raw.send(os.read(tap, 65536))
        else:
            data, addr = raw.recvfrom(65536)
            if addr[2] != socket.PACKET_OUTGOING:
                os.write(tap, data)
PY
PIDS+=($!)
wait_for 10 "tap0 carrier" sh -c "ip -n $(ns dom0) link show tap0 | grep -q LOWER_UP"

write_config "$WORK/relay.ron" eth0 br0 tap0
start_relay dom0 "$WORK/relay.ron"
wait_for 30 "g3 global address through the TAP" has_global g3 eth0
wait_for 30 "tap0 proxying" proxying tap0
G3="$(global_addr g3 eth0)"
wait_for 15 "isp reaches g3" nsx isp ping -6 -c 1 -W 1 "$G3"
nsx g3 ping -6 -c 2 -i 0.3 -W 2 2001:db8:1::1 >/dev/null || fail "g3 cannot reach isp"
wait_for 10 "g3 routed on tap0" binding_routed "$G3" tap0
owns_route dom0 "^$G3 dev tap0" || fail "no route for $G3 via tap0"
stop_relay
log "PASS"
