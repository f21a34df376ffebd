//! The only unsafe code of the crate: thin, safe wrappers over the Linux calls the live
//! driver needs (AF_PACKET capture and transmit, `bpf` for the in-kernel
//! paths in `ebpf`, epoll and `poll`, `umask`, `setns`).
//!
//! The calls go through `rustix` where it has them (sockets, `bind`, `sendto`,
//! `recvfrom`, the socket options it models, epoll, `poll`, interface indexes, `umask`,
//! `setns`). Raw `libc` is left for what rustix lacks, each with a SAFETY note:
//! `recvmmsg`, the socket options it does not model (`SO_ATTACH_FILTER` with its
//! `sock_fprog`, the `PACKET_*` options), `getsockopt(PACKET_STATISTICS)`, and the
//! `sockaddr_ll` address it has no type for. Control messages (`PACKET_AUXDATA`,
//! `SCM_TIMESTAMPNS`) are decoded from their bytes, without pointers.
//!
//! Every function here owns its file descriptor through [`OwnedFd`] or borrows it
//! through [`AsFd`], checks every return value and hands back `io::Result`; nothing
//! above this module touches `libc` pointers.
#![allow(unsafe_code)]

use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use rustix::event::Timespec;
use rustix::net::addr::{SocketAddrArg, SocketAddrLen, SocketAddrOpaque};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketAddrAny, SocketFlags, SocketType};

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant.
    pub k: u32,
}

pub mod ebpf;

/// `sll_pkttype` values (linux/if_packet.h).
pub mod pkttype {
    /// To us.
    pub const HOST: u8 = 0;
    /// To all.
    pub const BROADCAST: u8 = 1;
    /// To a group.
    pub const MULTICAST: u8 = 2;
    /// To someone else (promiscuous mode).
    pub const OTHERHOST: u8 = 3;
    /// Sent by this host.
    pub const OUTGOING: u8 = 4;
}

const ETH_P_ALL: u16 = 0x0003;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `setsockopt` for the options rustix does not model. `fd` is a descriptor the caller
/// holds open for the call (a bad one gives `EBADF`).
fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a valid, initialised T for the duration of the call and the
    // length passed is exactly its size; the kernel only reads it.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    cvt(ret).map(drop)
}

/// Attaches a classic BPF program to any socket; the kernel checks it here.
pub fn attach_filter(fd: impl AsFd, program: &[SockFilter]) -> io::Result<()> {
    let mut insns: Vec<libc::sock_filter> = program
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let len = u16::try_from(insns.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "BPF program too long"))?;
    let prog = libc::sock_fprog {
        len,
        filter: insns.as_mut_ptr(),
    };
    // The kernel copies the program during the call; `insns` outlives it.
    setsockopt(
        fd.as_fd().as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_ATTACH_FILTER,
        &prog,
    )
}

/// A wait of `timeout_ms` milliseconds as rustix takes it: negative is forever.
fn timeout(timeout_ms: i32) -> Option<Timespec> {
    (timeout_ms >= 0).then(|| Timespec {
        tv_sec: i64::from(timeout_ms / 1000),
        tv_nsec: i64::from(timeout_ms % 1000) * 1_000_000,
    })
}

