//! Hooking a loaded `sched_cls` program into a port's ingress (`in_kernel_attach`):
//! with tcx (Linux 6.6+), a bpf link that goes with its descriptor, or the classic way
//! that kernels from 5.10 have, a `bpf` filter in direct-action mode on the port's
//! `clsact` qdisc, added and removed over rtnetlink. A tc filter outlives the process
//! that added it, so [`Ingress`] removes its filter when dropped (and the `clsact` qdisc
//! when this process created it and no filter is left on it), and before adding one
//! removes any filter of the same name that a killed earlier run left: the programs'
//! names (`ndprelay_*`) are what marks a filter as ours.
//!
//! The same program runs under either hook: tcx's "next" verdict is tc's
//! `TC_ACT_UNSPEC`, which in direct-action mode hands the frame to the next filter.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::tc::{
    TcAttribute, TcBpfFlags, TcFilterBpf, TcFilterBpfOption, TcHandle, TcMessage, TcOption,
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use super::sys::ebpf;
use crate::config::InKernelAttach;

/// Our filters' preference: the lowest the kernel runs first, so that no filter before
/// ours takes (redirects, drops) a frame the engine counts on the program to handle,
/// as `BPF_F_BEFORE` does under tcx.
const PRIO: u16 = 1;
/// `ETH_P_IPV6`: the programs look at nothing else.
const ETH_P_IPV6: u16 = 0x86dd;
/// `TC_H_MAJ` of the `clsact` qdisc (`TC_H_CLSACT`).
const CLSACT_MAJOR: u16 = 0xffff;
/// The `clsact` qdisc's own handle, `ffff:`.
const CLSACT_HANDLE: TcHandle = TcHandle {
    major: CLSACT_MAJOR,
    minor: 0,
};
/// Its ingress and egress hooks, the `parent` of a filter (`tc filter ... ingress`).
const INGRESS: TcHandle = TcHandle {
    major: CLSACT_MAJOR,
    minor: TcHandle::MIN_INGRESS,
};
const EGRESS: TcHandle = TcHandle {
    major: CLSACT_MAJOR,
    minor: TcHandle::MIN_EGRESS,
};

/// Which hook a program runs under on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// A tcx link.
    Tcx,
    /// A `bpf` filter on the `clsact` qdisc.
    Tc,
}

impl Hook {
    /// As the log and `ndprelay status` name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcx => "tcx",
            Self::Tc => "tc",
        }
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a program could not be hooked into a port's ingress.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// tcx was asked for (`in_kernel_attach: Tcx`) and the kernel refused it.
    #[error(
        "tcx ingress: {0} (tcx needs Linux 6.6 or later; `in_kernel_attach: Auto` or `Tc` \
         uses a tc filter instead)"
    )]
    Tcx(#[source] io::Error),
    /// A step of the tc way failed.
    #[error(
        "tc: {what} on {port}: {source} (`tc qdisc show dev {port}` and \
         `tc filter show dev {port} ingress` show what is there)"
    )]
    Tc {
        /// The step.
        what: &'static str,
        /// The port.
        port: String,
        /// The errno.
        #[source]
        source: io::Error,
    },
}

/// `in_kernel_attach` as the daemon last set it, for the attachments made from then on.
static MODE: AtomicU8 = AtomicU8::new(0);

/// Sets the hook later attachments use (`in_kernel_attach`).
pub fn set_mode(mode: InKernelAttach) {
    MODE.store(mode as u8, Ordering::Relaxed);
}

/// The hook [`set_mode`] set.
pub fn mode() -> InKernelAttach {
    match MODE.load(Ordering::Relaxed) {
        x if x == InKernelAttach::Tcx as u8 => InKernelAttach::Tcx,
        x if x == InKernelAttach::Tc as u8 => InKernelAttach::Tc,
        _ => InKernelAttach::Auto,
    }
}

/// What this process hooked where, shared by its programs: the hook on each port (for
/// `status`), and the ports whose `clsact` qdisc it created (the one removes it that
/// finds no filter left on it).
#[derive(Debug, Default)]
struct Hooked {
    /// (ifindex, program name, hook).
    on: Vec<(i32, String, Hook)>,
    made_clsact: Vec<i32>,
}

static HOOKED: Mutex<Hooked> = Mutex::new(Hooked {
    on: Vec::new(),
    made_clsact: Vec::new(),
});

