//! rtnetlink without `ip` subprocesses: a small netlink message codec, link and address
//! dumps, link/address event parsing, and the relay's own /128 routes.
//!
//! The codec is hand-written (a few dozen lines of TLV handling) because it serves two
//! families: rtnetlink here and nf_tables in the (private) `guard` module, for which no pure-Rust
//! crate without libnftnl exists. Messages are built into one `Vec<u8>` so a batch is
//! one `send`.

use std::io;
use std::net::Ipv6Addr;

use super::sys::{self, NetlinkSocket};
use crate::wire::Mac;

/// Netlink message types and flags (linux/netlink.h, linux/rtnetlink.h).
pub mod consts {
    #![allow(missing_docs)]
    pub const NLMSG_ERROR: u16 = 2;
    pub const NLMSG_DONE: u16 = 3;
    pub const NLMSG_OVERRUN: u16 = 4;
    pub const NLM_F_REQUEST: u16 = 0x1;
    pub const NLM_F_MULTI: u16 = 0x2;
    pub const NLM_F_ACK: u16 = 0x4;
    pub const NLM_F_DUMP: u16 = 0x300;
    pub const NLM_F_REPLACE: u16 = 0x100;
    pub const NLM_F_EXCL: u16 = 0x200;
    pub const NLM_F_CREATE: u16 = 0x400;
    pub const RTM_NEWLINK: u16 = 16;
    pub const RTM_DELLINK: u16 = 17;
    pub const RTM_GETLINK: u16 = 18;
    pub const RTM_NEWADDR: u16 = 20;
    pub const RTM_DELADDR: u16 = 21;
    pub const RTM_GETADDR: u16 = 22;
    pub const RTM_NEWROUTE: u16 = 24;
    pub const RTM_DELROUTE: u16 = 25;
    pub const RTM_GETROUTE: u16 = 26;
    pub const RTNLGRP_LINK: u32 = 1;
    pub const RTNLGRP_IPV6_IFADDR: u32 = 9;
    pub const IFLA_ADDRESS: u16 = 1;
    pub const IFLA_IFNAME: u16 = 3;
    pub const IFLA_MTU: u16 = 4;
    pub const IFLA_ALLMULTI: u16 = 61;
    pub const IFA_ADDRESS: u16 = 1;
    pub const IFA_FLAGS: u16 = 8;
    pub const IFA_F_DADFAILED: u32 = 0x08;
    pub const IFA_F_TENTATIVE: u32 = 0x40;
    /// Without it an address has a lifetime (`dynamic`: SLAAC, privacy, DHCPv6).
    pub const IFA_F_PERMANENT: u32 = 0x80;
    /// `rtm_protocol` of routes the kernel learned from Router Advertisements.
    pub const RTPROT_RA: u8 = 9;
    pub const RTA_DST: u16 = 1;
    pub const RTA_OIF: u16 = 4;
    pub const RTA_TABLE: u16 = 15;
    pub const RT_TABLE_MAIN: u8 = 254;
    /// `rtm_flags` of a lookup: answer with the FIB entry that matched.
    pub const RTM_F_FIB_MATCH: u32 = 0x2000;
    pub const RTN_UNICAST: u8 = 1;
    pub const IFF_UP: u32 = 0x1;
    pub const IFF_RUNNING: u32 = 0x40;
    pub const IFF_LOWER_UP: u32 = 0x1_0000;
    pub const ARPHRD_ETHER: u16 = 1;
    pub const AF_INET6: u8 = 10;
    pub const NLA_F_NESTED: u16 = 0x8000;
}
use consts::*;

const NLMSG_HDRLEN: usize = 16;

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Builds one or more netlink messages into a buffer.
#[derive(Debug, Default)]
pub struct MsgBuilder {
    buf: Vec<u8>,
    msg_start: usize,
    nests: Vec<usize>,
}