/// Waits until `fd` is readable or `timeout_ms` passes. Returns whether it is readable
/// (or has an error pending, which the next read reports).
pub fn poll_readable(fd: impl AsFd, timeout_ms: i32) -> io::Result<bool> {
    let mut fds = [rustix::event::PollFd::new(
        &fd,
        rustix::event::PollFlags::IN,
    )];
    match rustix::event::poll(&mut fds, timeout(timeout_ms).as_ref()) {
        Ok(n) => Ok(n > 0),
        Err(rustix::io::Errno::INTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Receive queue of a capture socket, in bytes (the kernel doubles it for overhead).
const RECEIVE_BUFFER: usize = 4 << 20;

/// A `struct sockaddr_ll`, for `bind` and `sendto`: rustix has no link-layer address.
struct LinkAddr(libc::sockaddr_ll);

impl LinkAddr {
    /// Interface `ifindex`, protocol `protocol` (host order), no hardware address.
    fn new(ifindex: i32, protocol: u16) -> Self {
        Self(libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: protocol.to_be(),
            sll_ifindex: ifindex,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        })
    }
}

// SAFETY: `with_sockaddr` calls `f` with a pointer to the whole, initialised
// `sockaddr_ll` that `self` holds and with exactly its size, so the pointer is readable
// for that length for the whole call, as the trait requires.
unsafe impl SocketAddrArg for LinkAddr {
    unsafe fn with_sockaddr<R>(
        &self,
        f: impl FnOnce(*const SocketAddrOpaque, SocketAddrLen) -> R,
    ) -> R {
        f(
            (&raw const self.0).cast(),
            mem::size_of::<libc::sockaddr_ll>() as SocketAddrLen,
        )
    }
}

/// An `AF_PACKET`/`SOCK_RAW` socket bound to one interface, receiving every protocol
/// (`ETH_P_ALL`) through a classic BPF filter, with all-multicast membership.
/// Its one reader waits in a blocking read ([`PacketSocket::recv_batch`]); any thread
/// may send.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
}

/// What `PacketSocket::open` managed to set up beyond the essentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketSocketInfo {
    /// `PACKET_IGNORE_OUTGOING` is active (kernel ≥ 4.20); otherwise outgoing frames
    /// reach `recv` and the caller drops them by packet type.
    pub ignores_outgoing: bool,
    /// Frames drained between bind and the real filter.
    pub drained: usize,
}

impl PacketSocket {
    /// Opens a socket on `ifindex` and installs `filter` race-free: the socket starts
    /// with a drop-all filter, is bound, joins all-multicast, is drained until it would
    /// block, and only then gets the real filter (libpcap's technique). Each frame it
    /// reads carries the kernel's receive time ([`Received::rx_time_ns`]).
    pub fn open(ifindex: i32, filter: &[SockFilter]) -> io::Result<(Self, PacketSocketInfo)> {
        Self::open_with(ifindex, filter, true)
    }