fn hooked() -> std::sync::MutexGuard<'static, Hooked> {
    // Every update leaves the lists whole: a panic elsewhere does not make them wrong.
    HOOKED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The hook this process's programs run under on `ifindex`, if any.
pub fn hook_on(ifindex: i32) -> Option<Hook> {
    hooked()
        .on
        .iter()
        .find(|(i, _, _)| *i == ifindex)
        .map(|(_, _, h)| *h)
}

/// A program hooked into one port's ingress, until dropped.
#[derive(Debug)]
pub struct Ingress {
    ifindex: i32,
    name: String,
    how: How,
}

#[derive(Debug)]
enum How {
    /// Closing the link detaches the program.
    Tcx { _link: OwnedFd },
    /// The filter's handle (its preference and protocol are ours).
    Tc { port: String, handle: u32 },
}

impl Ingress {
    /// Hooks `prog` (named `name`) into the ingress of `port` (`ifindex`) as `mode`
    /// says: with `Auto`, tcx unless the kernel has none, then a tc filter.
    pub fn attach(
        prog: &OwnedFd,
        ifindex: i32,
        port: &str,
        name: &str,
        mode: InKernelAttach,
    ) -> Result<Self, AttachError> {
        let how = match mode {
            InKernelAttach::Tc => attach_tc(prog, ifindex, port, name)?,
            InKernelAttach::Tcx => How::Tcx {
                _link: ebpf::attach_tcx_ingress(prog, ifindex).map_err(AttachError::Tcx)?,
            },
            InKernelAttach::Auto => match ebpf::attach_tcx_ingress(prog, ifindex) {
                Ok(link) => How::Tcx { _link: link },
                Err(e) if no_tcx(&e) => {
                    log::debug!("{port}: no tcx ({e}); attaching {name} with a tc filter");
                    attach_tc(prog, ifindex, port, name)?
                }
                Err(e) => return Err(AttachError::Tcx(e)),
            },
        };
        let me = Self {
            ifindex,
            name: name.to_owned(),
            how,
        };
        hooked().on.push((ifindex, me.name.clone(), me.hook()));
        Ok(me)
    }

    /// The hook in use.
    pub fn hook(&self) -> Hook {
        match self.how {
            How::Tcx { .. } => Hook::Tcx,
            How::Tc { .. } => Hook::Tc,
        }
    }
}

impl Drop for Ingress {
    fn drop(&mut self) {
        let mut h = hooked();
        if let Some(at) =
            h.on.iter()
                .position(|(i, n, _)| *i == self.ifindex && *n == self.name)
        {
            h.on.remove(at);
        }
        let How::Tc { port, handle } = &self.how else {
            return;
        };
        if let Err(e) = detach_tc(&mut h, self.ifindex, *handle) {
            // A port that is gone took its filters with it.
            if !matches!(e.raw_os_error(), Some(libc::ENODEV | libc::ENOENT)) {
                log::warn!(
                    "tc: removing the {} filter from {port}: {e} (`tc filter show dev {port} \
                     ingress` shows it; `tc filter del dev {port} ingress pref {PRIO} handle \
                     {handle:#x} bpf` removes it)",
                    self.name
                );
            }
        }
    }
}

/// Whether a tcx attach failed because the kernel has no tcx: before 6.6 `BPF_LINK_CREATE`
/// knows no `BPF_TCX_INGRESS` and says `EINVAL` (before 5.7 it knows no `BPF_LINK_CREATE`
/// either: `EINVAL` too); a kernel built without it may say `EOPNOTSUPP`/`ENOTSUPP`, and
/// one whose `bpf_attr` is shorter than ours `E2BIG`.
fn no_tcx(e: &io::Error) -> bool {
    /// The kernel-internal `ENOTSUPP`, which leaks to user space from some bpf paths.
    const ENOTSUPP: i32 = 524;
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::EOPNOTSUPP | libc::E2BIG | ENOTSUPP)
    )
}

/// The handle of the filter called `name`: fixed, so a filter can be named exactly.
fn filter_handle(name: &str) -> u32 {
    // FNV-1a; 0 would let the kernel choose.
    let h = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    h.max(1)
}

