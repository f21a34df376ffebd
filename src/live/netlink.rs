//! rtnetlink without `ip` subprocesses: link and address dumps, the link/address
//! monitor, and the relay's own /128 routes (a `fibmatch` lookup, an exclusive create,
//! a replace, a delete that names our protocol).
//!
//! Messages are `netlink-packet-route`'s types and the socket is `netlink-sys`'s
//! (DESIGN.md, Dependencies); this module only says which requests the relay makes and
//! what their answers mean to it. It is synchronous: one request at a time on a
//! blocking socket, its answer waited for with poll(2), so a kernel that never answers
//! costs a bounded wait, never a hang. (nf_tables, which no such crate covers, is
//! written by hand in the `guard` and `nfnetlink` modules.)

use std::error::Error as _;
use std::fmt;
use std::io;
use std::net::Ipv6Addr;
use std::sync::Arc;

use netlink_packet_core::{
    DecodeError, Emitable, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE,
    NLM_F_REQUEST, NLMSG_ALIGNTO, NetlinkBuffer, NetlinkMessage, NetlinkPayload, NlaBuffer,
    NlasIterator, Parseable, ParseableParametrized,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeader, AddressMessage,
};
use netlink_packet_route::link::{
    LinkAttribute, LinkFlags, LinkHeader, LinkLayerType, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteLwEnCapType, RouteMessage,
    RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, protocols::NETLINK_ROUTE};

use super::sys;
use crate::wire::Mac;

/// Values from the kernel's uapi headers that callers compare with.
pub mod consts {
    use super::{AddressFlags, LinkLayerType};

    /// `IFA_F_PERMANENT`: without it an address has a lifetime (`dynamic`: SLAAC,
    /// privacy, DHCPv6).
    pub const IFA_F_PERMANENT: u32 = AddressFlags::Permanent.bits();
    /// `rtm_protocol` of routes the kernel learned from Router Advertisements
    /// (`RTPROT_RA`, `RouteProtocol::Ra`).
    pub const RTPROT_RA: u8 = 9;
    /// `ARPHRD_ETHER`, the link type of Ethernet, veth, bridge and TAP devices.
    pub const ARPHRD_ETHER: u16 = LinkLayerType::Ether as u16;
    /// `ARPHRD_NONE`: tun (`IFF_TUN`) and WireGuard devices, no link-layer header.
    pub const ARPHRD_NONE: u16 = LinkLayerType::None as u16;
    /// `ARPHRD_PPP`.
    pub const ARPHRD_PPP: u16 = LinkLayerType::Ppp as u16;
}

/// How long a request waits for the kernel's answer.
const ANSWER_TIMEOUT_MS: i32 = 5000;

/// Receive buffer of each datagram: the kernel's dump datagrams are at most 32 KiB.
const RECV_BUFFER: usize = 1 << 16;

/// An rtnetlink request the relay makes; named in its [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `RTM_GETLINK` dump.
    Links,
    /// `RTM_GETADDR` dump (IPv6).
    Addrs,
    /// `RTM_GETROUTE` dump (IPv6) for routes of one protocol.
    Routes {
        /// `rtm_protocol` asked for.
        protocol: u8,
    },
    /// `RTM_GETROUTE` dump (IPv6) of the main table, every protocol.
    MainRoutes,
    /// `RTM_GETROUTE` fibmatch lookup.
    Lookup(Ipv6Addr),
    /// `RTM_NEWROUTE` with `NLM_F_EXCL`.
    Create(HostRoute),
    /// `RTM_NEWROUTE` with `NLM_F_REPLACE`.
    Replace(HostRoute),
    /// `RTM_DELROUTE`.
    Delete(HostRoute),
}

/// `addr/128 dev ifindex proto protocol` in the main table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostRoute {
    /// Destination.
    pub addr: Ipv6Addr,
    /// Output interface.
    pub ifindex: i32,
    /// `rtm_protocol`.
    pub protocol: u8,
}

impl fmt::Display for HostRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/128 (ifindex {}, proto {})",
            self.addr, self.ifindex, self.protocol
        )
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Links => f.write_str("reading the links (RTM_GETLINK)"),
            Self::Addrs => f.write_str("reading the IPv6 addresses (RTM_GETADDR)"),
            Self::Routes { protocol } => {
                write!(
                    f,
                    "listing the IPv6 routes of proto {protocol} (RTM_GETROUTE)"
                )
            }
            Self::MainRoutes => f.write_str("listing the IPv6 main table (RTM_GETROUTE)"),
            Self::Lookup(addr) => write!(f, "looking up the route to {addr} (fibmatch)"),
            Self::Create(r) => write!(f, "creating route {r}"),
            Self::Replace(r) => write!(f, "replacing route {r}"),
            Self::Delete(r) => write!(f, "deleting route {r}"),
        }
    }
}