    /// [`PacketSocket::open`], with receive times only if `timestamps`: asking for them
    /// makes the kernel stamp every frame it receives, on every interface, and adds a
    /// control message to each read.
    pub fn open_with(
        ifindex: i32,
        filter: &[SockFilter],
        timestamps: bool,
    ) -> io::Result<(Self, PacketSocketInfo)> {
        let fd = rustix::net::socket_with(
            AddressFamily::PACKET,
            // Blocking, for recv_batch; the other reads and sends pass MSG_DONTWAIT.
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None,
        )?;
        let sock = Self { fd, ifindex };
        let drop_all = [SockFilter {
            code: 0x06, // BPF_RET | BPF_K
            jt: 0,
            jf: 0,
            k: 0,
        }];
        attach_filter(&sock, &drop_all)?;
        // The kernel moves a frame's VLAN tag into metadata before the socket sees it
        // (`skb_vlan_untag`); the auxiliary data tells, and `RecvBatch` puts it back.
        setsockopt(
            sock.raw(),
            libc::SOL_PACKET,
            libc::PACKET_AUXDATA,
            &1 as &libc::c_int,
        )?;
        if timestamps {
            // Each frame's receive time, the kernel's `skb->tstamp` (see `Received`).
            setsockopt(
                sock.raw(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                &1 as &libc::c_int,
            )?;
        }
        let ignores_outgoing = setsockopt(
            sock.raw(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            &1 as &libc::c_int,
        )
        .is_ok();
        rustix::net::bind(&sock.fd, &LinkAddr::new(ifindex, ETH_P_ALL))?;
        let mreq = libc::packet_mreq {
            mr_ifindex: ifindex,
            mr_type: libc::PACKET_MR_ALLMULTI as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        setsockopt(
            sock.raw(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            &mreq,
        )?;
        // Room for bursts (a router resolving a whole subnet, a flood) while the relay
        // catches up; kernel memory, used only while frames wait. FORCE needs
        // CAP_NET_ADMIN to pass net.core.rmem_max; without it the plain size, capped.
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(&sock.fd, RECEIVE_BUFFER)
            .is_err()
        {
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&sock.fd, RECEIVE_BUFFER);
        }
        let mut drained = 0;
        let mut buf = [0u8; 2048];
        loop {
            match sock.recv(&mut buf) {
                Ok(_) => drained += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // ENETDOWN and friends: nothing more to drain now.
                Err(_) => break,
            }
        }
        attach_filter(&sock, filter)?;
        Ok((
            sock,
            PacketSocketInfo {
                ignores_outgoing,
                drained,
            },
        ))
    }

    /// The interface index the socket is bound to.
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// The raw descriptor.
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Bounds how long [`PacketSocket::recv_batch`] waits for a first frame (zero: no
    /// bound).
    pub fn set_receive_timeout(&self, timeout: std::time::Duration) -> io::Result<()> {
        rustix::net::sockopt::set_socket_timeout(
            &self.fd,
            rustix::net::sockopt::Timeout::Recv,
            (!timeout.is_zero()).then_some(timeout),
        )?;
        Ok(())
    }

    /// Waits (up to the receive timeout, then `WouldBlock`) for one frame and takes
    /// whatever else is queued, up to the batch's size, in one `recvmmsg`. Returns how
    /// many frames `batch` now holds.
    pub fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        self.recvmmsg(batch, libc::MSG_WAITFORONE)
    }

    /// Takes what is queued, up to the batch's size, without waiting (`WouldBlock` if
    /// nothing is).
    pub fn recv_batch_now(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        self.recvmmsg(batch, libc::MSG_DONTWAIT)
    }

    /// `recvmmsg`, which rustix does not have.
    fn recvmmsg(&self, batch: &mut RecvBatch, flags: libc::c_int) -> io::Result<usize> {
        // The kernel shortens msg_namelen and msg_controllen to what it wrote: restore
        // the room.
        for h in &mut batch.hdrs[..batch.len] {
            h.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            h.msg_hdr.msg_controllen = CONTROL_LEN as _;
        }
        batch.len = 0;
        // SAFETY: the socket is open (owned by `self`); every header points at a live
        // iovec over a buffer of its length, at a sockaddr_ll and a control buffer of
        // the stated sizes, all owned by `batch` and never moved since `RecvBatch::new`
        // (see there), and `batch` is borrowed mutably for the call; the count is the
        // number of headers.
        let got = cvt(unsafe {
            libc::recvmmsg(
                self.raw(),
                batch.hdrs.as_mut_ptr(),
                batch.hdrs.len() as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        })?;
        let got = usize::try_from(got).unwrap_or(0);
        for i in 0..got {
            let h = &batch.hdrs[i];
            let len = (h.msg_len as usize).min(batch.bufs[i].len() - VLAN_ROOM);
            // `size_t` here, `socklen_t` on musl.
            let control_len: usize = h.msg_hdr.msg_controllen as _;
            let meta = frame_meta(&batch.ctrls[i].0[..control_len.min(CONTROL_LEN)]);
            batch.rx_times[i] = meta.rx_time_ns;
            let buf = &mut batch.bufs[i];
            (batch.starts[i], batch.lens[i]) = match meta.vlan {
                // Put the tag back where it was on the wire, between the MAC addresses
                // and the EtherType, as libpcap does, so that the frame is judged (and
                // dumped) as it arrived: a tagged frame is dropped by reason.
                Some((tpid, tci)) if len >= 12 => {
                    buf.copy_within(VLAN_ROOM..VLAN_ROOM + 12, 0);
                    buf[12..14].copy_from_slice(&tpid.to_be_bytes());
                    buf[14..16].copy_from_slice(&tci.to_be_bytes());
                    (0, len + VLAN_ROOM)
                }
                _ => (VLAN_ROOM, len),
            };
        }
        batch.len = got;
        Ok(got)
    }

    /// Receives one frame without blocking: (length, `sll_pkttype`). A frame longer
    /// than `buf` is truncated to it.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, u8)> {
        let (n, _, from) = rustix::net::recvfrom(&self.fd, buf, RecvFlags::DONTWAIT)?;
        Ok((n, from.as_ref().map_or(pkttype::HOST, link_pkttype)))
    }

    /// Frames the kernel dropped because this socket's receive queue was full, since the
    /// previous call (the kernel resets the count on every read).
    pub fn kernel_drops(&self) -> io::Result<u32> {
        let mut st = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: the socket is open (owned by `self`); `st`/`len` describe a writable
        // tpacket_stats of exactly that size, which rustix has no getter for.
        cvt(unsafe {
            libc::getsockopt(
                self.raw(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut st).cast(),
                &mut len,
            )
        })?;
        Ok(st.tp_drops)
    }

    /// Sends one complete Ethernet frame on the bound interface. Frames sent through
    /// this socket are never delivered back to it (`dev_queue_xmit_nit` skips the
    /// sender), so the relay does not capture its own transmissions.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let mut to = LinkAddr::new(self.ifindex, 0);
        to.0.sll_halen = 6;
        if frame.len() >= 6 {
            to.0.sll_addr[..6].copy_from_slice(&frame[..6]);
        }
        let n = rustix::net::sendto(&self.fd, frame, SendFlags::DONTWAIT, &to)?;
        if n != frame.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short packet send",
            ));
        }
        Ok(())
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The `sll_pkttype` of the sender's address `recvfrom` returned.
fn link_pkttype(from: &SocketAddrAny) -> u8 {
    if from.address_family() != AddressFamily::PACKET
        || (from.addr_len() as usize) < mem::offset_of!(libc::sockaddr_ll, sll_pkttype) + 1
    {
        return pkttype::HOST;
    }
    // SAFETY: `as_ptr` points at the address's whole `sockaddr_storage`, which is
    // larger than and at least as aligned as a `sockaddr_ll`; the family and length
    // checked above say the kernel wrote a `sockaddr_ll` there, up to `sll_pkttype` at
    // least. rustix has no link-layer address type to read it safely.
    unsafe { (*from.as_ptr().cast::<libc::sockaddr_ll>()).sll_pkttype }
}

/// Room before each frame of a [`RecvBatch`] for a VLAN tag put back.
const VLAN_ROOM: usize = 4;

/// `CMSG_ALIGN`: control messages and their data start at multiples of the kernel's
/// `size_t`.
const fn cmsg_align(len: usize) -> usize {
    (len + mem::size_of::<usize>() - 1) & !(mem::size_of::<usize>() - 1)
}

/// Length of a `struct cmsghdr` as the kernel writes it: `size_t cmsg_len`, then
/// `int cmsg_level` and `int cmsg_type`, padded to `CMSG_ALIGN`.
const CMSG_HDR: usize = cmsg_align(mem::size_of::<usize>() + 8);

/// `CMSG_SPACE`: room for one control message of `len` bytes of data.
const fn cmsg_space(len: usize) -> usize {
    CMSG_HDR + cmsg_align(len)
}

/// Room for the control messages of one frame: `SCM_TIMESTAMPNS` (a `timespec` of the
/// size `libc::SO_TIMESTAMPNS` asks for) and `PACKET_AUXDATA`, which the kernel writes
/// in that order. Too little room would cut the second off (`MSG_CTRUNC`) and with it
/// the frame's VLAN tag.
const CONTROL_LEN: usize = cmsg_space(mem::size_of::<libc::timespec>())
    + cmsg_space(mem::size_of::<libc::tpacket_auxdata>());

/// A control buffer, aligned as `cmsghdr` needs.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Control([u8; CONTROL_LEN]);

/// The control messages the kernel wrote into `buf`: (level, type, data) each.
fn control_messages(buf: &[u8]) -> impl Iterator<Item = (i32, i32, &[u8])> {
    const W: usize = mem::size_of::<usize>();
    let mut at: usize = 0;
    std::iter::from_fn(move || {
        let hdr = buf.get(at..at.checked_add(CMSG_HDR)?)?;
        let len = usize::from_ne_bytes(hdr[..W].try_into().ok()?);
        let level = i32::from_ne_bytes(hdr[W..W + 4].try_into().ok()?);
        let kind = i32::from_ne_bytes(hdr[W + 4..W + 8].try_into().ok()?);
        // A length shorter than the header or past the buffer ends the walk here.
        let data = buf.get(at + CMSG_HDR..at.checked_add(len)?)?;
        at += cmsg_align(len);
        Some((level, kind, data))
    })
}

/// Reads the `u16` at `at` of `data`, native order.
fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

/// What the control messages of one received frame say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameMeta {
    /// The VLAN tag (TPID, TCI) the kernel took out of the frame.
    vlan: Option<(u16, u16)>,
    /// `SCM_TIMESTAMPNS` in ns since the Unix epoch; 0 if absent.
    rx_time_ns: u64,
}