fn attach_tc(prog: &OwnedFd, ifindex: i32, port: &str, name: &str) -> Result<How, AttachError> {
    let fail = |what: &'static str| {
        move |source| AttachError::Tc {
            what,
            port: port.to_owned(),
            source,
        }
    };
    let mut nl = Rtnl::open().map_err(fail("opening rtnetlink"))?;
    let mut h = hooked();
    let made = match nl.request(
        RouteNetlinkMessage::NewQueueDiscipline(clsact_qdisc(ifindex)),
        NLM_F_CREATE | NLM_F_EXCL,
    ) {
        Ok(()) => {
            log::debug!("tc: created the clsact qdisc on {port}");
            h.made_clsact.push(ifindex);
            true
        }
        // There already: ours (another program), an earlier run's, or someone else's.
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => false,
        Err(e) => return Err(fail("adding the clsact qdisc")(e)),
    };
    let handle = filter_handle(name);
    let added = replace_filter(&mut nl, ifindex, prog, port, name, handle);
    if added.is_err() && made {
        // Leave the port as we found it; the error says what failed.
        let _ = remove_clsact_if_unused(&mut nl, &mut h, ifindex);
    }
    added?;
    Ok(How::Tc {
        port: port.to_owned(),
        handle,
    })
}

/// Removes any filter called `name` from `ifindex`'s ingress, then adds ours.
fn replace_filter(
    nl: &mut Rtnl,
    ifindex: i32,
    prog: &OwnedFd,
    port: &str,
    name: &str,
    handle: u32,
) -> Result<(), AttachError> {
    let fail = |what: &'static str| {
        move |source| AttachError::Tc {
            what,
            port: port.to_owned(),
            source,
        }
    };
    let filters = nl
        .dump(RouteNetlinkMessage::GetTrafficFilter(filter_query(
            ifindex, INGRESS,
        )))
        .map_err(fail("listing the ingress filters"))?;
    for f in filters.iter().filter(|f| bpf_filter_name(f) == Some(name)) {
        // A filter of ours, left by an earlier run that had no chance to remove it.
        nl.request(
            RouteNetlinkMessage::DelTrafficFilter(filter_delete(
                ifindex,
                f.header.info,
                u32::from(f.header.handle),
            )),
            0,
        )
        .map_err(fail("removing an earlier run's filter"))?;
        log::info!("tc: removed the {name} filter an earlier run left on {port}");
    }
    nl.request(
        RouteNetlinkMessage::NewTrafficFilter(bpf_filter(
            ifindex,
            prog.as_raw_fd() as u32,
            name,
            handle,
        )),
        NLM_F_CREATE | NLM_F_EXCL,
    )
    .map_err(fail("adding the bpf filter at ingress"))
}

/// Removes our filter `handle` from `ifindex`'s ingress, then the `clsact` qdisc if this
/// process created it and no filter is left on it.
fn detach_tc(h: &mut Hooked, ifindex: i32, handle: u32) -> io::Result<()> {
    let mut nl = Rtnl::open()?;
    let info = filter_info();
    let removed = nl.request(
        RouteNetlinkMessage::DelTrafficFilter(filter_delete(ifindex, info, handle)),
        0,
    );
    remove_clsact_if_unused(&mut nl, h, ifindex)?;
    removed
}

/// Removes `ifindex`'s `clsact` qdisc if this process created it and no filter is left
/// on it.
fn remove_clsact_if_unused(nl: &mut Rtnl, h: &mut Hooked, ifindex: i32) -> io::Result<()> {
    let Some(at) = h.made_clsact.iter().position(|&i| i == ifindex) else {
        return Ok(());
    };
    let mut left = 0;
    for parent in [INGRESS, EGRESS] {
        match nl.dump(RouteNetlinkMessage::GetTrafficFilter(filter_query(
            ifindex, parent,
        ))) {
            Ok(filters) => left += filters.len(),
            Err(e) => {
                if e.raw_os_error() == Some(libc::ENODEV) {
                    // The port is gone, and its qdisc with it.
                    h.made_clsact.remove(at);
                }
                return Err(e);
            }
        }
    }
    if left == 0 {
        h.made_clsact.remove(at);
        nl.request(
            RouteNetlinkMessage::DelQueueDiscipline(clsact_qdisc(ifindex)),
            0,
        )?;
    }
    Ok(())
}

/// `tc qdisc add dev X clsact`.
fn clsact_qdisc(ifindex: i32) -> TcMessage {
    let mut m = TcMessage::with_index(ifindex);
    m.header.handle = CLSACT_HANDLE;
    m.header.parent = TcHandle::CLSACT;
    m.attributes.push(TcAttribute::Kind("clsact".into()));
    m
}

