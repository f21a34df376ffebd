"""Exact hostile ND frames for the attack tests (16, 17, 18), built with scapy.

Run with the system python that has scapy (/usr/bin/python3), inside the attacker's
namespace. Every frame goes out of the one interface named on the command line; targets
and sources are drawn from the prefix given (the tests pass 2001:db8:1::/64), with a
fixed seed so a run is repeatable. Frames are built before sending and then paced, so
the send rate is what the test asks for and not what scapy's build speed allows.

    hostile.py pbit-ra IFACE SRC_MAC SRC_LL COUNT
    hostile.py ns IFACE SRC_MAC SRC TARGET
    hostile.py na IFACE SRC_MAC DST_MAC DST TARGET FLAGS   (FLAGS: letters of R, S, O)
    hostile.py na-flood IFACE DST_MAC DST PREFIX COUNT RATE
    hostile.py ns-flood IFACE PREFIX COUNT RATE
"""

import ipaddress
import random
import socket
import struct
import sys
import time

from scapy.layers.inet6 import (
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.layers.l2 import Ether


def sock(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((ifname, 0))
    return s


def own_mac(ifname):
    return open(f"/sys/class/net/{ifname}/address").read().strip()


def random_in(prefix, rng):
    net = ipaddress.IPv6Network(prefix)
    # Interface identifiers only: never the subnet-router anycast (::0) of the prefix.
    host = rng.randrange(1, 2 ** (128 - net.prefixlen))
    return str(net.network_address + host)


def solicited_node(addr):
    last = ipaddress.IPv6Address(addr).packed[-3:]
    group = ipaddress.IPv6Address(bytes.fromhex("ff0200000000000000000001ff") + last)
    mac = "33:33:ff:" + ":".join(f"{b:02x}" for b in last)
    return str(group), mac


def checksum(data):
    """The Internet checksum (RFC 1071) of DATA (even length)."""
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


# Offsets in an untagged Ethernet frame carrying IPv6 + ICMPv6 (no extension headers).
ETH_DST, ETH_SRC, IP6_SRC, IP6_DST, ICMP, ND_TARGET = 0, 6, 22, 38, 54, 62


def patched(template, fields):
    """TEMPLATE with FIELDS ({offset: bytes}) written in and the ICMPv6 checksum redone.

    scapy builds about a hundred frames a second on this shared machine (2000 took 22 s
    under load), too slow for 20000 frames; so scapy builds one exact frame and the flood
    reuses it with other addresses (floods compare frames with scapy's own build).
    """
    f = bytearray(template)
    for off, value in fields.items():
        f[off : off + len(value)] = value
    f[ICMP + 2 : ICMP + 4] = b"\0\0"
    icmp = bytes(f[ICMP:])
    pseudo = f[IP6_SRC:ICMP] + struct.pack("!I3xB", len(icmp), 58)
    f[ICMP + 2 : ICMP + 4] = struct.pack("!H", checksum(bytes(pseudo) + icmp))
    return bytes(f)


def send_paced(s, frames, rate):
    """Sends frames at about RATE per second (in bursts of 1/100 s)."""
    start = time.monotonic()
    batch = max(1, rate // 100)
    for i in range(0, len(frames), batch):
        for f in frames[i : i + batch]:
            try:
                s.send(f)
            except OSError:
                # A full socket buffer (ENOBUFS): the frame is lost, as on a busy link.
                pass
        due = start + (i + batch) / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    return time.monotonic() - start


def pbit_ra(ifname, src_mac, src_ll, count):
    """RAs with the Proxy bit (RFC 4389 §4.1.3.3), as another proxy would send them."""
    frame = bytes(
        Ether(src=src_mac, dst="33:33:00:00:00:01")
        / IPv6(src=src_ll, dst="ff02::1", hlim=255)
        / ICMPv6ND_RA(P=1, routerlifetime=1800)
        / ICMPv6NDOptSrcLLAddr(lladdr=src_mac)
        / ICMPv6NDOptPrefixInfo(prefix="2001:db8:1::", prefixlen=64, L=1, A=1)
    )
    s = sock(ifname)
    for _ in range(count):
        s.send(frame)
        time.sleep(0.2)


def ns(ifname, src_mac, src, target):
    group, mac = solicited_node(target)
    frame = (
        Ether(src=src_mac, dst=mac)
        / IPv6(src=src, dst=group, hlim=255)
        / ICMPv6ND_NS(tgt=target)
        / ICMPv6NDOptSrcLLAddr(lladdr=src_mac)
    )
    sock(ifname).send(bytes(frame))


def na(ifname, src_mac, dst_mac, dst, target, flags):
    frame = (
        Ether(src=src_mac, dst=dst_mac)
        / IPv6(src=target, dst=dst, hlim=255)
        / ICMPv6ND_NA(tgt=target, R="R" in flags, S="S" in flags, O="O" in flags)
        / ICMPv6NDOptDstLLAddr(lladdr=src_mac)
    )
    sock(ifname).send(bytes(frame))


def v6(addr):
    return ipaddress.IPv6Address(addr).packed


def na_frame(mac, dst_mac, dst, target):
    return bytes(
        Ether(src=mac, dst=dst_mac)
        / IPv6(src=target, dst=dst, hlim=255)
        / ICMPv6ND_NA(tgt=target, S=1, O=1)
        / ICMPv6NDOptDstLLAddr(lladdr=mac)
    )


def na_flood(ifname, dst_mac, dst, prefix, count, rate):
    """Unsolicited NAs with S=1 for random targets, unicast to the relay (issue 14 #2)."""
    rng = random.Random(14002)
    mac = own_mac(ifname)
    targets = [random_in(prefix, rng) for _ in range(count)]
    template = na_frame(mac, dst_mac, dst, targets[0])
    frames = [patched(template, {IP6_SRC: v6(t), ND_TARGET: v6(t)}) for t in targets]
    assert frames[0] == template, "patched NA differs from scapy's"
    assert frames[-1] == na_frame(mac, dst_mac, dst, targets[-1]), "patched NA differs"
    took = send_paced(sock(ifname), frames, rate)
    print(f"sent {count} NAs in {took:.2f} s", flush=True)


def ns_frame(mac, src, target):
    group, gmac = solicited_node(target)
    return bytes(
        Ether(src=mac, dst=gmac)
        / IPv6(src=src, dst=group, hlim=255)
        / ICMPv6ND_NS(tgt=target)
        / ICMPv6NDOptSrcLLAddr(lladdr=mac)
    )


def ns_flood(ifname, prefix, count, rate):
    """NS from spoofed in-prefix sources for random targets (issue 14 #5)."""
    rng = random.Random(14005)
    mac = own_mac(ifname)
    pairs = [(random_in(prefix, rng), random_in(prefix, rng)) for _ in range(count)]
    template = ns_frame(mac, *pairs[0])
    frames = []
    for src, target in pairs:
        group, gmac = solicited_node(target)
        fields = {
            ETH_DST: bytes.fromhex(gmac.replace(":", "")),
            IP6_SRC: v6(src),
            IP6_DST: v6(group),
            ND_TARGET: v6(target),
        }
        frames.append(patched(template, fields))
    assert frames[0] == template, "patched NS differs from scapy's"
    assert frames[-1] == ns_frame(mac, *pairs[-1]), "patched NS differs from scapy's"
    print(f"built {count} NS", flush=True)
    took = send_paced(sock(ifname), frames, rate)
    print(f"sent {count} NS in {took:.2f} s", flush=True)


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "pbit-ra":
        pbit_ra(args[0], args[1], args[2], int(args[3]))
    elif cmd == "ns":
        ns(*args)
    elif cmd == "na":
        na(*args)
    elif cmd == "na-flood":
        na_flood(args[0], args[1], args[2], args[3], int(args[4]), int(args[5]))
    elif cmd == "ns-flood":
        ns_flood(args[0], args[1], int(args[2]), int(args[3]))
    else:
        sys.exit(f"unknown command {cmd}; see the docstring of {argv[0]}")


if __name__ == "__main__":
    main(sys.argv)