/// A failed rtnetlink socket operation or request. `{}` says what failed; `{:#}` adds
/// the cause, for log lines that print the error alone (`source()` gives it too).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket could not be opened or bound.
    Open(#[source] io::Error),
    /// The monitor could not join the link and IPv6 address groups.
    Subscribe(#[source] io::Error),
    /// The monitor could not read events.
    Events(#[source] io::Error),
    /// The kernel answered the request with an error.
    Kernel {
        /// What was asked.
        request: Request,
        /// The kernel's errno.
        #[source]
        errno: io::Error,
    },
    /// The socket failed (open, bind, send, receive).
    Socket {
        /// What was asked.
        request: Request,
        /// The system call's error.
        #[source]
        source: io::Error,
    },
    /// The kernel did not answer in time.
    Timeout {
        /// What was asked.
        request: Request,
    },
    /// An answer `netlink-packet-route` could not read.
    Decode {
        /// What was asked.
        request: Request,
        /// The decoder's complaint.
        #[source]
        source: DecodeError,
    },
}

impl Error {
    /// The kernel's errno, when it refused the request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Kernel { errno, .. } => errno.raw_os_error(),
            _ => None,
        }
    }

    /// The request that failed; `None` for the socket set-up and the monitor.
    pub fn request(&self) -> Option<Request> {
        match self {
            Self::Open(_) | Self::Subscribe(_) | Self::Events(_) => None,
            Self::Kernel { request, .. }
            | Self::Socket { request, .. }
            | Self::Timeout { request }
            | Self::Decode { request, .. } => Some(*request),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open(_) => f.write_str("opening an rtnetlink socket")?,
            Self::Subscribe(_) => f.write_str("subscribing to link and IPv6 address events")?,
            Self::Events(_) => f.write_str("reading link and IPv6 address events")?,
            Self::Kernel { request, errno } => {
                write!(f, "{request}: refused by the kernel")?;
                if errno.raw_os_error() == Some(libc::EPERM) {
                    f.write_str(
                        " (this needs CAP_NET_ADMIN: run ndprelay as root or with the \
                         capabilities in packaging/ndprelay.service)",
                    )?;
                }
            }
            Self::Socket { request, .. } => write!(f, "{request}: netlink socket")?,
            Self::Timeout { request } => write!(
                f,
                "{request}: no answer from the kernel within {} s",
                ANSWER_TIMEOUT_MS / 1000
            )?,
            Self::Decode { request, .. } => {
                write!(f, "{request}: unreadable answer from the kernel")?;
            }
        }
        if f.alternate() {
            if let Some(cause) = self.source() {
                write!(f, ": {cause}")?;
            }
        }
        Ok(())
    }
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
    /// Without link-layer addresses, reached by routing: tun and WireGuard
    /// (`ARPHRD_NONE`), PPP, or any non-Ethernet link that reports no hardware address.
    /// As a downstream port it is served from the routing table.
    pub fn is_routed(&self) -> bool {
        matches!(self.hw_type, consts::ARPHRD_NONE | consts::ARPHRD_PPP)
            || (self.hw_type != consts::ARPHRD_ETHER && self.mac.is_none())
    }

    /// Administratively up and with carrier.
    pub fn is_running(&self) -> bool {
        LinkFlags::from_bits_retain(self.flags).contains(LinkFlags::Up | LinkFlags::Running)
    }

    /// The relay's view of an `RTM_NEWLINK`/`RTM_DELLINK` message.
    pub fn from_message(m: &LinkMessage) -> Self {
        let mut link = Self {
            index: i32::try_from(m.header.index).unwrap_or(0),
            name: String::new(),
            hw_type: m.header.link_layer_type.into(),
            mac: None,
            mtu: 0,
            flags: m.header.flags.bits(),
            allmulti: None,
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(name) => link.name.clone_from(name),
                LinkAttribute::Address(mac) => {
                    link.mac = <[u8; 6]>::try_from(mac.as_slice()).ok().map(Mac);
                }
                LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
                LinkAttribute::AllMulticast(n) => link.allmulti = Some(*n),
                _ => {}
            }
        }
        link
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
    /// The relay's view of an `RTM_NEWADDR`/`RTM_DELADDR` message; `None` for non-IPv6.
    pub fn from_message(m: &AddressMessage) -> Option<Self> {
        if m.header.family != AddressFamily::Inet6 {
            return None;
        }
        let mut flags = u32::from(m.header.flags.bits());
        let mut addr = None;
        for a in &m.attributes {
            match a {
                AddressAttribute::Address(std::net::IpAddr::V6(a)) => addr = Some(*a),
                AddressAttribute::Flags(f) => flags = f.bits(),
                _ => {}
            }
        }
        Some(Self {
            index: i32::try_from(m.header.index).ok()?,
            addr: addr?,
            prefix_len: m.header.prefix_len,
            flags,
        })
    }

    /// Usable: neither tentative nor failed DAD.
    pub fn is_usable(&self) -> bool {
        !AddressFlags::from_bits_retain(self.flags)
            .intersects(AddressFlags::Tentative | AddressFlags::Dadfailed)
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
    /// `RTA_PRIORITY` (the metric; 0 when absent).
    pub priority: u32,
    /// `RTN_UNICAST`: it forwards (not `unreachable`, `blackhole`, `prohibit`, ...).
    pub unicast: bool,
}

impl Route {
    /// In the main table (`RT_TABLE_MAIN`), the one the relay serves routed ports from.
    pub fn in_main_table(&self) -> bool {
        self.table == u32::from(libc::RT_TABLE_MAIN)
    }

    /// The relay's view of an `RTM_NEWROUTE` message; `None` for non-IPv6.
    pub fn from_message(m: &RouteMessage) -> Option<Self> {
        if m.header.address_family != AddressFamily::Inet6 {
            return None;
        }
        let mut r = Self {
            dst: Ipv6Addr::UNSPECIFIED,
            dst_len: m.header.destination_prefix_length,
            oif: 0,
            table: u32::from(m.header.table),
            protocol: m.header.protocol.into(),
            priority: 0,
            unicast: m.header.kind == RouteType::Unicast,
        };
        for a in &m.attributes {
            match a {
                RouteAttribute::Destination(RouteAddress::Inet6(dst)) => r.dst = *dst,
                RouteAttribute::Oif(oif) => r.oif = i32::try_from(*oif).unwrap_or(0),
                RouteAttribute::Table(table) => r.table = *table,
                RouteAttribute::Priority(p) => r.priority = *p,
                _ => {}
            }
        }
        Some(r)
    }
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

/// The `rtmsg` of `route` in the main table, for `RTM_NEWROUTE`/`RTM_DELROUTE`.
fn host_route_message(route: HostRoute) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Inet6;
    m.header.destination_prefix_length = 128;
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = route.protocol.into();
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes = vec![
        RouteAttribute::Destination(RouteAddress::Inet6(route.addr)),
        RouteAttribute::Oif(u32::try_from(route.ifindex).unwrap_or(0)),
    ];
    m
}

/// The message and header flags of `request`.
fn request_message(request: Request) -> (RouteNetlinkMessage, u16) {
    use RouteNetlinkMessage as M;
    let dump = NLM_F_REQUEST | NLM_F_DUMP;
    let change = NLM_F_REQUEST | NLM_F_ACK;
    match request {
        Request::Links => (M::GetLink(LinkMessage::default()), dump),
        Request::Addrs => {
            let mut m = AddressMessage::default();
            m.header.family = AddressFamily::Inet6;
            (M::GetAddress(m), dump)
        }
        // The kernel ignores a dump's protocol; the answer is filtered here.
        Request::Routes { .. } | Request::MainRoutes => {
            let mut m = RouteMessage::default();
            m.header.address_family = AddressFamily::Inet6;
            (M::GetRoute(m), dump)
        }
        // `ip -6 route get fibmatch ADDR`: the kernel answers with the route entry that
        // matched, whatever its table or protocol, not a clone for the address.
        Request::Lookup(addr) => {
            let mut m = RouteMessage::default();
            m.header.address_family = AddressFamily::Inet6;
            m.header.destination_prefix_length = 128;
            m.header.flags = RouteFlags::FibMatch;
            m.attributes = vec![RouteAttribute::Destination(RouteAddress::Inet6(addr))];
            (M::GetRoute(m), NLM_F_REQUEST)
        }
        // Only where no route for addr/128 with the same metric exists (`EEXIST`
        // then): someone else's is never replaced.
        Request::Create(r) => (
            M::NewRoute(host_route_message(r)),
            change | NLM_F_CREATE | NLM_F_EXCL,
        ),
        Request::Replace(r) => (
            M::NewRoute(host_route_message(r)),
            change | NLM_F_CREATE | NLM_F_REPLACE,
        ),
        // The kernel matches the protocol, so someone else's route is never removed.
        Request::Delete(r) => (M::DelRoute(host_route_message(r)), change),
    }
}

/// The bytes of `request` with sequence number `seq`.
fn serialize(request: Request, seq: u32) -> Vec<u8> {
    let (inner, flags) = request_message(request);
    let mut msg = NetlinkMessage::from(inner);
    msg.header.flags = flags;
    msg.header.sequence_number = seq;
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

/// One message of a datagram: its sequence number and, unless it is malformed, its
/// decoded payload.
type Answer = (
    u32,
    Result<NetlinkPayload<RouteNetlinkMessage>, DecodeError>,
);

/// The messages of one datagram; stops at the first whose header is malformed.
fn answers(buf: &[u8]) -> impl Iterator<Item = Answer> + '_ {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let nl = NetlinkBuffer::new_checked(rest).ok()?;
        let len = usize::try_from(nl.length()).ok()?;
        let (seq, ty) = (nl.sequence_number(), nl.message_type());
        let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rest[..len])
            .map(|m| m.payload)
            .or_else(|e| {
                let m = attribute_by_attribute(ty, nl.payload()).ok_or(e)?;
                Ok(NetlinkPayload::InnerMessage(m))
            });
        let align = usize::from(NLMSG_ALIGNTO);
        rest = rest.get(len.next_multiple_of(align)..).unwrap_or_default();
        Some((seq, msg))
    })
}

