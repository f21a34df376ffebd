#!/usr/bin/python3
"""Differential check of ndprelay's ND validation against the Linux kernel (13-differential.sh).

One labelled corpus of Ethernet frames (valid and malformed NS, NA, RS, RA and Redirect,
NDP-REFERENCE.md §4/§5) goes through two implementations:

  differential.py pcap DIR
      Writes the corpus for `ndprelay replay`: DIR/down.pcap holds NS, NA and RS (as a
      guest sends them), DIR/up.pcap RA and Redirect (as the uplink router sends them),
      one frame per hour of capture time so no engine state carries from one to the next
      (up.pcap starts with a valid RA that enables the downstream port);
      DIR/index.txt maps `file:frame-number` to the frame's label.
  differential.py kernel --host-ns NS --iface IF
      Run inside the sender namespace: sends every frame on IF (a veth whose peer, in
      namespace NS, is the kernel under test) and prints one JSON line per frame with the
      kernel's verdict: accept (an observable effect, see KERNEL_EFFECT) or ignore, and
      what was seen. State is reset before each frame.
  differential.py compare KERNEL.jsonl REPLAY.jsonl INDEX EXPECTED [--table OUT.md]
      Joins both verdicts per frame, prints the table and exits 1 when a row differs
      from EXPECTED (differential_expected.txt): a new disagreement, or an expected one
      that is gone, both need a look and an update of docs/differential-nd.md.
  differential.py expected KERNEL.jsonl REPLAY.jsonl INDEX
      Prints what EXPECTED would be for this run (to regenerate it after a reviewed change).

Kernel verdict per message (what a host kernel visibly does with a frame it accepts):
  NS   to the host's own address: answers with an NA for the target.
  NA   for a target with a STALE neighbour entry: updates the entry (lladdr or state).
  RS   (receiving interface forwarding=1): creates a neighbour entry for the source.
  RA   (accept_ra=1, forwarding=0): installs a default or prefix route (proto ra).
  Redirect from the current default router: changes `ip -6 route get DEST`.
"""
import ipaddress
import logging
import json
import os
import select
import socket
import subprocess
import sys
import time

logging.getLogger("scapy").setLevel(logging.ERROR)  # Raw frames into a pcap: no linktype warning

from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_Redirect,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptRDNSS,
    ICMPv6NDOptRedirectedHdr,
    ICMPv6NDOptRouteInfo,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
    in6_chksum,
)
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import PcapWriter

# The two ends of the veth (MACs set by 13-differential.sh).
PEER_MAC = "02:00:00:00:00:0a"
HOST_MAC = "02:00:00:00:01:01"
PEER_GUA = "2001:db8::a"
PEER_LL = "fe80::ff:fe00:a"  # the peer's EUI-64 link-local: the host can resolve it
HOST_GUA = "2001:db8::1"
HOST_SN = "ff02::1:ff00:1"
HOST_SN_MAC = "33:33:ff:00:00:01"
ALL_NODES = "ff02::1"
ALL_NODES_MAC = "33:33:00:00:00:01"
ALL_ROUTERS = "ff02::2"
ALL_ROUTERS_MAC = "33:33:00:00:00:02"
# NA target: the kernel holds a STALE entry for it with OLD_MAC before each NA.
NA_TARGET = "2001:db8::b"
OLD_MAC = "02:00:00:00:00:0b"
NEW_MAC = "02:00:00:00:00:bb"
OTHER_MAC = "02:00:00:00:00:cc"
MCAST_MAC = "33:33:00:00:00:01"
# Redirect: the host's default route goes via PEER_LL; each Redirect names its own
# destination so no reset is needed; REDIRECT_TARGET is the better first hop.
REDIRECT_TARGET = "fe80::b"
PIO = "2001:db8:5::"

NH_HBH, NH_FRAG, NH_DSTOPT, NH_ICMPV6 = 0, 44, 60, 58


def icmp_bytes(msg):
    """The ICMPv6 message (scapy layers, options included) as bytes with checksum 0."""
    msg = msg.copy()
    msg.cksum = 0
    return bytes(msg)


def ext_header(nh, kind):
    """An 8-octet extension header of `kind` whose Next Header is `nh`."""
    if kind == NH_FRAG:  # atomic fragment: offset 0, M=0 (RFC 6946)
        return bytes([nh, 0, 0, 0, 0, 0, 0x12, 0x34])
    # Hop-by-Hop / Destination Options with one PadN filling 6 octets.
    return bytes([nh, 0, 1, 4, 0, 0, 0, 0])