impl MsgBuilder {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a message; `header` is the family header (ifinfomsg, rtmsg, nfgenmsg...).
    pub fn begin(&mut self, ty: u16, flags: u16, seq: u32, header: &[u8]) -> &mut Self {
        self.msg_start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]); // length, filled by `end`
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(header);
        self.pad();
        self
    }

    fn pad(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }

    /// Appends an attribute.
    pub fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = u16::try_from(4 + data.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    /// Appends a native-endian u32 attribute.
    pub fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }

    /// Appends a big-endian u32 attribute (nf_tables uses network order).
    pub fn attr_be32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_be_bytes())
    }

    /// Appends a NUL-terminated string attribute.
    pub fn attr_str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(ty, &v)
    }

    /// Opens a nested attribute; close it with [`Self::nest_end`].
    pub fn nest(&mut self, ty: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        self
    }

    /// Closes the innermost nested attribute.
    pub fn nest_end(&mut self) -> &mut Self {
        if let Some(start) = self.nests.pop() {
            let len = u16::try_from(self.buf.len() - start).unwrap_or(u16::MAX);
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    /// Finishes the current message (fills its length).
    pub fn end(&mut self) -> &mut Self {
        let len = u32::try_from(self.buf.len() - self.msg_start).unwrap_or(u32::MAX);
        self.buf[self.msg_start..self.msg_start + 4].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// The bytes built so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// One received netlink message.
#[derive(Debug, Clone, Copy)]
pub struct Msg<'a> {
    /// Message type.
    pub ty: u16,
    /// Flags.
    pub flags: u16,
    /// Sequence number.
    pub seq: u32,
    /// Everything after the netlink header.
    pub payload: &'a [u8],
}

/// Iterates the messages of one datagram; stops at the first malformed one.
pub fn messages(buf: &[u8]) -> impl Iterator<Item = Msg<'_>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes(rest[0..4].try_into().ok()?) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return None;
        }
        let msg = Msg {
            ty: u16::from_ne_bytes(rest[4..6].try_into().ok()?),
            flags: u16::from_ne_bytes(rest[6..8].try_into().ok()?),
            seq: u32::from_ne_bytes(rest[8..12].try_into().ok()?),
            payload: &rest[NLMSG_HDRLEN..len],
        };
        rest = &rest[align4(len).min(rest.len())..];
        Some(msg)
    })
}

/// Iterates (type without flag bits, data) attributes; stops at the first malformed one.
pub fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let ty = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            return None;
        }
        let data = &rest[4..len];
        rest = &rest[align4(len).min(rest.len())..];
        Some((ty, data))
    })
}

fn ne_u32(d: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(d.get(..4)?.try_into().ok()?))
}

fn ipv6(d: &[u8]) -> Option<Ipv6Addr> {
    let o: [u8; 16] = d.get(..16)?.try_into().ok()?;
    Some(Ipv6Addr::from(o))
}

/// An interface as rtnetlink reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// ifindex.
    pub index: i32,
    /// Name.
    pub name: String,
    /// ARPHRD type (1 = Ethernet).
    pub hw_type: u16,
    /// Hardware address, when it is a 6-byte one.
    pub mac: Option<Mac>,
    /// MTU.
    pub mtu: u32,
    /// `IFF_*` flags.
    pub flags: u32,
    /// All-multicast reference count (kernels ≥ 6.0 report it).
    pub allmulti: Option<u32>,
}

impl Link {
    /// Administratively up and with carrier.
    pub fn is_running(&self) -> bool {
        self.flags & IFF_UP != 0 && self.flags & IFF_RUNNING != 0
    }

    /// Parses an `RTM_NEWLINK`/`RTM_DELLINK` payload.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let hdr = payload.get(..16)?;
        let mut link = Self {
            hw_type: u16::from_ne_bytes([hdr[2], hdr[3]]),
            index: i32::from_ne_bytes(hdr[4..8].try_into().ok()?),
            flags: u32::from_ne_bytes(hdr[8..12].try_into().ok()?),
            name: String::new(),
            mac: None,
            mtu: 0,
            allmulti: None,
        };
        for (ty, d) in attrs(&payload[16..]) {
            match ty {
                IFLA_IFNAME => {
                    let s = d.split(|&b| b == 0).next().unwrap_or(&[]);
                    link.name = String::from_utf8_lossy(s).into_owned();
                }
                IFLA_ADDRESS if d.len() == 6 => {
                    let mut m = [0; 6];
                    m.copy_from_slice(d);
                    link.mac = Some(Mac(m));
                }
                IFLA_MTU => link.mtu = ne_u32(d).unwrap_or(0),
                IFLA_ALLMULTI => link.allmulti = ne_u32(d),
                _ => {}
            }
        }
        Some(link)
    }
}

