//! The only unsafe code of the crate: thin, safe wrappers over the Linux socket calls the
//! live driver needs (AF_PACKET capture and transmit, AF_NETLINK, `bpf` for the in-kernel
//! fast path in `ebpf`, `poll`, `umask`).
//!
//! Every function here owns its file descriptor through [`OwnedFd`], checks every return
//! value and hands back `io::Result`; nothing above this module touches `libc` pointers.
#![allow(unsafe_code)]

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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

fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        // Non-negative ssize_t always fits usize.
        Ok(ret as usize)
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a valid, initialised T for the duration of the call and the
    // length passed is exactly its size.
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
pub fn attach_filter(fd: RawFd, program: &[SockFilter]) -> io::Result<()> {
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
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)
}

/// Waits until `fd` is readable or `timeout_ms` passes. Returns whether it is readable
/// (or has an error pending, which the next read reports).
pub fn poll_readable(fd: RawFd, timeout_ms: i32) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, count 1.
    let ret = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    match cvt(ret) {
        Ok(n) => Ok(n > 0),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(e),
    }
}

/// Receive queue of a capture socket, in bytes (the kernel doubles it for overhead).
const RECEIVE_BUFFER: libc::c_int = 4 << 20;

/// An `AF_PACKET`/`SOCK_RAW` socket bound to one interface, receiving every protocol
/// (`ETH_P_ALL`) through a classic BPF filter, with all-multicast membership.
///
/// Its reader waits either in a blocking read ([`PacketSocket::recv_batch`]) or in
/// [`PacketSocket::wait_readable`] on an epoll instance of the socket's own: there,
/// another thread that is about to read the socket itself can keep the reader asleep
/// meanwhile ([`PacketSocket::hold_wakeups`]).
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
    epoll: OwnedFd,
    /// How many threads hold the reader's wake-ups (see `hold_wakeups`); the lock also
    /// orders the `epoll_ctl` calls that arm and disarm it.
    holds: parking_lot::Mutex<u32>,
    /// Holds taken so far, for the reader to see whether they happen here.
    holds_taken: std::sync::atomic::AtomicU64,
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
    /// block, and only then gets the real filter (libpcap's technique).
    pub fn open(ifindex: i32, filter: &[SockFilter]) -> io::Result<(Self, PacketSocketInfo)> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = cvt(unsafe {
            libc::socket(
                libc::AF_PACKET,
                // Blocking, for recv_batch; the other reads and sends pass MSG_DONTWAIT.
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                0,
            )
        })?;
        // SAFETY: `raw` is a freshly created descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: plain epoll_create1(2) call; the result is checked before use.
        let ep = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `ep` is a freshly created descriptor nobody else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(ep) };
        let sock = Self {
            fd,
            ifindex,
            epoll,
            holds: parking_lot::Mutex::new(0),
            holds_taken: std::sync::atomic::AtomicU64::new(0),
        };
        sock.epoll_ctl(libc::EPOLL_CTL_ADD, libc::EPOLLIN as u32)?;
        let drop_all = [SockFilter {
            code: 0x06, // BPF_RET | BPF_K
            jt: 0,
            jf: 0,
            k: 0,
        }];
        attach_filter(sock.raw(), &drop_all)?;
        // The kernel moves a frame's VLAN tag into metadata before the socket sees it
        // (`skb_vlan_untag`); the auxiliary data tells, and `RecvBatch` puts it back.
        setsockopt(
            sock.raw(),
            libc::SOL_PACKET,
            libc::PACKET_AUXDATA,
            &1 as &libc::c_int,
        )?;
        let ignores_outgoing = setsockopt(
            sock.raw(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            &1 as &libc::c_int,
        )
        .is_ok();
        // SAFETY: sockaddr_ll is plain old data; zeroed is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = ifindex;
        // SAFETY: `sll` is a valid sockaddr_ll and the length is its size.
        cvt(unsafe {
            libc::bind(
                sock.raw(),
                (&sll as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
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
        let rcvbuf: libc::c_int = RECEIVE_BUFFER;
        if setsockopt(sock.raw(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &rcvbuf).is_err() {
            let _ = setsockopt(sock.raw(), libc::SOL_SOCKET, libc::SO_RCVBUF, &rcvbuf);
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
        attach_filter(sock.raw(), filter)?;
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

    /// The raw descriptor, for `poll_readable`.
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Waits until a frame (or an error) is queued or `timeout_ms` passes; whether one
    /// is. Meant for one thread, the socket's reader.
    pub fn wait_readable(&self, timeout_ms: i32) -> io::Result<bool> {
        // SAFETY: zeroed epoll_event is valid.
        let mut ev: libc::epoll_event = unsafe { mem::zeroed() };
        // SAFETY: room for exactly one event, as passed.
        let ret = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut ev, 1, timeout_ms) };
        match cvt(ret) {
            Ok(n) => Ok(n > 0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Until the matching [`PacketSocket::release_wakeups`], frames queued on this
    /// socket do not wake its reader out of `wait_readable`: the calling thread reads
    /// them itself. Waking a sleeping thread on another CPU costs an inter-processor
    /// interrupt inside the send that queued the frame (15-20 µs on a VM) even when the
    /// caller takes the frame first. Holds nest across threads.
    pub fn hold_wakeups(&self) -> io::Result<()> {
        self.holds_taken
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut holds = self.holds.lock();
        if *holds == 0 {
            self.epoll_ctl(libc::EPOLL_CTL_MOD, 0)?;
        }
        *holds += 1;
        Ok(())
    }

    /// Ends one [`PacketSocket::hold_wakeups`]. When the last hold ends the reader is
    /// woken at once if frames are still queued, so none waits for the next frame.
    pub fn release_wakeups(&self) -> io::Result<()> {
        let mut holds = self.holds.lock();
        *holds = holds.saturating_sub(1);
        if *holds == 0 {
            self.epoll_ctl(libc::EPOLL_CTL_MOD, libc::EPOLLIN as u32)?;
        }
        Ok(())
    }

    /// How many holds were taken on this socket so far.
    pub fn holds_taken(&self) -> u64 {
        self.holds_taken.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bounds how long [`PacketSocket::recv_batch`] waits for a first frame.
    pub fn set_receive_timeout(&self, timeout: std::time::Duration) -> io::Result<()> {
        let tv = libc::timeval {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_usec: libc::suseconds_t::from(timeout.subsec_micros()),
        };
        setsockopt(self.raw(), libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)
    }

    /// Waits (up to the receive timeout, then `WouldBlock`) for one frame and takes
    /// whatever else is queued, up to the batch's size, in one `recvmmsg`: one system
    /// call where `wait_readable` and `recv_batch_now` take two, but every frame
    /// wakes it, held or not. Returns how many frames `batch` now holds.
    pub fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        self.recvmmsg(batch, libc::MSG_WAITFORONE)
    }

    fn epoll_ctl(&self, op: libc::c_int, events: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: 0 };
        // SAFETY: both descriptors are open and owned by `self`; `ev` is valid.
        cvt(unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, self.raw(), &mut ev) })?;
        Ok(())
    }

    /// Takes what is queued, up to the batch's size, without waiting (`WouldBlock` if
    /// nothing is).
    pub fn recv_batch_now(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        self.recvmmsg(batch, libc::MSG_DONTWAIT)
    }

    fn recvmmsg(&self, batch: &mut RecvBatch, flags: libc::c_int) -> io::Result<usize> {
        // The kernel shortens msg_namelen and msg_controllen to what it wrote: restore
        // the room.
        for h in &mut batch.hdrs[..batch.len] {
            h.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            h.msg_hdr.msg_controllen = mem::size_of::<Control>() as _;
        }
        batch.len = 0;
        // SAFETY: every header points at a live iovec over a buffer of its length, at a
        // sockaddr_ll and a control buffer of the stated sizes, all owned by `batch` and
        // never moved since `RecvBatch::new` (see there).
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
            // SAFETY: the kernel filled msg_control/msg_controllen of this header; the
            // buffer they describe is `batch.ctrls[i]`, alive and unmoved.
            let tag = unsafe { vlan_tag(&h.msg_hdr) };
            let buf = &mut batch.bufs[i];
            (batch.starts[i], batch.lens[i]) = match tag {
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
        // SAFETY: zeroed sockaddr_ll is valid.
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `buf` is valid for `buf.len()` bytes; `sll`/`len` describe a valid
        // sockaddr buffer.
        let n = cvt_size(unsafe {
            libc::recvfrom(
                self.raw(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
                (&mut sll as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        })?;
        Ok((n, sll.sll_pkttype))
    }

    /// When the kernel received the last frame this socket read (`SIOCGSTAMPNS`); the
    /// first call switches receive timestamps on, so it may fail with `ENOENT`.
    pub fn last_rx_time(&self) -> io::Result<std::time::SystemTime> {
        const SIOCGSTAMPNS: libc::c_ulong = 0x8907;
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: SIOCGSTAMPNS writes one timespec into `ts`.
        cvt(unsafe {
            libc::ioctl(
                self.raw(),
                SIOCGSTAMPNS as _,
                &mut ts as *mut libc::timespec,
            )
        })?;
        let since_epoch = std::time::Duration::new(
            u64::try_from(ts.tv_sec).unwrap_or(0),
            u32::try_from(ts.tv_nsec).unwrap_or(0),
        );
        Ok(std::time::UNIX_EPOCH + since_epoch)
    }

    /// Frames the kernel dropped because this socket's receive queue was full, since the
    /// previous call (the kernel resets the count on every read).
    pub fn kernel_drops(&self) -> io::Result<u32> {
        // SAFETY: zeroed tpacket_stats is valid.
        let mut st: libc::tpacket_stats = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `st`/`len` describe a valid tpacket_stats buffer.
        cvt(unsafe {
            libc::getsockopt(
                self.raw(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        })?;
        Ok(st.tp_drops)
    }

    /// Sends one complete Ethernet frame on the bound interface. Frames sent through
    /// this socket are never delivered back to it (`dev_queue_xmit_nit` skips the
    /// sender), so the relay does not capture its own transmissions.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: zeroed sockaddr_ll is valid.
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex;
        sll.sll_halen = 6;
        if frame.len() >= 6 {
            sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        }
        // SAFETY: `frame` is valid for its length; `sll` is a valid sockaddr_ll.
        let n = cvt_size(unsafe {
            libc::sendto(
                self.raw(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
                (&sll as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        if n != frame.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short packet send",
            ));
        }
        Ok(())
    }
}

/// Room before each frame of a [`RecvBatch`] for a VLAN tag put back.
const VLAN_ROOM: usize = 4;

/// Room for the control messages of one frame: `PACKET_AUXDATA` only (a `cmsghdr` and
/// a 20-byte `tpacket_auxdata`, 40 bytes on 64-bit), aligned as `cmsghdr` needs.
type Control = [u64; 8];

/// The VLAN tag (TPID, TCI) the kernel took out of the frame `hdr` received, from its
/// `PACKET_AUXDATA` message; `None` for an untagged frame.
///
/// # Safety
///
/// `hdr.msg_control` and `hdr.msg_controllen` describe a live buffer the kernel
/// filled with control messages (as `recvmmsg` leaves them).
unsafe fn vlan_tag(hdr: &libc::msghdr) -> Option<(u16, u16)> {
    // SAFETY: CMSG_LEN is arithmetic on its argument.
    let aux_len = unsafe { libc::CMSG_LEN(mem::size_of::<libc::tpacket_auxdata>() as u32) };
    // SAFETY: per the caller, the control buffer is valid; CMSG_FIRSTHDR/CMSG_NXTHDR
    // stay inside msg_controllen and return null at its end.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(hdr) };
    while !cmsg.is_null() {
        // SAFETY: non-null cmsg pointers from CMSG_FIRSTHDR/NXTHDR point at a whole
        // cmsghdr inside the buffer.
        let c = unsafe { &*cmsg };
        if c.cmsg_level == libc::SOL_PACKET
            && c.cmsg_type == libc::PACKET_AUXDATA
            && c.cmsg_len >= aux_len as usize
        {
            // SAFETY: the length check above: a whole tpacket_auxdata follows the
            // header; it may be unaligned, hence read_unaligned.
            let aux: libc::tpacket_auxdata =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            // Kernels before 3.0 have no VLAN_VALID flag but a non-zero TCI; VLAN 0
            // with priority 0 is a tag too, which only the flag shows.
            if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 || aux.tp_vlan_tci != 0 {
                let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                    aux.tp_vlan_tpid
                } else {
                    0x8100
                };
                return Some((tpid, aux.tp_vlan_tci));
            }
            return None;
        }
        // SAFETY: as above.
        cmsg = unsafe { libc::CMSG_NXTHDR(hdr, cmsg) };
    }
    None
}

/// Frames read together by [`PacketSocket::recv_batch`] or
/// [`PacketSocket::recv_batch_now`], with the `recvmmsg` headers set up once: built for
/// every read, they cost two allocations per read, after the wake-up on the answer's
/// path when the reader waits in epoll.
///
/// Each frame is read `VLAN_ROOM` bytes into its buffer, so that a VLAN tag the kernel
/// moved into metadata can be put back in front of it without copying the frame.
pub struct RecvBatch {
    bufs: Vec<Vec<u8>>,
    starts: Vec<usize>,
    lens: Vec<usize>,
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
            // SAFETY: zeroed sockaddr_ll is valid.
            addrs: vec![unsafe { mem::zeroed() }; count],
            ctrls: vec![[0; 8]; count],
            iovs: Vec::with_capacity(count),
            // SAFETY: zeroed mmsghdr is valid (null pointers, zero lengths).
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
            h.msg_hdr.msg_name = (&mut batch.addrs[i] as *mut libc::sockaddr_ll).cast();
            h.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut batch.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = batch.ctrls[i].as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = mem::size_of::<Control>() as _;
        }
        batch
    }

    /// How many frames fit.
    pub fn capacity(&self) -> usize {
        self.bufs.len()
    }

    /// The frames of the last receive with their `sll_pkttype`.
    pub fn frames(&self) -> impl Iterator<Item = (&[u8], u8)> {
        (0..self.len).map(|i| {
            let frame = &self.bufs[i][self.starts[i]..self.starts[i] + self.lens[i]];
            (frame, self.addrs[i].sll_pkttype)
        })
    }
}

/// Sets the process umask, returning the previous one.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// The effective user id.
pub fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Interface index of `name`, if it exists.
pub fn if_nametoindex(name: &str) -> Option<i32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
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
    // SAFETY: `f` is an open namespace file for the duration of the call.
    cvt(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }).map(drop)
}