/// Reads the frame's control messages `control` (one pass: this runs per frame).
fn frame_meta(control: &[u8]) -> FrameMeta {
    let mut meta = FrameMeta {
        vlan: None,
        rx_time_ns: 0,
    };
    for (level, kind, data) in control_messages(control) {
        if level == libc::SOL_PACKET && kind == libc::PACKET_AUXDATA {
            meta.vlan = auxdata_vlan(data);
        } else if level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPNS {
            meta.rx_time_ns = timespec_ns(data).unwrap_or(0);
        }
    }
    meta
}

/// A `timespec` in ns since the epoch: two 64-bit fields (64-bit systems, and the
/// `_NEW` option of 32-bit ones with a 64-bit `time_t`) or two 32-bit ones.
fn timespec_ns(data: &[u8]) -> Option<u64> {
    let (sec, nsec) = match data.len() {
        16 => (
            i64::from_ne_bytes(data[..8].try_into().ok()?),
            i64::from_ne_bytes(data[8..].try_into().ok()?),
        ),
        8 => (
            i64::from(i32::from_ne_bytes(data[..4].try_into().ok()?)),
            i64::from(i32::from_ne_bytes(data[4..].try_into().ok()?)),
        ),
        _ => return None,
    };
    u64::try_from(sec)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(u64::try_from(nsec).ok()?)
}