/// `netlink-packet-route` decodes a message whole and fails it for any one attribute
/// it cannot read (it has, for some link kinds' `IFLA_LINKINFO` and empty VF lists);
/// the relay reads a few plain attributes, so such a link, address or route message is
/// decoded again attribute by attribute, keeping those that decode.
fn attribute_by_attribute(ty: u16, payload: &[u8]) -> Option<RouteNetlinkMessage> {
    use RouteNetlinkMessage as M;
    fn each<'b, A>(
        buf: &'b [u8],
        parse: impl Fn(&NlaBuffer<&'b [u8]>) -> Result<A, DecodeError>,
    ) -> Vec<A> {
        NlasIterator::new(buf)
            .map_while(Result::ok)
            .filter_map(|nla| parse(&nla).ok())
            .collect()
    }
    match ty {
        libc::RTM_NEWLINK | libc::RTM_DELLINK => {
            let mut m = LinkMessage::default();
            m.header = LinkHeader::parse(payload).ok()?;
            let family = m.header.interface_family;
            let rest = payload.get(m.header.buffer_len()..)?;
            m.attributes = each(rest, |nla| LinkAttribute::parse_with_param(nla, family));
            Some(if ty == libc::RTM_NEWLINK {
                M::NewLink(m)
            } else {
                M::DelLink(m)
            })
        }
        libc::RTM_NEWADDR | libc::RTM_DELADDR => {
            let mut m = AddressMessage::default();
            m.header = AddressHeader::parse(payload).ok()?;
            let rest = payload.get(m.header.buffer_len()..)?;
            m.attributes = each(rest, AddressAttribute::parse);
            Some(if ty == libc::RTM_NEWADDR {
                M::NewAddress(m)
            } else {
                M::DelAddress(m)
            })
        }
        libc::RTM_NEWROUTE => {
            let mut m = RouteMessage::default();
            m.header = RouteHeader::parse(payload).ok()?;
            let param = (
                m.header.address_family,
                m.header.kind,
                RouteLwEnCapType::default(),
            );
            let rest = payload.get(m.header.buffer_len()..)?;
            m.attributes = each(rest, |nla| RouteAttribute::parse_with_param(nla, param));
            Some(M::NewRoute(m))
        }
        _ => None,
    }
}