def frame(
    icmp,
    src,
    dst,
    eth_dst,
    hlim=255,
    csum=None,
    ext=(),
    plen=None,
    trailer=b"",
    version=6,
    eth_src=PEER_MAC,
):
    """An Ethernet frame around the ICMPv6 bytes `icmp`.

    csum: None computes the right checksum, an int forces one. ext: extension header
    kinds before ICMPv6, outermost first. plen: Payload Length if not the real one.
    trailer: bytes after the IPv6 packet (Ethernet padding).
    """
    good = in6_chksum(NH_ICMPV6, IPv6(src=src, dst=dst), icmp)
    icmp = icmp[:2] + (good if csum is None else csum).to_bytes(2, "big") + icmp[4:]
    payload = b""
    kinds = list(ext)
    for i, kind in enumerate(kinds):
        nh = kinds[i + 1] if i + 1 < len(kinds) else NH_ICMPV6
        payload += ext_header(nh, kind)
    payload += icmp
    first_nh = kinds[0] if kinds else NH_ICMPV6
    ip = IPv6(src=src, dst=dst, hlim=hlim, nh=first_nh, plen=len(payload) if plen is None else plen)
    ip.version = version
    return bytes(Ether(src=eth_src, dst=eth_dst, type=0x86DD) / ip / Raw(payload)) + trailer


def slla(mac=PEER_MAC):
    return ICMPv6NDOptSrcLLAddr(lladdr=mac)


def tlla(mac=NEW_MAC):
    return ICMPv6NDOptDstLLAddr(lladdr=mac)


def raw_opt(kind, units, fill=0):
    """An option of `units` 8-octet units (the length byte says `units`)."""
    return bytes([kind, units]) + bytes([fill]) * max(0, units * 8 - 2)


# --- the corpus -------------------------------------------------------------------------
# Each entry: (label, message kind, frame bytes, description). The kind picks the
# kernel's set-up and verdict (see the module doc).


def ns_icmp(target=HOST_GUA, opts=b""):
    return icmp_bytes(ICMPv6ND_NS(tgt=target)) + opts


def ns(label, desc, *, src=PEER_GUA, dst=HOST_SN, eth_dst=HOST_SN_MAC, icmp=None, **kw):
    return (label, "NS", frame(icmp or ns_icmp(opts=bytes(slla())), src, dst, eth_dst, **kw), desc)


def na_icmp(s=1, o=1, target=NA_TARGET, opts=None):
    opts = bytes(tlla()) if opts is None else opts
    return icmp_bytes(ICMPv6ND_NA(tgt=target, R=0, S=s, O=o)) + opts


def na(label, desc, *, src=PEER_GUA, dst=HOST_GUA, eth_dst=HOST_MAC, icmp=None, **kw):
    return (label, "NA", frame(icmp or na_icmp(), src, dst, eth_dst, **kw), desc)


def rs_icmp(opts=None):
    return icmp_bytes(ICMPv6ND_RS()) + (bytes(slla()) if opts is None else opts)


def rs(label, desc, *, src=PEER_LL, dst=ALL_ROUTERS, eth_dst=ALL_ROUTERS_MAC, icmp=None, **kw):
    return (label, "RS", frame(icmp or rs_icmp(), src, dst, eth_dst, **kw), desc)


def ra_icmp(opts=None, prf_p=0, lifetime=1800):
    base = ICMPv6ND_RA(chlim=64, M=0, O=0, routerlifetime=lifetime, reachabletime=0, retranstimer=0)
    base.prf = 0
    fixed = bytearray(icmp_bytes(base))
    fixed[5] |= prf_p
    if opts is None:
        opts = bytes(slla()) + bytes(ICMPv6NDOptMTU(mtu=1500)) + pio()
    return bytes(fixed) + opts


def pio(length=4):
    p = bytes(ICMPv6NDOptPrefixInfo(prefix=PIO, prefixlen=64, L=1, A=0, validlifetime=3600, preferredlifetime=1800))
    if length != 4:  # same bytes, length field says otherwise, body cut to match
        p = bytes([p[0], length]) + p[2 : length * 8]
    return p


def ra(label, desc, *, src=PEER_LL, dst=ALL_NODES, eth_dst=ALL_NODES_MAC, icmp=None, **kw):
    return (label, "RA", frame(icmp or ra_icmp(), src, dst, eth_dst, **kw), desc)