/// The VLAN tag (TPID, TCI) the kernel took out of a frame, from the data of its
/// `PACKET_AUXDATA` message; `None` for an untagged frame (or a short message).
fn auxdata_vlan(aux: &[u8]) -> Option<(u16, u16)> {
    if aux.len() < mem::size_of::<libc::tpacket_auxdata>() {
        return None;
    }
    let status = u32::from_ne_bytes(
        aux.get(..4)?.try_into().ok()?, // tp_status is the first field
    );
    let tci = u16_at(aux, mem::offset_of!(libc::tpacket_auxdata, tp_vlan_tci))?;
    let tpid = u16_at(aux, mem::offset_of!(libc::tpacket_auxdata, tp_vlan_tpid))?;
    // Kernels before 3.0 have no VLAN_VALID flag but a non-zero TCI; VLAN 0 with
    // priority 0 is a tag too, which only the flag shows.
    if status & libc::TP_STATUS_VLAN_VALID == 0 && tci == 0 {
        return None;
    }
    let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
        tpid
    } else {
        0x8100
    };
    Some((tpid, tci))
}

/// Frames read together by [`PacketSocket::recv_batch`] or
/// [`PacketSocket::recv_batch_now`], with the `recvmmsg` headers set up once: built for
/// every read, they cost two allocations per read, after the wake-up on the answer's
/// path when the reader waits in epoll.
///
/// Each frame is read a few bytes into its buffer, so that a VLAN tag the kernel
/// moved into metadata can be put back in front of it without copying the frame.
pub struct RecvBatch {
    bufs: Vec<Vec<u8>>,
    starts: Vec<usize>,
    lens: Vec<usize>,
    rx_times: Vec<u64>,
    addrs: Vec<libc::sockaddr_ll>,
    ctrls: Vec<Control>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    len: usize,
}

impl RecvBatch {
    /// Room for `count` frames of up to `size` bytes (longer ones are truncated).
    pub fn new(count: usize, size: usize) -> Self {
        let mut batch = Self {
            bufs: (0..count).map(|_| vec![0; size + VLAN_ROOM]).collect(),
            starts: vec![VLAN_ROOM; count],
            lens: vec![0; count],
            rx_times: vec![0; count],
            addrs: vec![LinkAddr::new(0, 0).0; count],
            ctrls: vec![Control([0; CONTROL_LEN]); count],
            iovs: Vec::with_capacity(count),
            // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths); its
            // padding fields (musl) leave no literal to write instead.
            hdrs: (0..count).map(|_| unsafe { mem::zeroed() }).collect(),
            len: 0,
        };
        // The pointers below stay valid: none of these vectors is resized after this,
        // and moving `batch` moves the vectors' handles, not their heap buffers.
        for b in &mut batch.bufs {
            batch.iovs.push(libc::iovec {
                iov_base: b[VLAN_ROOM..].as_mut_ptr().cast(),
                iov_len: size,
            });
        }
        for (i, h) in batch.hdrs.iter_mut().enumerate() {
            h.msg_hdr.msg_name = (&raw mut batch.addrs[i]).cast();
            h.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &raw mut batch.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = batch.ctrls[i].0.as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = CONTROL_LEN as _;
        }
        batch
    }