/// What one answer means to a request: keep reading, or the request's outcome.
enum Step<T> {
    More,
    Finished(Result<T, Error>),
}

/// An `NLMSG_ERROR` (an ACK when its code is 0) as the request's outcome.
fn acked(request: Request, code: Option<std::num::NonZeroI32>) -> Result<(), Error> {
    match code {
        None => Ok(()),
        Some(c) => Err(Error::Kernel {
            request,
            errno: io::Error::from_raw_os_error(-c.get()),
        }),
    }
}

/// Reads a change's answer: the ACK or error.
fn on_ack(request: Request, payload: NetlinkPayload<RouteNetlinkMessage>) -> Step<()> {
    match payload {
        NetlinkPayload::Error(e) => Step::Finished(acked(request, e.code)),
        _ => Step::More,
    }
}

/// Reads a lookup's answer: the host route the kernel would use for `addr`, `None` when
/// `addr` is reached through a shorter prefix or not at all.
fn on_lookup(
    request: Request,
    addr: Ipv6Addr,
    payload: NetlinkPayload<RouteNetlinkMessage>,
) -> Step<Option<Route>> {
    match payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(m)) => Step::Finished(Ok(
            Route::from_message(&m).filter(|r| r.dst_len == 128 && r.dst == addr),
        )),
        NetlinkPayload::Error(e) => Step::Finished(match acked(request, e.code) {
            // No route at all: certainly none of anyone's for `addr`.
            Err(e)
                if matches!(
                    e.errno(),
                    Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ESRCH)
                ) =>
            {
                Ok(None)
            }
            other => other.map(|()| None),
        }),
        _ => Step::More,
    }
}

/// Reads one answer of a dump into `out`, until `NLMSG_DONE`.
fn on_dump<T>(
    request: Request,
    payload: NetlinkPayload<RouteNetlinkMessage>,
    out: &mut Vec<T>,
    keep: &impl Fn(&RouteNetlinkMessage) -> Option<T>,
) -> Step<()> {
    match payload {
        NetlinkPayload::Done(d) if d.code == 0 => Step::Finished(Ok(())),
        NetlinkPayload::Done(d) => Step::Finished(Err(Error::Kernel {
            request,
            errno: io::Error::from_raw_os_error(-d.code),
        })),
        NetlinkPayload::Error(e) => Step::Finished(acked(request, e.code)),
        NetlinkPayload::InnerMessage(m) => {
            out.extend(keep(&m));
            Step::More
        }
        _ => Step::More,
    }
}

fn keep_link(m: &RouteNetlinkMessage) -> Option<Link> {
    match m {
        RouteNetlinkMessage::NewLink(l) => Some(Link::from_message(l)),
        _ => None,
    }
}

fn keep_addr(m: &RouteNetlinkMessage) -> Option<Addr> {
    match m {
        RouteNetlinkMessage::NewAddress(a) => Addr::from_message(a),
        _ => None,
    }
}

fn keep_route(protocol: u8) -> impl Fn(&RouteNetlinkMessage) -> Option<Route> {
    move |m| match m {
        RouteNetlinkMessage::NewRoute(r) => {
            Route::from_message(r).filter(|r| r.protocol == protocol)
        }
        _ => None,
    }
}

fn keep_main_route(m: &RouteNetlinkMessage) -> Option<Route> {
    match m {
        RouteNetlinkMessage::NewRoute(r) => Route::from_message(r).filter(Route::in_main_table),
        _ => None,
    }
}

/// Opens a `NETLINK_ROUTE` socket bound to a kernel-chosen port.
fn open_socket() -> Result<Socket, Error> {
    let mut sock = Socket::new(NETLINK_ROUTE).map_err(Error::Open)?;
    // A big receive buffer makes ENOBUFS (lost events) rare; it is still handled.
    let _ = sock.set_rx_buf_sz(1 << 20);
    // Extended acks add the kernel's reason to errors (best effort; ignored here).
    let _ = sock.set_ext_ack(true);
    sock.bind_auto().map_err(Error::Open)?;
    Ok(sock)
}

/// A request/response rtnetlink socket.
#[derive(Debug)]
pub struct Netlink {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens a route socket.
    pub fn route() -> Result<Self, Error> {
        Ok(Self {
            sock: open_socket()?,
            seq: 0,
            buf: vec![0; RECV_BUFFER],
        })
    }