def redirect_icmp(n, target=REDIRECT_TARGET, dest=None, opts=None):
    dest = dest or f"2001:db8:99::{n}"
    msg = ICMPv6ND_Redirect(tgt=target, dst=dest)
    if opts is None:
        opts = bytes(tlla(OTHER_MAC))
    return icmp_bytes(msg) + opts


def redirect(label, desc, n, *, src=PEER_LL, dst=HOST_GUA, eth_dst=HOST_MAC, icmp=None, **kw):
    """Redirect number n (its destination is 2001:db8:99::n unless the ICMP says else)."""
    return (label, "Redirect", frame(icmp or redirect_icmp(n), src, dst, eth_dst, **kw), desc)


def corpus():
    S = bytes(slla())
    out = [
        # NS for the host's own address.
        ns("ns_mcast_slla", "multicast NS with SLLA"),
        ns("ns_mcast_no_slla", "multicast NS without SLLA (RFC 4861 §4.3: sender MUST include it)", icmp=ns_icmp()),
        ns("ns_ucast_slla", "unicast NS with SLLA", dst=HOST_GUA, eth_dst=HOST_MAC),
        ns("ns_ucast_no_slla", "unicast NS without SLLA", dst=HOST_GUA, eth_dst=HOST_MAC, icmp=ns_icmp()),
        ns("ns_dad", "DAD NS from ::", src="::", icmp=ns_icmp()),
        ns("ns_trailer", "valid NS plus 6 bytes after the IPv6 payload", trailer=b"\xee" * 6),
        ns("ns_unknown_opt", "NS with unknown option type 200", icmp=ns_icmp(opts=S + raw_opt(200, 1, 0x5a))),
        ns("ns_with_tlla", "NS carrying a TLLA too", icmp=ns_icmp(opts=S + bytes(tlla()))),
        ns("ns_two_same_slla", "NS with two identical SLLAs", icmp=ns_icmp(opts=S + S)),
        ns("ns_two_diff_slla", "NS with two different SLLAs", icmp=ns_icmp(opts=S + bytes(slla(OTHER_MAC)))),
        ns("ns_slla_mcast_mac", "NS whose SLLA is a multicast MAC", icmp=ns_icmp(opts=bytes(slla(MCAST_MAC)))),
        ns("ns_hlim_254", "NS, hop limit 254", hlim=254),
        ns("ns_code_1", "NS, code 1", icmp=bytes([135, 1]) + ns_icmp(opts=S)[2:]),
        ns("ns_bad_csum", "NS, wrong checksum", csum=0x1234),
        ns("ns_csum_zero", "NS, checksum 0x0000", csum=0),
        ns("ns_too_short", "NS, ICMP length 23", icmp=ns_icmp()[:23]),
        ns("ns_plen_beyond_frame", "Payload Length 200 in an 86-byte frame", plen=200),
        ns("ns_mcast_target", "NS for target ff02::1", icmp=ns_icmp(target=ALL_NODES, opts=S)),
        ns("ns_opt_len0", "NS, option length 0", icmp=ns_icmp(opts=bytes([1, 0]) + S[2:])),
        ns("ns_opt_overrun", "NS, last option overruns the message", icmp=ns_icmp(opts=S + bytes([200, 2]) + bytes(6))),
        ns("ns_opt_trailing", "NS, one stray byte after the last option", icmp=ns_icmp(opts=S + b"\x00")),
        ns("ns_slla_len2", "NS, SLLA of length 2 (16 octets)", icmp=ns_icmp(opts=S[:2].replace(b"\x01\x01", b"\x01\x02") + S[2:] + bytes(8))),
        ns("ns_dad_slla", "DAD NS with SLLA", src="::"),
        ns("ns_dad_ucast_dst", "DAD NS to the host's unicast address", src="::", dst=HOST_GUA, eth_dst=HOST_MAC, icmp=ns_icmp()),
        ns("ns_atomic_frag", "NS in an atomic fragment", ext=[NH_FRAG]),
        ns("ns_behind_dstopt", "NS behind a Destination Options header", ext=[NH_DSTOPT]),
        ns("ns_behind_hbh", "NS behind a Hop-by-Hop Options header", ext=[NH_HBH]),
        ns("ns_mcast_src", "NS from multicast source ff02::5", src="ff02::5", icmp=ns_icmp()),
        ns("ns_loopback_src", "NS from ::1", src="::1"),
        ns("ns_v4mapped_src", "NS from ::ffff:192.0.2.1", src="::ffff:192.0.2.1"),
        ns("ns_loopback_dst", "unicast NS to ::1", dst="::1", eth_dst=HOST_MAC),
        ns("ns_to_all_nodes", "NS to ff02::1 (all nodes, link scope)", dst=ALL_NODES, eth_dst=ALL_NODES_MAC),
        ns("ns_to_if_local_all_nodes", "NS to ff01::1 (all nodes, interface-local scope)", dst="ff01::1", eth_dst=ALL_NODES_MAC),
        ns("ns_ip_version_4", "IPv6 header with version 4", version=4),
        ns("ns_eth_src_mcast", "NS from a multicast Ethernet source", eth_src="33:33:00:00:00:09"),
        # NA for NA_TARGET, which the kernel holds STALE with OLD_MAC.
        na("na_solicited", "solicited NA (S=1 O=1, TLLA) to the host"),
        na("na_unsolicited_override", "unsolicited NA (S=0 O=1, TLLA) to ff02::1", dst=ALL_NODES, eth_dst=ALL_NODES_MAC, icmp=na_icmp(s=0)),
        na("na_solicited_no_tlla", "solicited NA without TLLA (S=1 O=0)", icmp=na_icmp(o=0, opts=b"")),
        na("na_s_to_all_nodes", "NA S=1 to ff02::1", dst=ALL_NODES, eth_dst=ALL_NODES_MAC),
        na("na_mcast_target", "NA for target ff02::1", icmp=na_icmp(target=ALL_NODES)),
        na("na_hlim_254", "NA, hop limit 254", hlim=254),
        na("na_code_1", "NA, code 1", icmp=bytes([136, 1]) + na_icmp()[2:]),
        na("na_bad_csum", "NA, wrong checksum", csum=0xBEEF),
        na("na_too_short", "NA, ICMP length 20", icmp=na_icmp(opts=b"")[:20]),
        na("na_opt_len0", "NA, option length 0", icmp=na_icmp(opts=bytes([2, 0]) + bytes(tlla())[2:])),
        na("na_opt_overrun", "NA, TLLA says 2 units in an 8-octet tail", icmp=na_icmp(opts=bytes([2, 2]) + bytes(tlla())[2:])),
        na("na_tlla_len2", "NA, TLLA of length 2", icmp=na_icmp(opts=bytes([2, 2]) + bytes(tlla())[2:] + bytes(8))),
        na("na_two_diff_tlla", "NA with two different TLLAs", icmp=na_icmp(opts=bytes(tlla()) + bytes(tlla(OTHER_MAC)))),
        na("na_tlla_mcast_mac", "NA whose TLLA is a multicast MAC", icmp=na_icmp(opts=bytes(tlla(MCAST_MAC)))),
        na("na_unknown_opt", "NA with unknown option type 200", icmp=na_icmp(opts=bytes(tlla()) + raw_opt(200, 1))),
        na("na_eth_src_mcast_no_tlla", "NA without TLLA (S=1 O=1) from a multicast Ethernet source", icmp=na_icmp(opts=b""), eth_src="33:33:00:00:00:09"),
        na("na_atomic_frag", "NA in an atomic fragment", ext=[NH_FRAG]),
        na("na_behind_dstopt", "NA behind a Destination Options header", ext=[NH_DSTOPT]),
        na("na_trailer", "valid NA plus 10 bytes after the IPv6 payload", trailer=b"\xee" * 10),
        # RS (the receiving interface is a router for these).
        rs("rs_slla", "RS with SLLA"),
        rs("rs_no_slla", "RS without SLLA", icmp=rs_icmp(opts=b"")),
        rs("rs_unspec_slla", "RS from :: with SLLA", src="::"),
        rs("rs_hlim_254", "RS, hop limit 254", hlim=254),
        rs("rs_code_1", "RS, code 1", icmp=bytes([133, 1]) + rs_icmp()[2:]),
        rs("rs_too_short", "RS, ICMP length 7", icmp=rs_icmp(opts=b"")[:7]),
        rs("rs_opt_overrun", "RS, SLLA says 2 units in an 8-octet tail", icmp=rs_icmp(opts=bytes([1, 2]) + S[2:])),
        rs("rs_slla_mcast_mac", "RS whose SLLA is a multicast MAC", icmp=rs_icmp(opts=bytes(slla(MCAST_MAC)))),
        # RA (the receiving interface is a host with accept_ra=1).
        ra("ra_valid", "RA: lifetime 1800, SLLA, MTU, PIO"),
        ra("ra_p_bit", "RA with the Proxy bit", icmp=ra_icmp(prf_p=0x04)),
        ra("ra_lifetime_0", "RA with lifetime 0 and a PIO", icmp=ra_icmp(lifetime=0)),
        ra("ra_global_src", "RA from a global source", src="2001:db8::a"),
        ra("ra_unspec_src", "RA from ::", src="::"),
        ra("ra_hlim_254", "RA, hop limit 254", hlim=254),
        ra("ra_code_1", "RA, code 1", icmp=bytes([134, 1]) + ra_icmp()[2:]),
        ra("ra_bad_csum", "RA, wrong checksum", csum=0x4242),
        ra("ra_too_short", "RA, ICMP length 15", icmp=ra_icmp(opts=b"")[:15]),
        ra("ra_opt_len0", "RA, option length 0", icmp=ra_icmp(opts=S + bytes([5, 0]) + bytes(6))),
        ra("ra_slla_len2", "RA, SLLA of length 2", icmp=ra_icmp(opts=bytes([1, 2]) + S[2:] + bytes(8))),
        ra("ra_pio_len3", "RA whose PIO says length 3", icmp=ra_icmp(opts=S + pio(3))),
        ra("ra_pio_plen_129", "RA whose PIO has prefix length 129", icmp=ra_icmp(opts=S + pio()[:2] + b"\x81" + pio()[3:])),
        ra("ra_mtu_len2", "RA whose MTU option says length 2", icmp=ra_icmp(opts=S + bytes([5, 2, 0, 0, 0, 0, 5, 0xDC]) + bytes(8))),
        ra("ra_rdnss_even", "RA with an RDNSS of even length 2", icmp=ra_icmp(opts=S + bytes([25, 2, 0, 0, 0, 0, 0x0E, 0x10]) + bytes(8))),
        ra("ra_rdnss_valid", "RA with a valid RDNSS", icmp=ra_icmp(opts=S + bytes(ICMPv6NDOptRDNSS(dns=["2001:db8::53"], lifetime=600)))),
        ra("ra_rio_128_len2", "RA with an RIO for a /128 of length 2", icmp=ra_icmp(opts=S + bytes([24, 2, 128, 0, 0, 0, 0x0E, 0x10]) + bytes(8))),
        ra("ra_rio_valid", "RA with a valid RIO", icmp=ra_icmp(opts=S + bytes(ICMPv6NDOptRouteInfo(prefix="2001:db8:7::", plen=48, rtlifetime=600)))),
        ra("ra_atomic_frag", "RA in an atomic fragment", ext=[NH_FRAG]),
        ra("ra_behind_dstopt", "RA behind a Destination Options header", ext=[NH_DSTOPT]),
        ra("ra_slla_mcast_mac", "RA whose SLLA is a multicast MAC", icmp=ra_icmp(opts=bytes(slla(MCAST_MAC)) + pio())),
        # Redirect (the host's default route is via PEER_LL).
        redirect("redirect_valid", "Redirect to fe80::b with TLLA", 1),
        redirect("redirect_on_link", "Redirect saying the destination is on-link (target = destination)", 2, icmp=redirect_icmp(2, target="2001:db8:99::2")),
        redirect("redirect_global_src", "Redirect from a global source", 3, src=PEER_GUA),
        redirect("redirect_mcast_dest", "Redirect whose destination is multicast", 4, icmp=redirect_icmp(4, dest="ff0e::4")),
        redirect("redirect_bad_target", "Redirect to a global target that is not the destination", 5, icmp=redirect_icmp(5, target="2001:db8::77")),
        redirect("redirect_too_short", "Redirect, ICMP length 39", 6, icmp=redirect_icmp(6, opts=b"")[:39]),
        redirect("redirect_hlim_254", "Redirect, hop limit 254", 7, hlim=254),
        redirect("redirect_tlla_len2", "Redirect, TLLA of length 2", 8, icmp=redirect_icmp(8, opts=bytes([2, 2]) + bytes(tlla())[2:] + bytes(8))),
        redirect("redirect_rh", "Redirect with a Redirected Header option", 9, icmp=redirect_icmp(9, opts=bytes(tlla(OTHER_MAC)) + bytes(ICMPv6NDOptRedirectedHdr(pkt=bytes(IPv6(src=HOST_GUA, dst="2001:db8:99::9") / ICMPv6EchoRequest(data=b"redirect")))))),
    ]
    labels = [c[0] for c in out]
    assert len(labels) == len(set(labels)), "duplicate label"
    return out