/// Preference and protocol (network order) as a filter's `tcm_info` holds them.
fn filter_info() -> u32 {
    u32::from(PRIO) << 16 | u32::from(ETH_P_IPV6.to_be())
}

/// `tc filter add dev X ingress pref 1 handle H protocol ipv6 bpf direct-action fd F
/// name N`.
fn bpf_filter(ifindex: i32, prog_fd: u32, name: &str, handle: u32) -> TcMessage {
    let mut m = TcMessage::with_index(ifindex);
    m.header.parent = INGRESS;
    m.header.handle = handle.into();
    m.header.info = filter_info();
    m.attributes
        .push(TcAttribute::Kind(TcFilterBpf::KIND.into()));
    m.attributes.push(TcAttribute::Options(vec![
        TcOption::Bpf(TcFilterBpfOption::ProgFd(prog_fd)),
        TcOption::Bpf(TcFilterBpfOption::ProgName(name.into())),
        TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
    ]));
    m
}

/// `tc filter del dev X ingress pref P protocol Q handle H bpf`, `info` holding P and Q.
fn filter_delete(ifindex: i32, info: u32, handle: u32) -> TcMessage {
    let mut m = TcMessage::with_index(ifindex);
    m.header.parent = INGRESS;
    m.header.handle = handle.into();
    m.header.info = info;
    m.attributes
        .push(TcAttribute::Kind(TcFilterBpf::KIND.into()));
    m
}

/// `tc filter show dev X ingress` (or `egress`).
fn filter_query(ifindex: i32, parent: TcHandle) -> TcMessage {
    let mut m = TcMessage::with_index(ifindex);
    m.header.parent = parent;
    m
}

/// The name of a `bpf` filter (its `TCA_BPF_NAME`), `None` for anything else.
fn bpf_filter_name(m: &TcMessage) -> Option<&str> {
    if !m
        .attributes
        .iter()
        .any(|a| matches!(a, TcAttribute::Kind(k) if k == TcFilterBpf::KIND))
    {
        return None;
    }
    m.attributes.iter().find_map(|a| match a {
        TcAttribute::Options(opts) => opts.iter().find_map(|o| match o {
            TcOption::Bpf(TcFilterBpfOption::ProgName(n)) => Some(n.as_str()),
            _ => None,
        }),
        _ => None,
    })
}

/// A request-and-acknowledge rtnetlink socket for the few tc messages above.
struct Rtnl {
    socket: Socket,
    seq: u32,
}