    /// Sends `request` and hands each answer with its sequence number to `step` until
    /// it returns the outcome. Answers to earlier requests (late ones) are skipped;
    /// malformed ones end a dump with [`Error::Decode`], since the relay must not act
    /// on a partial list of its routes.
    fn ask<T>(
        &mut self,
        request: Request,
        mut step: impl FnMut(NetlinkPayload<RouteNetlinkMessage>) -> Step<T>,
    ) -> Result<T, Error> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let socket_error = |source| Error::Socket { request, source };
        self.sock
            .send(&serialize(request, seq), 0)
            .map_err(socket_error)?;
        loop {
            let n = self.recv_answer(request)?;
            for (answer_seq, payload) in answers(&self.buf[..n]) {
                if answer_seq != seq {
                    continue;
                }
                let payload = payload.map_err(|source| Error::Decode { request, source })?;
                if let Step::Finished(outcome) = step(payload) {
                    return outcome;
                }
            }
        }
    }

    /// Reads the next datagram of answers into `buf`. The kernel handles a request
    /// inside our send, so the answer is usually queued already: read first, wait only
    /// if it is not.
    fn recv_answer(&mut self, request: Request) -> Result<usize, Error> {
        let socket_error = |source| Error::Socket { request, source };
        loop {
            match self
                .sock
                .recv(&mut self.buf.as_mut_slice(), libc::MSG_DONTWAIT)
            {
                Ok(n) => return Ok(n.min(self.buf.len())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !sys::poll_readable(&self.sock, ANSWER_TIMEOUT_MS).map_err(socket_error)? {
                        return Err(Error::Timeout { request });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(socket_error(e)),
            }
        }
    }

    fn dump<T>(
        &mut self,
        request: Request,
        keep: impl Fn(&RouteNetlinkMessage) -> Option<T>,
    ) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        self.ask(request, |p| on_dump(request, p, &mut out, &keep))?;
        Ok(out)
    }

    /// Every interface.
    pub fn links(&mut self) -> Result<Vec<Link>, Error> {
        self.dump(Request::Links, keep_link)
    }

    /// Every IPv6 address.
    pub fn addrs(&mut self) -> Result<Vec<Addr>, Error> {
        self.dump(Request::Addrs, keep_addr)
    }

    /// Every IPv6 route of the main table.
    pub fn main_routes(&mut self) -> Result<Vec<Route>, Error> {
        self.dump(Request::MainRoutes, keep_main_route)
    }

    /// Every IPv6 route with `protocol`.
    pub fn routes_with_protocol(&mut self, protocol: u8) -> Result<Vec<Route>, Error> {
        self.dump(Request::Routes { protocol }, keep_route(protocol))
    }

    /// Installs or replaces `addr/128 dev ifindex proto protocol` (idempotent).
    pub fn replace_route(
        &mut self,
        addr: Ipv6Addr,
        ifindex: i32,
        protocol: u8,
    ) -> Result<(), Error> {
        let request = Request::Replace(HostRoute {
            addr,
            ifindex,
            protocol,
        });
        self.ask(request, |p| on_ack(request, p))
    }

    /// Installs `addr/128 dev ifindex proto protocol` only where no route for
    /// `addr/128` exists; an [`Error::Kernel`] with `EEXIST` when one does.
    pub fn create_route(
        &mut self,
        addr: Ipv6Addr,
        ifindex: i32,
        protocol: u8,
    ) -> Result<(), Error> {
        let request = Request::Create(HostRoute {
            addr,
            ifindex,
            protocol,
        });
        self.ask(request, |p| on_ack(request, p))
    }

    /// The host route (`/128`) the kernel would use for `addr`, whoever installed it and
    /// in whichever table; `None` when `addr` is reached through a shorter prefix or not
    /// at all.
    pub fn host_route(&mut self, addr: Ipv6Addr) -> Result<Option<Route>, Error> {
        let request = Request::Lookup(addr);
        self.ask(request, |p| on_lookup(request, addr, p))
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
    ) -> Result<Install, Error> {
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
        created(self.create_route(addr, ifindex, protocol))
    }

    /// Removes our route; an already-missing route or interface counts as done.
    pub fn delete_route(
        &mut self,
        addr: Ipv6Addr,
        ifindex: i32,
        protocol: u8,
    ) -> Result<(), Error> {
        let request = Request::Delete(HostRoute {
            addr,
            ifindex,
            protocol,
        });
        match self.ask(request, |p| on_ack(request, p)) {
            Err(e) if matches!(e.errno(), Some(libc::ESRCH | libc::ENODEV | libc::ENOENT)) => {
                Ok(())
            }
            r => r,
        }
    }
}