# --- writing the pcaps for replay -------------------------------------------------------

HOUR = 3600


def cmd_pcap(outdir):
    os.makedirs(outdir, exist_ok=True)
    writers = {
        "down": PcapWriter(os.path.join(outdir, "down.pcap"), linktype=1, sync=True),
        "up": PcapWriter(os.path.join(outdir, "up.pcap"), linktype=1, sync=True),
    }
    # Not in the corpus: an RA from the uplink router ten minutes before the first frame,
    # so the relay has announced itself downstream (two P-bit RAs, RFC 4389 §6) and the
    # engine column shows what it does with a valid frame rather than port_disabled.
    warmup = Raw(ra("warmup", "", icmp=ra_icmp())[2])
    warmup.time = 1_000_000 - 600
    writers["up"].write(warmup)
    counts = {"down": 0, "up": 1}
    with open(os.path.join(outdir, "index.txt"), "w") as index:
        for i, (label, kind, data, _desc) in enumerate(corpus()):
            side = "up" if kind in ("RA", "Redirect") else "down"
            counts[side] += 1
            # An hour apart: the 60-minute RA rules, bindings and pending solicitations
            # of one frame are gone when the next one arrives.
            pkt = Raw(data)
            pkt.time = 1_000_000 + i * HOUR
            writers[side].write(pkt)
            index.write(f"{side}.pcap:{counts[side]} {label}\n")
    for w in writers.values():
        w.close()