/// An IPv6 interface address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr {
    /// ifindex.
    pub index: i32,
    /// Address.
    pub addr: Ipv6Addr,
    /// Prefix length.
    pub prefix_len: u8,
    /// `IFA_F_*` flags (the 32-bit `IFA_FLAGS` when present).
    pub flags: u32,
}

impl Addr {
    /// Parses an `RTM_NEWADDR`/`RTM_DELADDR` payload; `None` for non-IPv6.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let hdr = payload.get(..8)?;
        if hdr[0] != AF_INET6 {
            return None;
        }
        let mut flags = u32::from(hdr[2]);
        let index = i32::from_ne_bytes(hdr[4..8].try_into().ok()?);
        let mut addr = None;
        for (ty, d) in attrs(&payload[8..]) {
            match ty {
                IFA_ADDRESS => addr = ipv6(d),
                IFA_FLAGS => flags = ne_u32(d).unwrap_or(flags),
                _ => {}
            }
        }
        Some(Self {
            index,
            addr: addr?,
            prefix_len: hdr[1],
            flags,
        })
    }

    /// Usable: neither tentative nor failed DAD.
    pub fn is_usable(&self) -> bool {
        self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) == 0
    }
}

/// An IPv6 route, as far as the relay cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Destination.
    pub dst: Ipv6Addr,
    /// Destination prefix length.
    pub dst_len: u8,
    /// Output interface.
    pub oif: i32,
    /// Routing table.
    pub table: u32,
    /// `rtm_protocol`.
    pub protocol: u8,
}

impl Route {
    /// Parses an `RTM_NEWROUTE` payload; `None` for non-IPv6.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let hdr = payload.get(..12)?;
        if hdr[0] != AF_INET6 {
            return None;
        }
        let mut r = Self {
            dst: Ipv6Addr::UNSPECIFIED,
            dst_len: hdr[1],
            oif: 0,
            table: u32::from(hdr[4]),
            protocol: hdr[5],
        };
        for (ty, d) in attrs(&payload[12..]) {
            match ty {
                RTA_DST => r.dst = ipv6(d).unwrap_or(r.dst),
                RTA_OIF => r.oif = ne_u32(d).map_or(0, |v| v as i32),
                RTA_TABLE => r.table = ne_u32(d).unwrap_or(r.table),
                _ => {}
            }
        }
        Some(r)
    }
}

/// `rtmsg` for a /128 unicast route in the main table.
fn host_route_msg(
    b: &mut MsgBuilder,
    ty: u16,
    flags: u16,
    seq: u32,
    addr: Ipv6Addr,
    ifindex: i32,
    protocol: u8,
) {
    let hdr = [
        AF_INET6,
        128,
        0,
        0,
        RT_TABLE_MAIN,
        protocol,
        0,
        RTN_UNICAST,
        0,
        0,
        0,
        0,
    ];
    b.begin(ty, flags, seq, &hdr)
        .attr(RTA_DST, &addr.octets())
        .attr_u32(RTA_OIF, ifindex as u32)
        .end();
}

/// Builds the `RTM_NEWROUTE` that installs (or replaces) `addr/128 dev ifindex proto P`.
pub fn build_route_replace(seq: u32, addr: Ipv6Addr, ifindex: i32, protocol: u8) -> Vec<u8> {
    let mut b = MsgBuilder::new();
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    host_route_msg(&mut b, RTM_NEWROUTE, flags, seq, addr, ifindex, protocol);
    b.buf
}

