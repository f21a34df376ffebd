//! The `bpf(2)` calls of the in-kernel fast path: a hash map, a `sched_cls` program and
//! its tcx ingress link, each owned through an [`OwnedFd`] (closing the link's
//! descriptor detaches the program, so nothing outlives the daemon, even after SIGKILL).

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::cvt;

const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_int = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_MAP_DELETE_ELEM: libc::c_int = 3;
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_TEST_RUN: libc::c_int = 10;
const BPF_LINK_CREATE: libc::c_int = 28;

const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
/// `enum bpf_attach_type` (Linux 6.6+).
const BPF_TCX_INGRESS: u32 = 46;
/// `BPF_F_BEFORE`: with no relative program or link, first in the tcx chain.
const BPF_F_BEFORE: u32 = 1 << 3;

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct EbpfInsn {
    /// Opcode.
    pub code: u8,
    /// Destination register in the low nibble, source register in the high one.
    pub regs: u8,
    /// Jump or memory offset.
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// `bpf_attr` for `BPF_PROG_TEST_RUN`.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// `struct __sk_buff` (linux/bpf.h): what a `sched_cls` program reads its frame's
/// metadata from, and the context `BPF_PROG_TEST_RUN` takes. The programs' loads use
/// its field offsets (`offset_of!`); the kernel rewrites each load into one from the
/// real `sk_buff`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
#[allow(missing_docs)]
pub struct SkBuff {
    pub len: u32,
    /// `PACKET_HOST`, `PACKET_OTHERHOST`, ... as `eth_type_trans` set it.
    pub pkt_type: u32,
    pub mark: u32,
    pub queue_mapping: u32,
    pub protocol: u32,
    /// Non-zero when the frame came with a VLAN tag, which the kernel keeps in metadata.
    pub vlan_present: u32,
    pub vlan_tci: u32,
    pub vlan_proto: u32,
    pub priority: u32,
    pub ingress_ifindex: u32,
    /// The device the frame is on (at ingress: the one it arrived on).
    pub ifindex: u32,
    pub tc_index: u32,
    pub cb: [u32; 5],
    pub hash: u32,
    pub tc_classid: u32,
    /// The frame's first byte (a packet pointer once loaded).
    pub data: u32,
    /// One past its last linear byte.
    pub data_end: u32,
    pub napi_id: u32,
    pub family: u32,
    pub remote_ip4: u32,
    pub local_ip4: u32,
    pub remote_ip6: [u32; 4],
    pub local_ip6: [u32; 4],
    pub remote_port: u32,
    pub local_port: u32,
    pub data_meta: u32,
    pub flow_keys: u64,
    /// `skb->tstamp`: at ingress the receive time (`CLOCK_REALTIME` nanoseconds) that
    /// `AF_PACKET` reports as `SCM_TIMESTAMPNS`, once any socket asked for timestamps.
    pub tstamp: u64,
    pub wire_len: u32,
    pub gso_segs: u32,
    pub sk: u64,
    pub gso_size: u32,
    pub tstamp_type: u8,
    pub _pad: [u8; 3],
    pub hwtstamp: u64,
}

// The layout of linux/bpf.h, which the kernel checks every load against.
const _: () = {
    assert!(mem::offset_of!(SkBuff, ifindex) == 40);
    assert!(mem::offset_of!(SkBuff, data) == 76);
    assert!(mem::offset_of!(SkBuff, data_end) == 80);
    assert!(mem::offset_of!(SkBuff, tstamp) == 152);
    assert!(mem::offset_of!(SkBuff, hwtstamp) == 184);
    assert!(mem::size_of::<SkBuff>() == 192);
};

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    relative_fd: u32,
    _pad: u32,
    expected_revision: u64,
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_int> {
    // SAFETY: `attr` is a valid, initialised bpf_attr prefix for `cmd` and the size passed
    // is exactly its size; the kernel zero-extends the rest of the union.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            (attr as *mut T).cast::<libc::c_void>(),
            mem::size_of::<T>() as libc::c_uint,
        )
    };
    // bpf(2) returns an int (a descriptor or 0) or -1.
    cvt(ret as libc::c_int)
}

fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: `fd` was just returned by bpf(2) and nobody else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A `BPF_MAP_TYPE_HASH` map.
#[derive(Debug)]
pub struct BpfMap {
    fd: OwnedFd,
    key_size: usize,
    value_size: usize,
}

impl BpfMap {
    /// Creates a map of at most `max_entries` entries.
    pub fn create(key_size: u32, value_size: u32, max_entries: u32) -> io::Result<Self> {
        let mut attr = MapCreateAttr {
            map_type: BPF_MAP_TYPE_HASH,
            key_size,
            value_size,
            max_entries,
            map_flags: 0,
        };
        let fd = owned(bpf(BPF_MAP_CREATE, &mut attr)?);
        Ok(Self {
            fd,
            key_size: key_size as usize,
            value_size: value_size as usize,
        })
    }