# --- the kernel side --------------------------------------------------------------------


def run(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True).stdout


class Kernel:
    """The kernel under test, in namespace `host` behind interface `iface` (ours)."""

    def __init__(self, host, iface):
        self.host = host
        self.iface = iface
        self.hif = "h0"
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self.sock.bind((iface, 0))
        self.sock.setblocking(False)
        self.mode = None

    def ip(self, *args, check=True):
        return run("ip", "-n", self.host, *args, check=check)

    def sysctl(self, **kv):
        args = [f"net.ipv6.conf.{self.hif}.{k}={v}" for k, v in kv.items()]
        run("ip", "netns", "exec", self.host, "sysctl", "-qw", *args)

    def set_mode(self, kind):
        """RS needs a router; everything else a host that takes RAs."""
        mode = "router" if kind == "RS" else "host"
        if mode == self.mode:
            return
        if mode == "router":
            self.sysctl(forwarding=1)
        else:
            self.sysctl(forwarding=0, accept_ra=1, accept_ra_defrtr=1, accept_ra_pinfo=1, accept_redirects=1)
            # The Redirects come from the default router. Metric 2048, so that an RA's
            # default route (metric 1024) is a route of its own, seen to come and go.
            self.ip("-6", "route", "replace", "default", "via", PEER_LL, "dev", self.hif, "metric", "2048")
        self.mode = mode

    def reset(self, kind):
        self.set_mode(kind)
        self.ip("-6", "neigh", "flush", "dev", self.hif, "nud", "all", check=False)
        self.ip("-6", "route", "flush", "dev", self.hif, "proto", "ra", check=False)
        self.ip("-6", "route", "del", PIO + "/64", "dev", self.hif, check=False)
        if kind == "NA":
            self.ip("-6", "neigh", "replace", NA_TARGET, "lladdr", OLD_MAC, "dev", self.hif, "nud", "stale")
        self.drain()

    def drain(self):
        frames = []
        while True:
            try:
                data, addr = self.sock.recvfrom(65535)
            except BlockingIOError:
                return frames
            if addr[2] != socket.PACKET_OUTGOING:
                frames.append(data)

    def neigh(self, addr):
        return self.ip("-6", "neigh", "show", "nud", "all", addr, "dev", self.hif).strip()

    def ra_routes(self):
        """Routes learned from RAs: the default router (proto ra) and the PIO's prefix
        route (proto kernel, with an expiry)."""
        routes = self.ip("-6", "route", "show", "dev", self.hif).splitlines()
        return "\n".join(r for r in routes if "proto ra" in r or r.startswith(PIO)).strip()

    def route_get(self, dest):
        return self.ip("-6", "route", "get", dest, check=False).strip()

    def answered_na(self, frames, target):
        """NAs from the host for `target` among the received frames."""
        out = []
        for f in frames:
            if len(f) < 78 or f[6:12] != bytes.fromhex(HOST_MAC.replace(":", "")):
                continue
            if f[12:14] != b"\x86\xdd" or f[20] != NH_ICMPV6 or f[54] != 136:
                continue
            if ipaddress.IPv6Address(f[62:78]) == ipaddress.IPv6Address(target):
                flags = "".join(n for n, bit in (("R", 0x80), ("S", 0x40), ("O", 0x20)) if f[58] & bit)
                out.append(f"NA[{flags}] to {ipaddress.IPv6Address(f[38:54])}")
        return out

    def verdict(self, kind, data, label):
        """Sends one frame and returns (verdict, evidence)."""
        self.reset(kind)
        before = {
            "NA": lambda: self.neigh(NA_TARGET),
            "RA": self.ra_routes,
            "Redirect": lambda: self.route_get(redirect_dest(data)),
        }.get(kind, lambda: "")()
        self.sock.send(data)
        target = ns_target(data) if kind == "NS" else None
        src = str(ipaddress.IPv6Address(data[22:38])) if len(data) >= 38 else "::"
        deadline = time.monotonic() + WINDOW
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left > 0:
                select.select([self.sock], [], [], min(left, 0.02))
            seen += self.drain()
            if kind == "NS":
                nas = self.answered_na(seen, target)
                if nas:
                    ent = self.neigh(src) if src != "::" else ""
                    return "accept", "; ".join(nas + ([f"neigh {ent}"] if ent else []))
            elif kind == "NA":
                now = self.neigh(NA_TARGET)
                if now != before:
                    return "accept", f"neigh {now}"
            elif kind == "RS":
                ent = self.neigh(src) if src != "::" else ""
                if ent:
                    return "accept", f"neigh {ent}"
            elif kind == "RA":
                now = self.ra_routes()
                if now != before:
                    return "accept", "routes: " + now.replace("\n", "; ")
            elif kind == "Redirect":
                now = self.route_get(redirect_dest(data))
                if now != before:
                    return "accept", "route get: " + now.replace("\n", "; ")
            if left <= 0:
                return "ignore", KERNEL_NOTHING[kind]