    /// How many frames fit.
    pub fn capacity(&self) -> usize {
        self.bufs.len()
    }

    /// The frames of the last receive with their `sll_pkttype`.
    pub fn frames(&self) -> impl Iterator<Item = (&[u8], u8)> {
        self.received().map(|r| (r.frame, r.pkttype))
    }

    /// The frames of the last receive with all the kernel said about them.
    pub fn received(&self) -> impl Iterator<Item = Received<'_>> {
        (0..self.len).map(|i| Received {
            frame: &self.bufs[i][self.starts[i]..self.starts[i] + self.lens[i]],
            pkttype: self.addrs[i].sll_pkttype,
            rx_time_ns: self.rx_times[i],
        })
    }
}

/// One frame of a [`RecvBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received<'a> {
    /// The frame as it was on the wire (a VLAN tag the kernel took out put back).
    pub frame: &'a [u8],
    /// Its `sll_pkttype` (see [`pkttype`]).
    pub pkttype: u8,
    /// When the kernel received it, in ns since the Unix epoch (`CLOCK_REALTIME`):
    /// `SCM_TIMESTAMPNS`, which is the frame's `skb->tstamp`, taken as the frame entered
    /// the stack (`netif_receive_skb`, before tc ingress), not when it was read. 0 if the
    /// kernel gave none. The kernel turns stamping on from a work queue once the first
    /// socket of the system asks for it (`net_enable_timestamp`), so frames of the first
    /// moments after `open` may carry the time they were read instead.
    pub rx_time_ns: u64,
}

/// Sets the process umask, returning the previous one.
pub fn umask(mask: u32) -> u32 {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(mask)).as_raw_mode()
}

/// The effective user id.
pub fn geteuid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Interface index of `name`, if it exists.
pub fn if_nametoindex(name: &str) -> Option<i32> {
    // Any socket answers SIOCGIFINDEX (as in glibc's if_nametoindex); a Unix one needs
    // no privilege and no address family the namespace may lack.
    let sock = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .ok()?;
    let idx = rustix::net::netdevice::name_to_index(&sock, name).ok()?;
    if idx == 0 {
        None
    } else {
        i32::try_from(idx).ok()
    }
}