    /// The descriptor a program refers to the map by.
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Inserts or replaces `key`.
    pub fn insert(&self, key: &[u8], value: &[u8]) -> io::Result<()> {
        if key.len() != self.key_size || value.len() != self.value_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "map key or value size",
            ));
        }
        let mut attr = MapElemAttr {
            map_fd: self.raw() as u32,
            key: key.as_ptr() as u64,
            value: value.as_ptr() as u64,
            ..Default::default()
        };
        bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
    }

    /// The value of `key` into `value`; `Ok(false)` when there is none.
    pub fn lookup(&self, key: &[u8], value: &mut [u8]) -> io::Result<bool> {
        if key.len() != self.key_size || value.len() != self.value_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "map key or value size",
            ));
        }
        let mut attr = MapElemAttr {
            map_fd: self.raw() as u32,
            key: key.as_ptr() as u64,
            value: value.as_mut_ptr() as u64,
            ..Default::default()
        };
        match bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            r => r.map(|_| true),
        }
    }

    /// Removes `key`; absent keys are not an error.
    pub fn remove(&self, key: &[u8]) -> io::Result<()> {
        if key.len() != self.key_size {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "map key size"));
        }
        let mut attr = MapElemAttr {
            map_fd: self.raw() as u32,
            key: key.as_ptr() as u64,
            ..Default::default()
        };
        match bpf(BPF_MAP_DELETE_ELEM, &mut attr) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            r => r.map(drop),
        }
    }
}

/// Why a program did not load.
#[derive(Debug, thiserror::Error)]
#[error("{error}{}", if log.is_empty() { String::new() } else { format!("; verifier: {log}") })]
pub struct LoadError {
    /// The errno.
    pub error: io::Error,
    /// The last lines of the verifier's log, when it said something.
    pub log: String,
}

/// Loads a `sched_cls` program (GPL-compatible: it calls GPL-only helpers).
pub fn load_sched_cls(insns: &[EbpfInsn], name: &str) -> Result<OwnedFd, LoadError> {
    let license = c"GPL";
    let mut log = vec![0u8; 64 * 1024];
    let mut prog_name = [0u8; 16];
    for (d, s) in prog_name.iter_mut().zip(name.bytes().take(15)) {
        *d = s;
    }
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_SCHED_CLS,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        prog_name,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned(fd)),
        Err(error) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            // The verifier's reason is at the end of a log that can run to pages.
            let lines: Vec<&str> = text.trim().lines().collect();
            let log = lines[lines.len().saturating_sub(8)..].join(" | ");
            Err(LoadError { error, log })
        }
    }
}

/// What one `BPF_PROG_TEST_RUN` of a program gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRun {
    /// The program's return value (`TC_ACT_*`, or `TCX_NEXT` as `u32::MAX`).
    pub retval: u32,
    /// The frame as the program left it.
    pub data: Vec<u8>,
}

/// Runs the `sched_cls` program `prog` once on `frame` (`BPF_PROG_TEST_RUN`): the
/// kernel builds an skb on the loopback device (`eth_type_trans` sets its `pkt_type`
/// from the destination MAC against loopback's 00:00:00:00:00:00) with `ctx`'s settable
/// fields (`mark`, `priority`, `ifindex`, `cb`, `tstamp`, ...; the others must be 0),
/// runs the program and hands back its verdict and the frame. Nothing is sent: a
/// `bpf_redirect` only makes the verdict `TC_ACT_REDIRECT`. Needs CAP_BPF (and
/// CAP_NET_ADMIN for a `sched_cls` program).
pub fn test_run(prog: &OwnedFd, frame: &[u8], ctx: Option<&SkBuff>) -> io::Result<TestRun> {
    // Room for a program that grows the frame; ours rewrite it in place.
    let mut out = vec![0u8; frame.len() + 256];
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: frame.len() as u32,
        data_size_out: out.len() as u32,
        data_in: frame.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat: 1,
        ..Default::default()
    };
    if let Some(ctx) = ctx {
        attr.ctx_size_in = mem::size_of::<SkBuff>() as u32;
        attr.ctx_in = (ctx as *const SkBuff) as u64;
    }
    bpf(BPF_PROG_TEST_RUN, &mut attr)?;
    out.truncate(attr.data_size_out as usize);
    Ok(TestRun {
        retval: attr.retval,
        data: out,
    })
}

/// Attaches `prog` first in `ifindex`'s tcx ingress chain; the link lives as long as
/// the returned descriptor. First, because a program before it could take (redirect,
/// drop) a frame the engine counts on it to have handled; one attached later with
/// `BPF_F_BEFORE` still goes ahead of it.
pub fn attach_tcx_ingress(prog: &OwnedFd, ifindex: i32) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: ifindex as u32,
        attach_type: BPF_TCX_INGRESS,
        flags: BPF_F_BEFORE,
        ..Default::default()
    };
    bpf(BPF_LINK_CREATE, &mut attr).map(owned)
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock of `bpf_ktime_get_ns` and of
/// `std::time::Instant` on Linux.
pub fn monotonic_ns() -> u64 {
    // SAFETY: timespec is plain old data; zeroed is a valid value.
    let mut ts: libc::timespec = unsafe { mem::zeroed() };
    // SAFETY: a valid timespec to fill; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