# How long the kernel gets to react to one frame. It answers and updates within a few
# milliseconds (a unicast NS without SLLA first resolves the sender: two more frames).
WINDOW = 0.25

KERNEL_NOTHING = {
    "NS": "no NA",
    "NA": "neighbour entry unchanged",
    "RS": "no neighbour entry",
    "RA": "no route",
    "Redirect": "route unchanged",
}


def ns_target(data):
    """The NS target as the frame says (past any extension headers), or None."""
    off = 54
    nh = data[20] if len(data) > 20 else None
    while nh in (NH_HBH, NH_DSTOPT, NH_FRAG) and off + 8 <= len(data):
        nh, off = data[off], off + (8 if nh == NH_FRAG else (data[off + 1] + 1) * 8)
    if len(data) < off + 24:
        return None
    return str(ipaddress.IPv6Address(data[off + 8 : off + 24]))


def redirect_dest(data):
    return str(ipaddress.IPv6Address(data[78:94])) if len(data) >= 94 else "2001:db8:99::6"


def cmd_kernel(host, iface):
    k = Kernel(host, iface)
    # Group by kind so the interface switches between host and router once each.
    order = {"NS": 0, "NA": 1, "RA": 2, "Redirect": 3, "RS": 4}
    for label, kind, data, desc in sorted(corpus(), key=lambda c: order[c[1]]):
        verdict, evidence = k.verdict(kind, data, label)
        print(json.dumps({"label": label, "kind": kind, "kernel": verdict, "evidence": evidence, "desc": desc}), flush=True)