/// The outcome of the exclusive create: `EEXIST` means a route appeared meanwhile.
fn created(result: Result<(), Error>) -> Result<Install, Error> {
    match result {
        Ok(()) => Ok(Install::Done),
        Err(e) if e.errno() == Some(libc::EEXIST) => Ok(Install::Foreign(None)),
        Err(e) => Err(e),
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
    /// A route of the main table appeared or changed (`present`), or went.
    Route {
        /// The route.
        route: Route,
        /// `RTM_NEWROUTE` rather than `RTM_DELROUTE`.
        present: bool,
    },
    /// Events were lost (ENOBUFS): re-dump everything.
    Resync,
}

/// Subscribed to link and IPv6 address changes, and to route changes while
/// [`RouteEvents`] asks for them.
#[derive(Debug)]
pub struct Monitor {
    sock: Arc<Socket>,
    buf: Vec<u8>,
}

/// Whether the [`Monitor`] hears IPv6 route changes: only while some port is routed,
/// because every route the host's kernel adds or removes (an RA flood on the uplink makes
/// thousands) would otherwise cost the relay for nothing.
#[derive(Debug)]
pub struct RouteEvents {
    sock: Arc<Socket>,
    joined: bool,
}

impl RouteEvents {
    /// Joins or leaves `RTNLGRP_IPV6_ROUTE`; a failure is logged and leaves it as it was.
    pub fn want(&mut self, on: bool) {
        if on == self.joined {
            return;
        }
        let group = libc::RTNLGRP_IPV6_ROUTE;
        let done = if on {
            self.sock.add_membership(group)
        } else {
            self.sock.drop_membership(group)
        };
        match done {
            Ok(()) => self.joined = on,
            Err(e) => log::error!("netlink: cannot change the route-change subscription: {e}"),
        }
    }

    /// Whether route changes are heard now.
    pub fn joined(&self) -> bool {
        self.joined
    }
}

impl Monitor {
    /// Joins `RTNLGRP_LINK` and `RTNLGRP_IPV6_IFADDR`; the returned [`RouteEvents`]
    /// joins `RTNLGRP_IPV6_ROUTE` when routed ports need the main table followed.
    pub fn open() -> Result<(Self, RouteEvents), Error> {
        let sock = Arc::new(open_socket()?);
        for group in [libc::RTNLGRP_LINK, libc::RTNLGRP_IPV6_IFADDR] {
            sock.add_membership(group).map_err(Error::Subscribe)?;
        }
        let events = RouteEvents {
            sock: Arc::clone(&sock),
            joined: false,
        };
        let monitor = Self {
            sock,
            buf: vec![0; RECV_BUFFER],
        };
        Ok((monitor, events))
    }

    /// Shrinks the socket's receive buffer so a test can overrun it.
    #[cfg(test)]
    pub(crate) fn set_receive_buffer(&self, bytes: i32) -> io::Result<()> {
        self.sock.set_rx_buf_sz(bytes)
    }

    /// Waits up to `timeout_ms` for events and returns what arrived (maybe nothing).
    pub fn poll(&mut self, timeout_ms: i32) -> Result<Vec<LinkUpdate>, Error> {
        if !sys::poll_readable(&self.sock, timeout_ms).map_err(Error::Events)? {
            return Ok(Vec::new());
        }
        let n = match self
            .sock
            .recv(&mut self.buf.as_mut_slice(), libc::MSG_DONTWAIT)
        {
            Ok(n) => n.min(self.buf.len()),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                return Ok(vec![LinkUpdate::Resync]);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) =>
            {
                return Ok(Vec::new());
            }
            Err(e) => return Err(Error::Events(e)),
        };
        Ok(parse_updates(&self.buf[..n]))
    }
}

fn route_update(m: &RouteMessage, present: bool) -> Option<LinkUpdate> {
    Route::from_message(m)
        .filter(Route::in_main_table)
        .map(|route| LinkUpdate::Route { route, present })
}

/// Parses a datagram of monitor messages. One the decoder cannot read asks for a
/// resync (re-dumping the links and addresses), so no change goes unnoticed.
pub fn parse_updates(buf: &[u8]) -> Vec<LinkUpdate> {
    use RouteNetlinkMessage as M;
    let mut out = Vec::new();
    for (_, payload) in answers(buf) {
        let update = match payload {
            Ok(NetlinkPayload::InnerMessage(m)) => match m {
                M::NewLink(l) => Some(LinkUpdate::NewLink(Link::from_message(&l))),
                M::DelLink(l) => Some(LinkUpdate::DelLink(Link::from_message(&l))),
                M::NewAddress(a) => Addr::from_message(&a).map(LinkUpdate::NewAddr),
                M::DelAddress(a) => Addr::from_message(&a).map(LinkUpdate::DelAddr),
                M::NewRoute(r) => route_update(&r, true),
                M::DelRoute(r) => route_update(&r, false),
                _ => None,
            },
            Ok(NetlinkPayload::Overrun(_)) => Some(LinkUpdate::Resync),
            Ok(_) => None,
            Err(e) => {
                log::warn!("unreadable link or address event ({e}); re-reading links");
                Some(LinkUpdate::Resync)
            }
        };
        out.extend(update);
    }
    out
}

#[cfg(test)]
mod test {
    //! Requests are compared byte for byte with the ones the hand-written codec sent
    //! (which the kernel accepted for years of netns tests); answers are real kernel
    //! answers captured by `tests/data/netlink/capture.sh` (Linux 6.18) in a namespace
    //! with veth d0/d1 (02:00:00:00:00:01/02), 2001:db8::1/64 on d0 and an
    //! administrator's `2001:db8::7/128 dev d0 proto static`.

    use super::*;

    const LINKS: &[u8] = include_bytes!("../../tests/data/netlink/links.bin");
    const ADDRS: &[u8] = include_bytes!("../../tests/data/netlink/addrs.bin");
    const ROUTES: &[u8] = include_bytes!("../../tests/data/netlink/routes.bin");
    const LOOKUP_STATIC: &[u8] = include_bytes!("../../tests/data/netlink/lookup_static.bin");
    const LOOKUP_PREFIX: &[u8] = include_bytes!("../../tests/data/netlink/lookup_prefix.bin");
    const LOOKUP_UNREACHABLE: &[u8] =
        include_bytes!("../../tests/data/netlink/lookup_unreachable.bin");
    const CREATE_EXISTS: &[u8] = include_bytes!("../../tests/data/netlink/create_exists.bin");
    const CREATE_DONE: &[u8] = include_bytes!("../../tests/data/netlink/create_done.bin");
    const EVENTS: &[u8] = include_bytes!("../../tests/data/netlink/events.bin");

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn route(addr: &str) -> HostRoute {
        HostRoute {
            addr: a(addr),
            ifindex: 3,
            protocol: 199,
        }
    }

