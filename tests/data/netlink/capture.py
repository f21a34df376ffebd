#!/usr/bin/python3
"""Captures the rtnetlink answers that src/live/netlink.rs's unit tests parse.

Run as root: `bash tests/data/netlink/capture.sh` (it builds the namespace and runs this
inside). Each .bin file is the concatenation of the kernel's datagrams for one request
(every datagram holds whole, aligned messages, so the concatenation is a valid stream).
"""
import os
import socket
import struct
import subprocess
import sys

OUT = os.path.dirname(os.path.abspath(__file__))
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_GETLINK, RTM_GETADDR, RTM_NEWROUTE, RTM_GETROUTE = 16, 18, 22, 24, 26
AF_INET6 = 10
RTA_DST, RTA_OIF = 1, 4
RTM_F_FIB_MATCH = 0x2000


def nlmsg(ty, flags, seq, body):
    return struct.pack("=IHHII", 16 + len(body), ty, flags, seq, 0) + body


def attr(ty, data):
    a = struct.pack("=HH", 4 + len(data), ty) + data
    return a + b"\0" * (-len(a) % 4)


def ask(msg, seq, dump):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    s.bind((0, 0))
    s.send(msg)
    out = b""
    while True:
        d = s.recv(1 << 16)
        out += d
        off, end = 0, False
        while off + 16 <= len(d):
            ln, ty, _fl, sq, _pid = struct.unpack_from("=IHHII", d, off)
            if sq == seq and (ty == NLMSG_DONE or ty == NLMSG_ERROR or not dump):
                end = True
            off += (ln + 3) & ~3
        if end:
            return out


def save(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    print(f"{name}: {len(data)} bytes")


def host_route(ty, flags, seq, addr, oif, proto):
    rtm = struct.pack("=BBBBBBBBI", AF_INET6, 128, 0, 0, 254, proto, 0, 1, 0)
    body = rtm + attr(RTA_DST, socket.inet_pton(socket.AF_INET6, addr))
    body += attr(RTA_OIF, struct.pack("=I", oif))
    return nlmsg(ty, flags, seq, body)


def lookup(seq, addr):
    rtm = struct.pack("=BBBBBBBBI", AF_INET6, 128, 0, 0, 0, 0, 0, 0, RTM_F_FIB_MATCH)
    body = rtm + attr(RTA_DST, socket.inet_pton(socket.AF_INET6, addr))
    return nlmsg(RTM_GETROUTE, NLM_F_REQUEST, seq, body)


def main():
    d0 = socket.if_nametoindex("d0")
    save("links.bin", ask(nlmsg(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, bytes(16)), 1, True))
    ifaddr = struct.pack("=BBBBI", AF_INET6, 0, 0, 0, 0)
    save("addrs.bin", ask(nlmsg(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 2, ifaddr), 2, True))
    rtm = struct.pack("=BBBBBBBBI", AF_INET6, 0, 0, 0, 0, 0, 0, 0, 0)
    save("routes.bin", ask(nlmsg(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, 3, rtm), 3, True))
    save("lookup_static.bin", ask(lookup(4, "2001:db8::7"), 4, False))
    save("lookup_prefix.bin", ask(lookup(5, "2001:db8::9"), 5, False))
    save("lookup_unreachable.bin", ask(lookup(6, "2001:db9::1"), 6, False))
    create = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    save("create_exists.bin", ask(host_route(RTM_NEWROUTE, create, 7, "2001:db8::7", d0, 199), 7, False))
    save("create_done.bin", ask(host_route(RTM_NEWROUTE, create, 8, "2001:db8::a", d0, 199), 8, False))
    # Link and address events: join RTNLGRP_LINK (1) and RTNLGRP_IPV6_IFADDR (9).
    mon = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    mon.bind((0, (1 << 0) | (1 << 8)))
    for cmd in (
        "ip link set d1 mtu 1400",
        "ip -6 addr add 2001:db8::2/64 dev d1 nodad",
        "ip -6 addr del 2001:db8::2/64 dev d1",
        "ip link del d1",
    ):
        subprocess.run(cmd.split(), check=True)
    mon.setblocking(False)
    events = b""
    while True:
        try:
            events += mon.recv(1 << 16)
        except BlockingIOError:
            break
    save("events.bin", events)


if __name__ == "__main__":
    sys.exit(main())