# --- comparing --------------------------------------------------------------------------


def load_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def ndprelay_verdicts(replay_path, index_path):
    """label -> (wire verdict, engine decision) from `ndprelay replay --json`."""
    index = {}
    with open(index_path) as f:
        for line in f:
            key, label = line.split()
            index[key] = label
    out = {}
    for row in load_jsonl(replay_path):
        if "frame" not in row or not row.get("file"):
            continue
        key = f"{os.path.basename(row['file'])}:{row['frame']}"
        label = index.get(key)
        if label is None:
            continue
        decode = row["decode"]
        if decode.startswith("invalid ("):
            wire = "drop:" + decode[len("invalid (") :].split(")")[0]
        elif decode.startswith(("RS ", "RA ", "NS ", "NA ", "Redirect ")):
            wire = "accept"
        else:
            wire = "other:" + decode.split(",")[0]
        out[label] = (wire, "; ".join(row["decisions"]) or "no action")
    return out


def joined(kernel_path, replay_path, index_path):
    relay = ndprelay_verdicts(replay_path, index_path)
    rows = []
    for k in load_jsonl(kernel_path):
        wire, engine = relay.get(k["label"], ("missing", "missing"))
        agree = (k["kernel"] == "accept") == (wire == "accept")
        rows.append(dict(k, wire=wire, engine=engine, agree=agree))
    missing = [c[0] for c in corpus() if c[0] not in {r["label"] for r in rows}]
    return rows, missing