    /// Feeds a captured answer to `step`, as [`Netlink::ask`] does, for sequence `seq`.
    fn replay<T>(
        buf: &[u8],
        seq: u32,
        mut step: impl FnMut(NetlinkPayload<RouteNetlinkMessage>) -> Step<T>,
    ) -> Result<T, Error> {
        for (s, payload) in answers(buf) {
            if s != seq {
                continue;
            }
            if let Step::Finished(outcome) = step(payload.unwrap()) {
                return outcome;
            }
        }
        panic!("no outcome for sequence {seq}");
    }

    fn dump<T>(
        buf: &[u8],
        seq: u32,
        request: Request,
        keep: impl Fn(&RouteNetlinkMessage) -> Option<T>,
    ) -> Vec<T> {
        let mut out = Vec::new();
        replay(buf, seq, |p| on_dump(request, p, &mut out, &keep)).unwrap();
        out
    }

    #[test]
    fn requests_are_the_bytes_the_kernel_accepted_before() {
        let r = route("2001:db8::7");
        let host = "0a800000fec70001000000001400010020010db8000000000000000000000007\
                    0800040003000000";
        for (request, expected) in [
            (
                Request::Replace(r),
                format!("38000000180005050900000000000000{host}"),
            ),
            (
                Request::Create(r),
                format!("38000000180005060900000000000000{host}"),
            ),
            (
                Request::Delete(r),
                format!("38000000190005000900000000000000{host}"),
            ),
            (
                Request::Lookup(r.addr),
                "300000001a00010009000000000000000a800000000000000020000014000100\
                 20010db8000000000000000000000007"
                    .to_owned(),
            ),
            (
                Request::Links,
                "2000000012000103090000000000000000000000000000000000000000000000".to_owned(),
            ),
            (
                Request::Addrs,
                "180000001600010309000000000000000a00000000000000".to_owned(),
            ),
            (
                Request::Routes { protocol: 199 },
                "1c0000001a00010309000000000000000a0000000000000000000000".to_owned(),
            ),
        ] {
            assert_eq!(serialize(request, 9), hex(&expected), "{request}");
        }
    }