/// Moves the calling thread into the network namespace at `path` (e.g.
/// `/run/netns/NAME`). Only this thread changes namespace.
pub fn enter_netns(path: &std::path::Path) -> io::Result<()> {
    let f = std::fs::File::open(path)?;
    rustix::thread::move_into_link_name_space(
        f.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )?;
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    /// A control message as the kernel writes it, padded to `CMSG_ALIGN`.
    fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        let mut m = (CMSG_HDR + data.len()).to_ne_bytes().to_vec();
        m.extend_from_slice(&level.to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.resize(CMSG_HDR, 0);
        m.extend_from_slice(data);
        m.resize(cmsg_space(data.len()), 0);
        m
    }

    fn vlan_tag(control: &[u8]) -> Option<(u16, u16)> {
        frame_meta(control).vlan
    }

    fn auxdata(status: u32, tci: u16, tpid: u16) -> Vec<u8> {
        let mut a = vec![0; mem::size_of::<libc::tpacket_auxdata>()];
        a[..4].copy_from_slice(&status.to_ne_bytes());
        let tci_at = mem::offset_of!(libc::tpacket_auxdata, tp_vlan_tci);
        a[tci_at..tci_at + 2].copy_from_slice(&tci.to_ne_bytes());
        let tpid_at = mem::offset_of!(libc::tpacket_auxdata, tp_vlan_tpid);
        a[tpid_at..tpid_at + 2].copy_from_slice(&tpid.to_ne_bytes());
        a
    }

    #[test]
    fn control_message_layout_is_libcs() {
        for len in [0, 1, 8, 16, mem::size_of::<libc::tpacket_auxdata>()] {
            let len32 = u32::try_from(len).unwrap();
            // SAFETY: CMSG_SPACE and CMSG_LEN are arithmetic on their argument.
            let (space, with_header) = unsafe { (libc::CMSG_SPACE(len32), libc::CMSG_LEN(len32)) };
            assert_eq!(cmsg_space(len), space as usize, "CMSG_SPACE({len})");
            assert_eq!(CMSG_HDR + len, with_header as usize, "CMSG_LEN({len})");
        }
    }

    #[test]
    fn the_vlan_tag_is_read_from_auxdata() {
        let valid = libc::TP_STATUS_VLAN_VALID;
        let tpid_valid = libc::TP_STATUS_VLAN_TPID_VALID;
        let aux = |status, tci, tpid| {
            cmsg(
                libc::SOL_PACKET,
                libc::PACKET_AUXDATA,
                &auxdata(status, tci, tpid),
            )
        };
        assert_eq!(vlan_tag(&aux(0, 0, 0)), None, "untagged");
        assert_eq!(
            vlan_tag(&aux(valid | tpid_valid, 100, 0x88a8)),
            Some((0x88a8, 100))
        );
        assert_eq!(
            vlan_tag(&aux(valid, 0, 0)),
            Some((0x8100, 0)),
            "priority tag, no TPID"
        );
        assert_eq!(vlan_tag(&aux(0, 7, 0)), Some((0x8100, 7)), "pre-3.0 kernel");
        // Behind another message; an unrelated message alone is no tag.
        let mut two = cmsg(libc::SOL_SOCKET, 99, &[1; 16]);
        two.extend(aux(valid, 5, 0));
        assert_eq!(vlan_tag(&two), Some((0x8100, 5)));
        assert_eq!(vlan_tag(&cmsg(libc::SOL_SOCKET, 99, &[1; 16])), None);
    }

    fn timestamp(sec: i64, nsec: i64) -> Vec<u8> {
        let mut t = sec.to_ne_bytes().to_vec();
        t.extend_from_slice(&nsec.to_ne_bytes());
        cmsg(libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS, &t)
    }

    #[test]
    fn the_receive_time_and_the_vlan_tag_come_from_one_walk() {
        // The kernel writes the timestamp first, then the auxiliary data.
        let mut both = timestamp(1_765_000_000, 123_456_789);
        both.extend(cmsg(
            libc::SOL_PACKET,
            libc::PACKET_AUXDATA,
            &auxdata(libc::TP_STATUS_VLAN_VALID, 42, 0),
        ));
        assert!(both.len() <= CONTROL_LEN, "room for both");
        assert_eq!(
            frame_meta(&both),
            FrameMeta {
                vlan: Some((0x8100, 42)),
                rx_time_ns: 1_765_000_000_123_456_789,
            }
        );
        // Without a timestamp (or with one of another size, or before 1970): 0.
        let aux_only = &both[cmsg_space(16)..];
        assert_eq!(frame_meta(aux_only).rx_time_ns, 0);
        assert_eq!(frame_meta(aux_only).vlan, Some((0x8100, 42)));
        let odd = cmsg(libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS, &[1; 12]);
        assert_eq!(frame_meta(&odd).rx_time_ns, 0);
        assert_eq!(frame_meta(&timestamp(-1, 0)).rx_time_ns, 0);
        // The 32-bit layout.
        let mut small = 7i32.to_ne_bytes().to_vec();
        small.extend_from_slice(&9i32.to_ne_bytes());
        let t32 = cmsg(libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS, &small);
        assert_eq!(frame_meta(&t32).rx_time_ns, 7_000_000_009);
    }

    #[test]
    fn cut_or_bad_control_messages_end_the_walk() {
        let whole = cmsg(
            libc::SOL_PACKET,
            libc::PACKET_AUXDATA,
            &auxdata(libc::TP_STATUS_VLAN_VALID, 9, 0),
        );
        assert_eq!(vlan_tag(&whole), Some((0x8100, 9)));
        for cut in 0..CMSG_HDR + mem::size_of::<libc::tpacket_auxdata>() {
            assert_eq!(vlan_tag(&whole[..cut]), None, "cut at {cut}");
        }
        // A length below the header's would loop forever if it were walked.
        let mut short = whole.clone();
        short[..mem::size_of::<usize>()].copy_from_slice(&3usize.to_ne_bytes());
        assert_eq!(control_messages(&short).count(), 0);
        // A length past the buffer.
        let mut long = whole;
        long[..mem::size_of::<usize>()].copy_from_slice(&usize::MAX.to_ne_bytes());
        assert_eq!(control_messages(&long).count(), 0);
    }
}