/// Builds the `RTM_NEWROUTE` that installs `addr/128 dev ifindex proto P` only if no
/// route for `addr/128` with the same metric exists (`EEXIST` then): someone else's is
/// never replaced.
pub fn build_route_create(seq: u32, addr: Ipv6Addr, ifindex: i32, protocol: u8) -> Vec<u8> {
    let mut b = MsgBuilder::new();
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    host_route_msg(&mut b, RTM_NEWROUTE, flags, seq, addr, ifindex, protocol);
    b.buf
}

/// Builds the `RTM_GETROUTE` lookup of `addr` that the kernel answers with the route
/// entry that matched (`ip -6 route get fibmatch ADDR`), whatever its table or protocol.
pub fn build_route_lookup(seq: u32, addr: Ipv6Addr) -> Vec<u8> {
    let mut hdr = [0u8; 12];
    hdr[0] = AF_INET6;
    hdr[1] = 128;
    hdr[8..12].copy_from_slice(&RTM_F_FIB_MATCH.to_ne_bytes());
    let mut b = MsgBuilder::new();
    b.begin(RTM_GETROUTE, NLM_F_REQUEST, seq, &hdr)
        .attr(RTA_DST, &addr.octets())
        .end();
    b.buf
}

/// Builds the `RTM_DELROUTE` for a route of ours: the kernel matches the protocol, so
/// a route someone else installed for the same address is never removed.
pub fn build_route_delete(seq: u32, addr: Ipv6Addr, ifindex: i32, protocol: u8) -> Vec<u8> {
    let mut b = MsgBuilder::new();
    host_route_msg(
        &mut b,
        RTM_DELROUTE,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        addr,
        ifindex,
        protocol,
    );
    b.buf
}

/// What [`Netlink::install_host_route`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// The relay's route is in place.
    Done,
    /// Someone else's route for the address is there (as the lookup saw it, `None`
    /// when only the exclusive create found it) and was left alone.
    Foreign(Option<Route>),
}

/// A request/response rtnetlink (or nfnetlink) socket.
#[derive(Debug)]
pub struct Netlink {
    sock: NetlinkSocket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens a request socket for `protocol` (`sys::NETLINK_ROUTE`, ...).
    pub fn open(protocol: i32) -> io::Result<Self> {
        Ok(Self {
            sock: NetlinkSocket::open(protocol, &[])?,
            seq: 0,
            buf: vec![0; 1 << 16],
        })
    }

    /// Opens a route socket.
    pub fn route() -> io::Result<Self> {
        Self::open(sys::NETLINK_ROUTE)
    }

    /// The next sequence number.
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends a request built with `seq` and waits for its ACK (or error). Messages with
    /// other sequence numbers (late answers) are skipped.
    pub fn transact(&mut self, msg: &[u8], seq: u32) -> io::Result<()> {
        self.sock.send(msg)?;
        loop {
            let n = self.recv_answer("netlink: no answer")?;
            for m in messages(&self.buf[..n]) {
                if m.seq != seq || m.ty != NLMSG_ERROR {
                    continue;
                }
                let err = error_code(m.payload);
                return if err == 0 {
                    Ok(())
                } else {
                    Err(io::Error::from_raw_os_error(-err))
                };
            }
        }
    }