def load_expected(path):
    """label -> (kernel, wire); a row whose verdicts disagree must carry an explanation
    tag (`# D<n> ...`) naming its section of docs/differential-nd.md."""
    exp, untagged = {}, []
    with open(path) as f:
        for line in f:
            body, _, note = line.partition("#")
            if not body.strip():
                continue
            label, kernel, wire = body.split()
            exp[label] = (kernel, wire)
            if (kernel == "accept") != (wire == "accept") and not note.strip().startswith("D"):
                untagged.append(label)
    return exp, untagged


def cmd_compare(kernel_path, replay_path, index_path, expected_path, table=None):
    rows, missing = joined(kernel_path, replay_path, index_path)
    expected, untagged = load_expected(expected_path)
    lines = [
        "| frame | kind | kernel | kernel evidence | ndprelay wire | ndprelay engine | agree |",
        "|---|---|---|---|---|---|---|",
    ]
    bad = []
    for r in rows:
        lines.append(
            f"| `{r['label']}` | {r['kind']} | {r['kernel']} | {r['evidence']} | {r['wire']} | {r['engine']} | {'yes' if r['agree'] else '**no**'} |"
        )
        want = expected.get(r["label"])
        got = (r["kernel"], r["wire"])
        if want != got:
            bad.append(f"{r['label']}: expected kernel={want[0] if want else '?'} ndprelay={want[1] if want else '?'}, got kernel={got[0]} ndprelay={got[1]} ({r['evidence']})")
    for label in missing:
        bad.append(f"{label}: no verdict from one side")
    for label in untagged:
        bad.append(f"{label}: a disagreement in {os.path.basename(expected_path)} without its explanation tag (# D<n>)")
    for label in expected:
        if label not in {r["label"] for r in rows}:
            bad.append(f"{label}: in the expected list but not in the corpus")
    text = "\n".join(lines) + "\n"
    if table:
        with open(table, "w") as f:
            f.write(text)
    print(text)
    n_dis = sum(not r["agree"] for r in rows)
    print(f"{len(rows)} frames, {len(rows) - n_dis} agree, {n_dis} disagree (all explained unless listed below)")
    if bad:
        print("UNEXPECTED (see docs/differential-nd.md for how to review and regenerate):")
        for b in bad:
            print("  " + b)
        return 1
    return 0


def cmd_expected(kernel_path, replay_path, index_path):
    rows, _ = joined(kernel_path, replay_path, index_path)
    width = max(len(r["label"]) for r in rows)
    for r in rows:
        note = "" if r["agree"] else "  # disagreement: docs/differential-nd.md"
        print(f"{r['label']:<{width}} {r['kernel']:<6} {r['wire']}{note}")


def main(argv):
    if len(argv) >= 2 and argv[0] == "pcap":
        return cmd_pcap(argv[1]) or 0
    if len(argv) == 5 and argv[0] == "kernel" and argv[1] == "--host-ns" and argv[3] == "--iface":
        return cmd_kernel(argv[2], argv[4]) or 0
    if len(argv) in (5, 7) and argv[0] == "compare":
        table = argv[6] if len(argv) == 7 and argv[5] == "--table" else None
        return cmd_compare(*argv[1:5], table=table)
    if len(argv) == 4 and argv[0] == "expected":
        return cmd_expected(*argv[1:4]) or 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