    #[test]
    fn link_dump_of_a_real_kernel() {
        let links = dump(LINKS, 1, Request::Links, keep_link);
        let names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["lo", "d1", "d0"]);
        let d0 = &links[2];
        assert_eq!(d0.mac, Some(Mac([2, 0, 0, 0, 0, 1])));
        assert_eq!((d0.hw_type, d0.mtu), (consts::ARPHRD_ETHER, 1500));
        assert!(d0.is_running());
        assert!(d0.allmulti.is_some());
        let lo = &links[0];
        assert_eq!((lo.index, lo.hw_type), (1, 772)); // ARPHRD_LOOPBACK
        assert!(!lo.is_running());
    }

    #[test]
    fn a_link_with_an_attribute_the_crate_cannot_read_keeps_the_rest() {
        // Cut d0's IFLA_TXQLEN (13, a u32) to one byte; its padded length, so every
        // other attribute's place, stays the same.
        let mut buf = LINKS.to_vec();
        let mut start = 0;
        let mut last = 0..0; // d0's RTM_NEWLINK, the last one
        while let Ok(m) = NetlinkBuffer::new_checked(&buf[start..]) {
            let len = m.length() as usize;
            if m.message_type() == libc::RTM_NEWLINK {
                last = start..start + len;
            }
            start += len.next_multiple_of(4);
        }
        let mut at = last.start + 32; // netlink header, ifinfomsg
        loop {
            let len = usize::from(u16::from_ne_bytes([buf[at], buf[at + 1]]));
            if u16::from_ne_bytes([buf[at + 2], buf[at + 3]]) == 13 {
                buf[at..at + 2].copy_from_slice(&5u16.to_ne_bytes());
                break;
            }
            at += len.next_multiple_of(4);
        }
        assert!(NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[last]).is_err());
        let links = dump(&buf, 1, Request::Links, keep_link);
        assert_eq!(links, dump(LINKS, 1, Request::Links, keep_link));
    }

    #[test]
    fn address_dump_of_a_real_kernel() {
        let addrs = dump(ADDRS, 2, Request::Addrs, keep_addr);
        let d0 = addrs.iter().find(|x| x.addr == a("2001:db8::1")).unwrap();
        assert_eq!(d0.prefix_len, 64);
        assert!(d0.is_usable());
        assert_ne!(d0.flags & consts::IFA_F_PERMANENT, 0);
        // d0's EUI-64 link-local (from 02:00:00:00:00:01), on the same link.
        let ll = addrs
            .iter()
            .find(|x| x.addr == a("fe80::ff:fe00:1"))
            .unwrap();
        assert_eq!((ll.index, ll.prefix_len), (d0.index, 64));
    }

    #[test]
    fn route_dump_keeps_only_the_asked_protocol() {
        let statics = dump(ROUTES, 3, Request::Routes { protocol: 4 }, keep_route(4));
        assert_eq!(statics.len(), 1);
        let r = statics[0];
        assert_eq!((r.dst, r.dst_len, r.table), (a("2001:db8::7"), 128, 254));
        assert_ne!(r.oif, 0);
        assert!(
            dump(
                ROUTES,
                3,
                Request::Routes { protocol: 199 },
                keep_route(199)
            )
            .is_empty()
        );
        // Kernel routes (the /64, fe80::/64, multicast, local) are there too.
        assert!(dump(ROUTES, 3, Request::Routes { protocol: 2 }, keep_route(2)).len() >= 2);
    }

    #[test]
    fn fibmatch_answers_a_host_route_a_prefix_or_none() {
        let lookup = |buf, seq, addr| {
            let request = Request::Lookup(a(addr));
            replay(buf, seq, |p| on_lookup(request, a(addr), p)).unwrap()
        };
        let r = lookup(LOOKUP_STATIC, 4, "2001:db8::7").unwrap();
        assert_eq!((r.dst, r.dst_len, r.protocol), (a("2001:db8::7"), 128, 4));
        // 2001:db8::9 matches the /64: no host route of anyone's.
        assert_eq!(lookup(LOOKUP_PREFIX, 5, "2001:db8::9"), None);
        assert_eq!(lookup(LOOKUP_UNREACHABLE, 6, "2001:db9::1"), None);
    }

    #[test]
    fn exclusive_create_reports_a_foreign_route_and_acks() {
        let request = Request::Create(route("2001:db8::7"));
        let exists = replay(CREATE_EXISTS, 7, |p| on_ack(request, p));
        let e = exists.as_ref().unwrap_err();
        assert_eq!(e.errno(), Some(libc::EEXIST));
        assert_eq!(e.request(), Some(request));
        assert!(
            format!("{e:#}").ends_with(&io::Error::from_raw_os_error(libc::EEXIST).to_string())
        );
        assert!(!format!("{e}").contains("os error"));
        assert_eq!(created(exists).unwrap(), Install::Foreign(None));
        let request = Request::Create(route("2001:db8::a"));
        let done = replay(CREATE_DONE, 8, |p| on_ack(request, p));
        assert_eq!(created(done).unwrap(), Install::Done);
    }

    #[test]
    fn route_events_of_the_main_table_are_reported_with_type_and_metric() {
        use RouteNetlinkMessage as M;
        let event = |m: M| {
            let mut msg = NetlinkMessage::from(m);
            msg.finalize();
            let mut buf = vec![0; msg.buffer_len()];
            msg.serialize(&mut buf);
            parse_updates(&buf)
        };
        let mut m = host_route_message(HostRoute {
            addr: a("2001:db8:1::100"),
            ifindex: 7,
            protocol: 3,
        });
        m.attributes.push(RouteAttribute::Priority(1024));
        let ups = event(M::NewRoute(m.clone()));
        let [LinkUpdate::Route { route, present }] = ups.as_slice() else {
            panic!("one route event expected: {ups:?}");
        };
        assert!(*present && route.unicast && route.in_main_table());
        assert_eq!(
            (
                route.dst,
                route.dst_len,
                route.oif,
                route.priority,
                route.protocol
            ),
            (a("2001:db8:1::100"), 128, 7, 1024, 3)
        );
        let mut gone = m.clone();
        gone.header.kind = RouteType::Unreachable;
        let ups = event(M::DelRoute(gone));
        assert!(matches!(
            ups.as_slice(),
            [LinkUpdate::Route { route, present: false }] if !route.unicast
        ));
        // The local table (the host's own addresses) is not the relay's business.
        let mut local = m;
        local.header.table = 255;
        assert_eq!(event(M::NewRoute(local)), vec![]);
    }

    #[test]
    fn events_of_a_real_kernel() {
        let ups = parse_updates(EVENTS);
        let d1 = |u: &LinkUpdate| match u {
            LinkUpdate::NewLink(l) | LinkUpdate::DelLink(l) => l.name == "d1",
            _ => false,
        };
        assert!(
            ups.iter()
                .any(|u| matches!(u, LinkUpdate::NewLink(l) if l.name == "d1" && l.mtu == 1400))
        );
        let added = ups.iter().position(
            |u| matches!(u, LinkUpdate::NewAddr(x) if x.addr == a("2001:db8::2") && x.prefix_len == 64),
        );
        let removed = ups
            .iter()
            .position(|u| matches!(u, LinkUpdate::DelAddr(x) if x.addr == a("2001:db8::2")));
        assert!(added.unwrap() < removed.unwrap());
        assert!(matches!(
            ups.iter().rfind(|u| d1(u)),
            Some(LinkUpdate::DelLink(_))
        ));
        assert!(!ups.contains(&LinkUpdate::Resync));
    }

    #[test]
    fn truncated_answers_never_panic() {
        for buf in [LINKS, ADDRS, ROUTES, LOOKUP_STATIC, CREATE_EXISTS, EVENTS] {
            for n in 0..buf.len().min(2048) {
                let _ = parse_updates(&buf[..n]);
                let _ = answers(&buf[..n]).count();
            }
        }
        // A message whose family header is cut short is reported, not skipped.
        let mut bad = LOOKUP_STATIC.to_vec();
        bad[0] = 20; // length: the netlink header and 4 of the rtmsg's 12 bytes
        bad.truncate(20);
        let (_, payload) = answers(&bad).next().unwrap();
        assert!(payload.is_err());
        assert_eq!(parse_updates(&bad), [LinkUpdate::Resync]);
    }
}