    /// Reads the next batch of answers into `buf`. The kernel handles a request inside
    /// our send, so the answer is usually queued already: read first, wait (5 s) only if
    /// it is not.
    fn recv_answer(&mut self, timeout_msg: &'static str) -> io::Result<usize> {
        loop {
            match self.sock.recv_now(&mut self.buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !sys::poll_readable(self.sock.raw(), 5000)? {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, timeout_msg));
                    }
                }
                other => return other,
            }
        }
    }

    /// Runs a dump request and hands every answer payload of type `want` to `f`.
    pub fn dump(
        &mut self,
        msg: &[u8],
        seq: u32,
        want: u16,
        mut f: impl FnMut(&[u8]),
    ) -> io::Result<()> {
        self.sock.send(msg)?;
        loop {
            if !sys::poll_readable(self.sock.raw(), 5000)? {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "netlink: dump stalled",
                ));
            }
            let n = self.sock.recv(&mut self.buf)?;
            for m in messages(&self.buf[..n]) {
                if m.seq != seq {
                    continue;
                }
                match m.ty {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let err = error_code(m.payload);
                        if err != 0 {
                            return Err(io::Error::from_raw_os_error(-err));
                        }
                        return Ok(());
                    }
                    ty if ty == want => f(m.payload),
                    _ => {}
                }
            }
        }
    }

    /// Every interface.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let seq = self.next_seq();
        let mut b = MsgBuilder::new();
        b.begin(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq, &[0; 16])
            .end();
        let mut out = Vec::new();
        self.dump(b.bytes(), seq, RTM_NEWLINK, |p| out.extend(Link::parse(p)))?;
        Ok(out)
    }

    /// Every IPv6 address.
    pub fn addrs(&mut self) -> io::Result<Vec<Addr>> {
        let seq = self.next_seq();
        let mut b = MsgBuilder::new();
        b.begin(
            RTM_GETADDR,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            &[AF_INET6, 0, 0, 0, 0, 0, 0, 0],
        )
        .end();
        let mut out = Vec::new();
        self.dump(b.bytes(), seq, RTM_NEWADDR, |p| out.extend(Addr::parse(p)))?;
        Ok(out)
    }

    /// Every IPv6 route with `protocol`.
    pub fn routes_with_protocol(&mut self, protocol: u8) -> io::Result<Vec<Route>> {
        let seq = self.next_seq();
        let mut b = MsgBuilder::new();
        b.begin(
            RTM_GETROUTE,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            &[AF_INET6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        )
        .end();
        let mut out = Vec::new();
        self.dump(b.bytes(), seq, RTM_NEWROUTE, |p| {
            out.extend(Route::parse(p).filter(|r| r.protocol == protocol))
        })?;
        Ok(out)
    }

    /// Installs or replaces `addr/128 dev ifindex proto protocol` (idempotent).
    pub fn replace_route(&mut self, addr: Ipv6Addr, ifindex: i32, protocol: u8) -> io::Result<()> {
        let seq = self.next_seq();
        let msg = build_route_replace(seq, addr, ifindex, protocol);
        self.transact(&msg, seq)
    }

    /// Installs `addr/128 dev ifindex proto protocol` only where no route for
    /// `addr/128` exists; `EEXIST` (`ErrorKind::AlreadyExists`) when one does.
    pub fn create_route(&mut self, addr: Ipv6Addr, ifindex: i32, protocol: u8) -> io::Result<()> {
        let seq = self.next_seq();
        let msg = build_route_create(seq, addr, ifindex, protocol);
        self.transact(&msg, seq)
    }

    /// The host route (`/128`) the kernel would use for `addr`, whoever installed it and
    /// in whichever table; `None` when `addr` is reached through a shorter prefix or not
    /// at all.
    pub fn host_route(&mut self, addr: Ipv6Addr) -> io::Result<Option<Route>> {
        let seq = self.next_seq();
        let msg = build_route_lookup(seq, addr);
        self.sock.send(&msg)?;
        loop {
            let n = self.recv_answer("netlink: no answer to a route lookup")?;
            for m in messages(&self.buf[..n]) {
                if m.seq != seq {
                    continue;
                }
                match m.ty {
                    RTM_NEWROUTE => {
                        return Ok(
                            Route::parse(m.payload).filter(|r| r.dst_len == 128 && r.dst == addr)
                        );
                    }
                    NLMSG_ERROR => {
                        return match -error_code(m.payload) {
                            // No route at all: certainly none of anyone's for `addr`.
                            libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ESRCH => Ok(None),
                            0 => Ok(None),
                            e => Err(io::Error::from_raw_os_error(e)),
                        };
                    }
                    _ => {}
                }
            }
        }
    }

    /// Installs the relay's `addr/128 dev ifindex proto protocol` without ever touching
    /// anyone else's route for `addr`: a host route of ours (this run's, or an earlier
    /// run's found at start) is replaced, one of another protocol is left alone and
    /// returned, and where there is none the route is created exclusively, so one added
    /// meanwhile is not overwritten either.
    pub fn install_host_route(
        &mut self,
        addr: Ipv6Addr,
        ifindex: i32,
        protocol: u8,
    ) -> io::Result<Install> {
        // A failed lookup is not fatal: the exclusive create below is safe on its own.
        match self.host_route(addr).unwrap_or(None) {
            Some(r) if r.protocol != protocol => return Ok(Install::Foreign(Some(r))),
            Some(_) => {
                return self
                    .replace_route(addr, ifindex, protocol)
                    .map(|()| Install::Done);
            }
            None => {}
        }
        match self.create_route(addr, ifindex, protocol) {
            Ok(()) => Ok(Install::Done),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Install::Foreign(None)),
            Err(e) => Err(e),
        }
    }

    /// Removes our route; an already-missing route or interface counts as done.
    pub fn delete_route(&mut self, addr: Ipv6Addr, ifindex: i32, protocol: u8) -> io::Result<()> {
        let seq = self.next_seq();
        let msg = build_route_delete(seq, addr, ifindex, protocol);
        match self.transact(&msg, seq) {
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ESRCH | libc::ENODEV | libc::ENOENT)
                ) =>
            {
                Ok(())
            }
            r => r,
        }
    }
}

