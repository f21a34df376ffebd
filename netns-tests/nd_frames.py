#!/usr/bin/env python3
"""ND frames of pcap/pcapng files, for netns-tests/09-replay.sh.

  nd_frames.py list [--sent-by-port-mac] [--raw] [PORT=]FILE...
      One line per ND frame: `port type ip-src ip-dst target lla` (what a relayed
      NS/NA/RA/RS/Redirect is about and which link-layer address it carries), or with
      --raw `port hex-bytes`. PORT= names the port of a pcap (tcpdump) file; a pcapng's
      interface names are the ports. --sent-by-port-mac keeps only frames whose
      Ethernet source is the MAC the pcapng declares for their interface (if_MACaddr):
      in an `ndprelay run --dump`, the relay's own sends.
  nd_frames.py compare --own ADDR,... LIVE_DUMP REPLAY_OUTPUT
      The relay's sends in LIVE_DUMP against replay's --output, exit 1 on a mismatch.
      Frames relayed in answer to an input (IPv6 source not one of the relay's own
      addresses --own) must match byte for byte, as a multiset. Frames the relay
      originates (source one of --own: its RS, probes, announcements) are timer-driven;
      their count per port and type may differ by one (see 09-replay.sh).
"""
import ipaddress
import struct
import sys
from collections import Counter

ND_TYPES = {133: "RS", 134: "RA", 135: "NS", 136: "NA", 137: "Redirect"}


def frames(path, port):
    """Yields (port, port_mac, frame bytes) from a pcap or pcapng file."""
    data = open(path, "rb").read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        off = 24
        while off + 16 <= len(data):
            incl = struct.unpack_from("<I", data, off + 8)[0]
            yield port, None, data[off + 16 : off + 16 + incl]
            off += 16 + incl
        return
    if magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        off = 24
        while off + 16 <= len(data):
            incl = struct.unpack_from(">I", data, off + 8)[0]
            yield port, None, data[off + 16 : off + 16 + incl]
            off += 16 + incl
        return
    if magic != b"\x0a\x0d\x0d\x0a":
        sys.exit(f"{path}: not pcap or pcapng")
    bom = data[8:12]
    e = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
    interfaces = []
    off = 0
    while off + 12 <= len(data):
        btype, blen = struct.unpack_from(e + "II", data, off)
        body = data[off + 8 : off + blen - 4]
        if btype == 1:  # Interface Description
            name, mac = None, None
            o = 8
            while o + 4 <= len(body):
                code, olen = struct.unpack_from(e + "HH", body, o)
                val = body[o + 4 : o + 4 + olen]
                if code == 0:
                    break
                if code == 2:
                    name = val.decode()
                if code == 6:
                    mac = val.hex(":")
                o += 4 + (olen + 3) // 4 * 4
            interfaces.append((port or name, mac))
        elif btype == 6:  # Enhanced Packet
            iface, _, _, incl = struct.unpack_from(e + "IIII", body, 0)
            name, mac = interfaces[iface]
            yield name, mac, body[20 : 20 + incl]
        off += blen


def key(port, frame):
    """The comparison key of an ND frame, or None for anything else."""
    if len(frame) < 62 or frame[12:14] != b"\x86\xdd" or frame[20] != 58:
        return None
    icmp = frame[54:]
    kind = ND_TYPES.get(icmp[0])
    if kind is None:
        return None
    src = ipaddress.IPv6Address(frame[22:38])
    dst = ipaddress.IPv6Address(frame[38:54])
    target, opts = "-", icmp[8:]
    if kind in ("NS", "NA"):
        target, opts = str(ipaddress.IPv6Address(icmp[8:24])), icmp[24:]
    elif kind == "RA":
        opts = icmp[16:]
    elif kind == "Redirect":
        target, opts = str(ipaddress.IPv6Address(icmp[8:24])), icmp[40:]
    lla = "-"
    o = 0
    while o + 2 <= len(opts) and opts[o + 1] > 0:
        if opts[o] in (1, 2):
            lla = ("slla=" if opts[o] == 1 else "tlla=") + opts[o + 2 : o + 8].hex(":")
        o += opts[o + 1] * 8
    return f"{port} {kind} {src} {dst} {target} {lla}"


def nd(files, sent_only):
    """(key, port, hex) of the ND frames in `files` ([PORT=]FILE strings)."""
    out = []
    for arg in files:
        port, _, path = arg.rpartition("=")
        for name, mac, frame in frames(path, port or None):
            if sent_only and (mac is None or frame[6:12].hex(":") != mac):
                continue
            k = key(name, frame)
            if k is not None:
                out.append((k, name, frame.hex()))
    return out


def compare(own, live_dump, replay_output):
    live = nd([live_dump], True)
    replay = nd([replay_output], False)
    ok = True

    def originated(k):
        return k.split()[2] in own

    rel_live = Counter(f"{k}\n    {h}" for k, _, h in live if not originated(k))
    rel_replay = Counter(f"{k}\n    {h}" for k, _, h in replay if not originated(k))
    for what, missing in (("live only", rel_live - rel_replay), ("replay only", rel_replay - rel_live)):
        for item, n in sorted(missing.items()):
            ok = False
            print(f"relayed, {what} (x{n}): {item}")
    by_kind = lambda fs: Counter(" ".join(k.split()[:2]) for k, _, _ in fs if originated(k))
    org_live, org_replay = by_kind(live), by_kind(replay)
    for kind in sorted(set(org_live) | set(org_replay)):
        a, b = org_live[kind], org_replay[kind]
        flag = "" if a == b else " (timer edge)"
        if abs(a - b) > 1:
            ok, flag = False, " MISMATCH"
        print(f"originated {kind}: live {a}, replay {b}{flag}")
    print(f"relayed: live {sum(rel_live.values())}, replay {sum(rel_replay.values())}"
          f"{'' if rel_live == rel_replay else ' MISMATCH'}")
    return ok


def main():
    args = sys.argv[1:]
    if args[:1] == ["compare"]:
        own = set(args[2].split(",")) if args[1] == "--own" else sys.exit("compare needs --own")
        sys.exit(0 if compare(own, args[3], args[4]) else 1)
    if args[:1] != ["list"]:
        sys.exit(__doc__)
    args = args[1:]
    files = [a for a in args if not a.startswith("--")]
    for k, name, h in nd(files, "--sent-by-port-mac" in args):
        print(f"{name} {h}" if "--raw" in args else k)


main()