impl Rtnl {
    fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Self { socket, seq: 0 })
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        m.finalize();
        let mut buf = vec![0; m.buffer_len()];
        m.serialize(&mut buf);
        self.socket.send(&buf, 0)?;
        Ok(self.seq)
    }

    /// Reads the replies to `seq`, handing each to `each` until it returns `Some` (or
    /// the kernel reports an error).
    fn replies<T>(
        &self,
        seq: u32,
        mut each: impl FnMut(NetlinkPayload<RouteNetlinkMessage>) -> Option<T>,
    ) -> io::Result<T> {
        loop {
            let (buf, _) = self.socket.recv_from_full()?;
            let mut at = 0;
            while at < buf.len() {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[at..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = m.header.length as usize;
                if len == 0 {
                    break;
                }
                at += len.next_multiple_of(4);
                if m.header.sequence_number != seq {
                    continue;
                }
                if let NetlinkPayload::Error(e) = &m.payload {
                    if e.code.is_some() {
                        return Err(e.to_io());
                    }
                }
                if let Some(t) = each(m.payload) {
                    return Ok(t);
                }
            }
        }
    }

    /// Sends `msg` and waits for the kernel's acknowledgement.
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        let seq = self.send(msg, NLM_F_ACK | flags)?;
        self.replies(seq, |p| matches!(p, NetlinkPayload::Error(_)).then_some(()))
    }

    /// Dumps the tc messages `msg` asks for.
    fn dump(&mut self, msg: RouteNetlinkMessage) -> io::Result<Vec<TcMessage>> {
        let seq = self.send(msg, NLM_F_DUMP)?;
        let mut out = Vec::new();
        self.replies(seq, |p| match p {
            NetlinkPayload::Done(_) => Some(()),
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewTrafficFilter(m)) => {
                // The first message for a preference describes the chain, not a filter.
                if u32::from(m.header.handle) != 0 {
                    out.push(m);
                }
                None
            }
            _ => None,
        })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::{Emitable, Parseable};

    use super::*;

    fn bytes(m: &TcMessage) -> Vec<u8> {
        let mut b = vec![0xa5; m.buffer_len()];
        m.emit(&mut b);
        b
    }

    #[test]
    fn the_filter_is_tcs_bpf_direct_action_at_ingress_pref_1_for_ipv6() {
        let b = bytes(&bpf_filter(7, 42, "ndprelay_rel", 0x1234_5678));
        // struct tcmsg: family, pad, ifindex, handle, parent ffff:fff2, info.
        assert_eq!(&b[..4], [0, 0, 0, 0]);
        assert_eq!(b[4..8], 7i32.to_ne_bytes());
        assert_eq!(b[8..12], 0x1234_5678u32.to_ne_bytes());
        assert_eq!(b[12..16], 0xffff_fff2u32.to_ne_bytes());
        // pref 1 in the upper half, ETH_P_IPV6 in network order in the lower.
        assert_eq!(
            b[16..20],
            (1u32 << 16 | u32::from(0x86ddu16.to_be())).to_ne_bytes()
        );
        assert_eq!(
            &b[16..20][..2],
            if cfg!(target_endian = "little") {
                [0x86, 0xdd]
            } else {
                [0x00, 0x01]
            }
        );
        // TCA_KIND "bpf".
        assert_eq!(&b[20..28], [8, 0, 1, 0, b'b', b'p', b'f', 0]);
        // TCA_OPTIONS: TCA_BPF_FD 42, TCA_BPF_NAME, TCA_BPF_FLAGS = direct action.
        assert_eq!(&b[30..32], [2, 0]);
        assert_eq!(&b[32..40], [8, 0, 6, 0, 42, 0, 0, 0]);
        assert_eq!(&b[40..44], [17, 0, 7, 0]);
        assert_eq!(&b[44..57], b"ndprelay_rel\0");
        assert_eq!(&b[60..68], [8, 0, 8, 0, 1, 0, 0, 0]);
        assert_eq!(b.len(), 68);
        // It reads back as the filter of that name.
        let back = <TcMessage as Parseable<[u8]>>::parse(&b).expect("parses");
        assert_eq!(bpf_filter_name(&back), Some("ndprelay_rel"));
        assert_eq!(u32::from(back.header.handle), 0x1234_5678);
    }

    #[test]
    fn clsact_is_the_qdisc_at_ffff_under_ffff_fff1() {
        let b = bytes(&clsact_qdisc(3));
        assert_eq!(b[4..8], 3i32.to_ne_bytes());
        assert_eq!(b[8..12], 0xffff_0000u32.to_ne_bytes());
        assert_eq!(b[12..16], 0xffff_fff1u32.to_ne_bytes());
        assert_eq!(
            &b[20..32],
            [11, 0, 1, 0, b'c', b'l', b's', b'a', b'c', b't', 0, 0]
        );
        assert_eq!(b.len(), 32);
    }

    #[test]
    fn a_delete_names_exactly_one_filter() {
        let b = bytes(&filter_delete(5, filter_info(), 0x99));
        assert_eq!(b[8..12], 0x99u32.to_ne_bytes());
        assert_eq!(b[12..16], 0xffff_fff2u32.to_ne_bytes());
        assert_eq!(b[16..20], filter_info().to_ne_bytes());
        assert_eq!(&b[20..28], [8, 0, 1, 0, b'b', b'p', b'f', 0]);
    }

    #[test]
    fn only_bpf_filters_have_a_name_and_the_handles_differ_per_program() {
        let mut m = bpf_filter(1, 3, "ndprelay_ns", 1);
        m.attributes[0] = TcAttribute::Kind("u32".into());
        assert_eq!(bpf_filter_name(&m), None);
        assert_eq!(bpf_filter_name(&filter_query(1, INGRESS)), None);
        assert_ne!(filter_handle("ndprelay_ns"), filter_handle("ndprelay_rel"));
        assert_ne!(filter_handle(""), 0);
    }

    #[test]
    fn an_old_kernels_answers_mean_no_tcx_and_others_do_not() {
        for e in [libc::EINVAL, libc::EOPNOTSUPP, libc::E2BIG, 524] {
            assert!(no_tcx(&io::Error::from_raw_os_error(e)), "{e}");
        }
        for e in [libc::EPERM, libc::ENODEV, libc::EBADF] {
            assert!(!no_tcx(&io::Error::from_raw_os_error(e)), "{e}");
        }
    }

    /// Whether this kernel has tcx (Linux 6.6+), from its release: what `Auto` must pick.
    fn kernel_has_tcx() -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut v = release
            .trim()
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse::<u32>().unwrap_or(0));
        (v.next().unwrap_or(0), v.next().unwrap_or(0)) >= (6, 6)
    }

    /// Runs `tc ARGS` in namespace `ns` and returns what it printed.
    fn tc_in(ns: &str, args: &str) -> String {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", ns, "tc"])
            .args(args.split_whitespace())
            .output()
            .expect("tc runs");
        assert!(out.status.success(), "tc {args}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    #[ignore = "needs root and network namespaces"]
    fn a_tc_filter_replaces_a_left_one_and_goes_with_its_qdisc() {
        use crate::live::sys::{self, ebpf::EbpfInsn};
        let ns = format!("ndpr-u-tc-{}", std::process::id());
        let ip = |args: &[&str]| {
            let st = std::process::Command::new("ip")
                .args(args)
                .status()
                .unwrap();
            assert!(st.success(), "ip {args:?}");
        };
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &ns])
            .status();
        ip(&["netns", "add", &ns]);
        ip(&[
            "-n", &ns, "link", "add", "t0", "type", "veth", "peer", "name", "t0p",
        ]);
        let path = std::path::PathBuf::from("/run/netns").join(&ns);
        let name = ns.clone();
        let result = std::thread::spawn(move || {
            sys::enter_netns(&path).expect("setns");
            let ifindex = sys::if_nametoindex("t0").expect("t0");
            // r0 = TC_ACT_UNSPEC; exit
            let insns = [
                EbpfInsn {
                    code: 0xb7,
                    regs: 0,
                    off: 0,
                    imm: -1,
                },
                EbpfInsn {
                    code: 0x95,
                    regs: 0,
                    off: 0,
                    imm: 0,
                },
            ];
            let prog = ebpf::load_sched_cls(&insns, "ndprelay_tst").expect("loads");
            let filters = || tc_in(&name, "filter show dev t0 ingress");
            let ours = || {
                filters()
                    .lines()
                    .filter(|l| l.contains("ndprelay_tst"))
                    .count()
            };
            let has_clsact = || tc_in(&name, "qdisc show dev t0").contains("qdisc clsact");

            let first = Ingress::attach(&prog, ifindex, "t0", "ndprelay_tst", InKernelAttach::Tc)
                .expect("attaches");
            assert_eq!(first.hook(), Hook::Tc);
            assert_eq!(hook_on(ifindex), Some(Hook::Tc));
            assert_eq!(ours(), 1, "{}", filters());
            assert!(filters().contains("direct-action"), "{}", filters());
            assert!(has_clsact());
            // A SIGKILLed run: the filter stays; the next attach replaces it.
            std::mem::forget(first);
            assert_eq!(ours(), 1);
            let second = Ingress::attach(&prog, ifindex, "t0", "ndprelay_tst", InKernelAttach::Tc)
                .expect("attaches again");
            assert_eq!(ours(), 1, "{}", filters());
            drop(second);
            assert_eq!(ours(), 0, "{}", filters());
            assert!(!has_clsact(), "the qdisc this process created is gone");

            // Auto: tcx where the kernel has it (no filter, no qdisc), else the filter.
            let auto = Ingress::attach(&prog, ifindex, "t0", "ndprelay_tst", InKernelAttach::Auto)
                .expect("attaches");
            if kernel_has_tcx() {
                assert_eq!(auto.hook(), Hook::Tcx, "this kernel has tcx");
                assert_eq!(ours(), 0);
                assert!(!has_clsact());
            } else {
                assert_eq!(auto.hook(), Hook::Tc, "no tcx before 6.6: the tc filter");
                assert_eq!(ours(), 1, "{}", filters());
                drop(auto);
                assert_eq!(ours(), 0, "{}", filters());
                assert!(!has_clsact());
            }
        })
        .join();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &ns])
            .status();
        result.expect("the test thread");
    }
}