/// What the link monitor reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkUpdate {
    /// A link appeared or changed.
    NewLink(Link),
    /// A link was deleted.
    DelLink(Link),
    /// An IPv6 address appeared or changed.
    NewAddr(Addr),
    /// An IPv6 address went away.
    DelAddr(Addr),
    /// Events were lost (ENOBUFS): re-dump everything.
    Resync,
}

/// Subscribed to link and IPv6 address changes.
#[derive(Debug)]
pub struct Monitor {
    sock: NetlinkSocket,
    buf: Vec<u8>,
}

impl Monitor {
    /// Joins `RTNLGRP_LINK` and `RTNLGRP_IPV6_IFADDR`.
    pub fn open() -> io::Result<Self> {
        Ok(Self {
            sock: NetlinkSocket::open(sys::NETLINK_ROUTE, &[RTNLGRP_LINK, RTNLGRP_IPV6_IFADDR])?,
            buf: vec![0; 1 << 16],
        })
    }

    /// Shrinks the socket's receive buffer so a test can overrun it.
    #[cfg(test)]
    pub(crate) fn set_receive_buffer(&self, bytes: i32) -> io::Result<()> {
        self.sock.set_receive_buffer(bytes)
    }

    /// Waits up to `timeout_ms` for events and returns what arrived (maybe nothing).
    pub fn poll(&mut self, timeout_ms: i32) -> io::Result<Vec<LinkUpdate>> {
        if !sys::poll_readable(self.sock.raw(), timeout_ms)? {
            return Ok(Vec::new());
        }
        let n = match self.sock.recv(&mut self.buf) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                return Ok(vec![LinkUpdate::Resync]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(parse_updates(&self.buf[..n]))
    }
}

/// Parses a datagram of monitor messages.
pub fn parse_updates(buf: &[u8]) -> Vec<LinkUpdate> {
    messages(buf)
        .filter_map(|m| match m.ty {
            RTM_NEWLINK => Link::parse(m.payload).map(LinkUpdate::NewLink),
            RTM_DELLINK => Link::parse(m.payload).map(LinkUpdate::DelLink),
            RTM_NEWADDR => Addr::parse(m.payload).map(LinkUpdate::NewAddr),
            RTM_DELADDR => Addr::parse(m.payload).map(LinkUpdate::DelAddr),
            NLMSG_OVERRUN => Some(LinkUpdate::Resync),
            _ => None,
        })
        .collect()
}

/// The (negative) errno of an `NLMSG_ERROR` payload; 0 is an ACK.
fn error_code(payload: &[u8]) -> i32 {
    payload
        .get(..4)
        .map_or(0, |e| i32::from_ne_bytes(e.try_into().unwrap_or_default()))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn route_replace_message_layout() {
        let addr: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let m = build_route_replace(9, addr, 3, 199);
        let msgs: Vec<_> = messages(&m).collect();
        assert_eq!(msgs.len(), 1);
        let msg = msgs[0];
        assert_eq!(msg.ty, RTM_NEWROUTE);
        assert_eq!(msg.seq, 9);
        assert_eq!(
            msg.flags,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
        );
        // The kernel answers our dumps with this same layout, so our parser reads it back.
        let r = Route::parse(msg.payload).unwrap();
        assert_eq!(
            r,
            Route {
                dst: addr,
                dst_len: 128,
                oif: 3,
                table: u32::from(RT_TABLE_MAIN),
                protocol: 199
            }
        );
        assert_eq!(
            u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize,
            m.len()
        );
    }

    #[test]
    fn route_create_never_replaces_and_lookup_asks_for_the_matching_entry() {
        let addr: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let m = build_route_create(3, addr, 5, 199);
        let msg = messages(&m).next().unwrap();
        assert_eq!(msg.ty, RTM_NEWROUTE);
        assert_eq!(
            msg.flags,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        );
        assert_eq!(Route::parse(msg.payload).unwrap().protocol, 199);
        let m = build_route_lookup(4, addr);
        let msg = messages(&m).next().unwrap();
        assert_eq!((msg.ty, msg.flags), (RTM_GETROUTE, NLM_F_REQUEST));
        let flags = u32::from_ne_bytes(msg.payload[8..12].try_into().unwrap());
        assert_eq!(flags, RTM_F_FIB_MATCH);
        assert_eq!(Route::parse(msg.payload).unwrap().dst, addr);
    }

    #[test]
    fn route_delete_names_the_protocol() {
        let addr: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let m = build_route_delete(1, addr, 4, 199);
        let msg = messages(&m).next().unwrap();
        assert_eq!(msg.ty, RTM_DELROUTE);
        assert_eq!(Route::parse(msg.payload).unwrap().protocol, 199);
        assert_eq!(msg.flags & NLM_F_CREATE, 0);
    }

    #[test]
    fn link_message_round_trip_and_truncation() {
        let mut b = MsgBuilder::new();
        let mut hdr = [0u8; 16];
        hdr[2..4].copy_from_slice(&ARPHRD_ETHER.to_ne_bytes());
        hdr[4..8].copy_from_slice(&7i32.to_ne_bytes());
        hdr[8..12].copy_from_slice(&(IFF_UP | IFF_RUNNING).to_ne_bytes());
        b.begin(RTM_NEWLINK, 0, 0, &hdr)
            .attr_str(IFLA_IFNAME, "br0")
            .attr(IFLA_ADDRESS, &[2, 0, 0, 0, 0, 9])
            .attr_u32(IFLA_MTU, 1500)
            .end();
        let ups = parse_updates(b.bytes());
        let LinkUpdate::NewLink(l) = &ups[0] else {
            panic!("{ups:?}")
        };
        assert_eq!(l.name, "br0");
        assert_eq!(l.index, 7);
        assert_eq!(l.mac, Some(Mac([2, 0, 0, 0, 0, 9])));
        assert_eq!(l.mtu, 1500);
        assert!(l.is_running());
        // Every truncation parses to something or nothing, never panics.
        let bytes = b.bytes();
        for n in 0..bytes.len() {
            let _ = parse_updates(&bytes[..n]);
        }
    }

    #[test]
    fn nested_attributes_have_their_length() {
        let mut b = MsgBuilder::new();
        b.begin(1, 0, 0, &[])
            .nest(5)
            .attr_u32(1, 7)
            .attr_u32(2, 8)
            .nest_end()
            .end();
        let msg = messages(b.bytes()).next().unwrap();
        let (ty, inner) = attrs(msg.payload).next().unwrap();
        assert_eq!(ty, 5);
        let v: Vec<_> = attrs(inner).map(|(t, d)| (t, ne_u32(d).unwrap())).collect();
        assert_eq!(v, vec![(1, 7), (2, 8)]);
    }
}
