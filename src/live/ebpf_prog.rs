//! What the two in-kernel programs (`kernel_answer.rs`, `kernel_relay.rs`) share: a small
//! eBPF assembler with the checks and the checksum both run on an ND frame with one
//! link-layer address option, their maps (keyed by ingress port and target) with what
//! the daemon put in them, their tcx ingress links, and their set-up errors.

use std::collections::HashMap;
use std::io;
use std::marker::PhantomData;
use std::net::Ipv6Addr;
use std::os::fd::{OwnedFd, RawFd};
use std::time::Duration;

use super::bpf::Labels;
use super::ebpf_maps::MapValue;
use super::sys::ebpf::{self, BpfMap, EbpfInsn, LoadError};

// eBPF opcodes (linux/bpf.h, linux/bpf_common.h).
pub(super) const LDX_W: u8 = 0x61;
pub(super) const LDX_H: u8 = 0x69;
pub(super) const LDX_B: u8 = 0x71;
pub(super) const LDX_DW: u8 = 0x79;
pub(super) const STX_W: u8 = 0x63;
pub(super) const STX_H: u8 = 0x6b;
pub(super) const STX_DW: u8 = 0x7b;
pub(super) const ADD_K: u8 = 0x07;
pub(super) const AND_K: u8 = 0x57;
pub(super) const OR_X: u8 = 0x4f;
pub(super) const RSH_K: u8 = 0x77;
pub(super) const XOR_K: u8 = 0xa7;
pub(super) const MOV_K: u8 = 0xb7;
pub(super) const MOV_X: u8 = 0xbf;
pub(super) const ADD_X: u8 = 0x0f;
pub(super) const JEQ_K: u8 = 0x15;
pub(super) const JNE_K: u8 = 0x55;
pub(super) const JNE_X: u8 = 0x5d;
pub(super) const JGE_X: u8 = 0x3d;
pub(super) const JGT_X: u8 = 0x2d;
pub(super) const CALL: u8 = 0x85;
pub(super) const EXIT: u8 = 0x95;
pub(super) const LD_IMM64: u8 = 0x18;
const PSEUDO_MAP_FD: u8 = 1;

// Helpers.
const MAP_LOOKUP_ELEM: i32 = 1;
const KTIME_GET_NS: i32 = 5;
pub(super) const REDIRECT: i32 = 23;
const CSUM_DIFF: i32 = 28;

/// `struct __sk_buff` fields.
pub(super) const SKB_PKT_TYPE: i16 = 4;
/// Non-zero when the frame came with a VLAN tag, which the kernel keeps in metadata.
const SKB_VLAN_PRESENT: i16 = 20;
pub(super) const SKB_IFINDEX: i16 = 40;
const SKB_DATA: i16 = 76;
const SKB_DATA_END: i16 = 80;
/// `skb->tstamp`: the receive time `AF_PACKET` reports for the same frame.
const SKB_TSTAMP: i16 = 152;

pub(super) const PACKET_HOST: i32 = 0;
pub(super) const PACKET_OTHERHOST: i32 = 3;
const TCX_NEXT: i32 = -1;

// Registers.
pub(super) const R0: u8 = 0;
pub(super) const R1: u8 = 1;
pub(super) const R2: u8 = 2;
pub(super) const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;
/// The `__sk_buff`, the frame, its end and the map entry found (callee-saved).
pub(super) const CTX: u8 = 6;
pub(super) const PKT: u8 = 7;
const PKT_END: u8 = 8;
pub(super) const ENTRY: u8 = 9;
pub(super) const FP: u8 = 10;

/// Frame offsets of an NS or NA with one link-layer address option: Ethernet, IPv6,
/// ICMPv6, the target, the option.
const ND_FRAME_LEN: i32 = 86;
pub(super) const IP6: i16 = 14;
pub(super) const IP6_SRC: i16 = IP6 + 8;
pub(super) const IP6_DST: i16 = IP6 + 24;
pub(super) const ICMP: i16 = IP6 + 40;
pub(super) const TARGET: i16 = ICMP + 8;
pub(super) const OPTION: i16 = ICMP + 24;

/// Stack slot of the checksum's pseudo-header tail; each program's map key lies below.
const PSEUDO_AT: i16 = -8;

/// A small eBPF assembler with forward labels, like `bpf.rs`'s for classic BPF.
pub(super) struct Asm {
    code: Vec<EbpfInsn>,
    /// (instruction index, label) of each jump to patch.
    fixups: Vec<(usize, usize)>,
    labels: Labels,
    /// Where every failed check goes: on to the next program and the stack.
    pass: usize,
}

impl Asm {
    /// Starts a program on an ND frame with one link-layer option: `CTX` holds the
    /// `__sk_buff`, `PKT` the frame once [`Self::nd_frame`] checked its length.
    pub(super) fn new() -> Self {
        let mut labels = Labels::default();
        let pass = labels.new_label();
        let mut a = Self {
            code: Vec::new(),
            fixups: Vec::new(),
            labels,
            pass,
        };
        a.ins(MOV_X, CTX, R1, 0, 0);
        a
    }
    pub(super) fn ins(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.code.push(EbpfInsn {
            code,
            regs: src << 4 | dst,
            off,
            imm,
        });
    }
    /// A jump to the pass-on exit.
    pub(super) fn pass_if(&mut self, code: u8, dst: u8, src: u8, imm: i32) {
        self.jump(code, dst, src, imm, self.pass);
    }
    /// A jump to `label`.
    pub(super) fn jump(&mut self, code: u8, dst: u8, src: u8, imm: i32, label: usize) {
        self.fixups.push((self.code.len(), label));
        self.ins(code, dst, src, 0, imm);
    }
    pub(super) fn label(&mut self) -> usize {
        self.labels.new_label()
    }
    pub(super) fn bind(&mut self, label: usize) {
        self.labels.bind(label, self.code.len());
    }
    pub(super) fn call(&mut self, helper: i32) {
        self.ins(CALL, 0, 0, 0, helper);
    }
    /// Loads the frame and passes unless it is an IPv6 ND message of `icmp_type`, code 0,
    /// hop limit 255, 32 bytes long with one option of `option_type` and length 1.
    pub(super) fn nd_frame(&mut self, icmp_type: i32, option_type: i32) {
        self.nd_header();
        self.ins(LDX_H, R2, PKT, ICMP, 0);
        self.pass_if(JNE_K, R2, 0, icmp_type);
        self.nd_option(option_type);
    }
    /// Loads the frame and passes unless it is an untagged IPv6 packet with 32 bytes of
    /// ICMPv6 payload (Next Header 58) and hop limit 255.
    pub(super) fn nd_header(&mut self) {
        // A tagged frame's tag is in metadata and its data looks untagged: it belongs
        // to a VLAN no port serves, and goes on to the capture, which drops it by reason
        // (`drop_vlan_tagged`).
        self.ins(LDX_W, R2, CTX, SKB_VLAN_PRESENT, 0);
        self.pass_if(JNE_K, R2, 0, 0);
        self.ins(LDX_W, PKT, CTX, SKB_DATA, 0);
        self.ins(LDX_W, PKT_END, CTX, SKB_DATA_END, 0);
        self.ins(MOV_X, R2, PKT, 0, 0);
        self.ins(ADD_K, R2, 0, 0, ND_FRAME_LEN);
        self.pass_if(JGT_X, R2, PKT_END, 0);
        // Little-endian loads of the wire bytes: EtherType 86dd; payload length 32; Next
        // Header 58 and hop limit 255.
        for (off, want) in [(12, 0xdd86), (IP6 + 4, 0x2000), (IP6 + 6, 0xff3a)] {
            self.ins(LDX_H, R2, PKT, off, 0);
            self.pass_if(JNE_K, R2, 0, want);
        }
        self.ins(LDX_B, R2, PKT, IP6, 0);
        self.ins(AND_K, R2, 0, 0, 0xf0);
        self.pass_if(JNE_K, R2, 0, 0x60);
    }
    /// Passes unless the message's one option is of `option_type`, length 1.
    pub(super) fn nd_option(&mut self, option_type: i32) {
        self.ins(LDX_H, R2, PKT, OPTION, 0);
        self.pass_if(JNE_K, R2, 0, 0x0100 | option_type);
    }
    /// Passes on the unspecified source (DAD, which the engine relays) and on a
    /// multicast one (invalid, RFC 4861 §7.1.1; the engine drops it).
    pub(super) fn specified_unicast_source(&mut self) {
        self.ins(LDX_DW, R2, PKT, IP6_SRC, 0);
        self.ins(LDX_DW, R3, PKT, IP6_SRC + 8, 0);
        self.ins(OR_X, R2, R3, 0, 0);
        self.pass_if(JEQ_K, R2, 0, 0);
        self.ins(LDX_B, R2, PKT, IP6_SRC, 0);
        self.pass_if(JEQ_K, R2, 0, 0xff);
    }
    /// Stores the key (ingress ifindex, the target) at `key_at` on the stack.
    pub(super) fn ifindex_target_key(&mut self, key_at: i16) {
        self.ins(LDX_W, R2, CTX, SKB_IFINDEX, 0);
        self.ins(STX_W, FP, R2, key_at, 0);
        for i in 0..4 {
            self.copy(FP, key_at + 4 + 4 * i, PKT, TARGET + 4 * i, 4);
        }
    }
    /// Looks up the `key_len`-byte key at `key_at` on the stack in `map_fd` and passes
    /// unless there is an entry whose native `u64` at `expiry_at` is later than
    /// `bpf_ktime_get_ns()`; the entry is in `ENTRY`.
    pub(super) fn live_entry(&mut self, map_fd: i32, key_at: i16, expiry_at: i16) {
        self.ins(LD_IMM64, R1, PSEUDO_MAP_FD, 0, map_fd);
        self.ins(0, 0, 0, 0, 0);
        self.ins(MOV_X, R2, FP, 0, 0);
        self.ins(ADD_K, R2, 0, 0, i32::from(key_at));
        self.call(MAP_LOOKUP_ELEM);
        self.pass_if(JEQ_K, R0, 0, 0);
        self.ins(MOV_X, ENTRY, R0, 0, 0);
        self.call(KTIME_GET_NS);
        self.ins(LDX_DW, R1, ENTRY, expiry_at, 0);
        self.pass_if(JGE_X, R0, R1, 0);
    }
    /// Ones'-complement sum of the addresses and the ICMPv6 message (contiguous: 64
    /// bytes from the IPv6 source on) plus the pseudo-header's length (32) and next
    /// header (58), folded to 16 bits, in R0.
    fn checksum(&mut self) {
        self.store_imm(4, FP, PSEUDO_AT, 0x2000_0000);
        self.store_imm(4, FP, PSEUDO_AT + 4, 0x3a00_0000);
        self.ins(MOV_K, R1, 0, 0, 0);
        self.ins(MOV_K, R2, 0, 0, 0);
        self.ins(MOV_X, R3, PKT, 0, 0);
        self.ins(ADD_K, R3, 0, 0, i32::from(IP6_SRC));
        self.ins(MOV_K, R4, 0, 0, 64);
        self.ins(MOV_K, R5, 0, 0, 0);
        self.call(CSUM_DIFF);
        self.ins(MOV_K, R1, 0, 0, 0);
        self.ins(MOV_K, R2, 0, 0, 0);
        self.ins(MOV_X, R3, FP, 0, 0);
        self.ins(ADD_K, R3, 0, 0, i32::from(PSEUDO_AT));
        self.ins(MOV_K, R4, 0, 0, 8);
        self.ins(MOV_X, R5, R0, 0, 0);
        self.call(CSUM_DIFF);
        for _ in 0..3 {
            self.ins(MOV_X, R1, R0, 0, 0);
            self.ins(RSH_K, R1, 0, 0, 16);
            self.ins(AND_K, R0, 0, 0, 0xffff);
            self.ins(ADD_X, R0, R1, 0, 0);
        }
    }
    /// Passes unless the ICMPv6 checksum is valid.
    pub(super) fn valid_checksum(&mut self) {
        self.checksum();
        self.pass_if(JNE_K, R0, 0, 0xffff);
    }
    /// Writes the checksum of the rewritten message.
    pub(super) fn write_checksum(&mut self) {
        self.store_imm(2, PKT, ICMP + 2, 0);
        self.checksum();
        self.ins(XOR_K, R0, 0, 0, 0xffff);
        self.ins(STX_H, PKT, R0, ICMP + 2, 0);
    }
    /// Copies `len` (8, 4 or 2) bytes from `src + so` to `dst + doff`.
    pub(super) fn copy(&mut self, dst: u8, doff: i16, src: u8, so: i16, len: usize) {
        let (ld, st) = match len {
            8 => (LDX_DW, STX_DW),
            4 => (LDX_W, STX_W),
            _ => (LDX_H, STX_H),
        };
        self.ins(ld, R2, src, so, 0);
        self.ins(st, dst, R2, doff, 0);
    }
    /// Copies a MAC (4 + 2 bytes).
    pub(super) fn copy_mac(&mut self, dst: u8, doff: i16, src: u8, so: i16) {
        self.copy(dst, doff, src, so, 4);
        self.copy(dst, doff + 4, src, so + 4, 2);
    }
    /// Passes unless the MACs at `a + ao` and `b + bo` are equal.
    pub(super) fn same_mac(&mut self, a: u8, ao: i16, b: u8, bo: i16) {
        for (off, ld) in [(0, LDX_W), (4, LDX_H)] {
            self.ins(ld, R2, a, ao + off, 0);
            self.ins(ld, R3, b, bo + off, 0);
            self.pass_if(JNE_X, R2, R3, 0);
        }
    }
    pub(super) fn store_imm(&mut self, size: usize, dst: u8, off: i16, imm: i32) {
        self.ins(MOV_K, R2, 0, 0, imm);
        let st = match size {
            4 => STX_W,
            _ => STX_H,
        };
        self.ins(st, dst, R2, off, 0);
    }
    /// Rewrites the frame as the engine's relay does (Ethernet destination from the
    /// entry's `dst_mac_at`, Ethernet source and the one link-layer option from its
    /// `our_mac_at`, a new checksum; the IPv6 header and the message as they came) and
    /// redirects it out of the interface whose index is at the entry's `egress_at`,
    /// marking the entry's `handled_at` with the frame's timestamp.
    pub(super) fn relay_rewrite(
        &mut self,
        dst_mac_at: i16,
        our_mac_at: i16,
        egress_at: i16,
        handled_at: i16,
    ) {
        self.copy_mac(PKT, 0, ENTRY, dst_mac_at);
        self.copy_mac(PKT, 6, ENTRY, our_mac_at);
        self.copy_mac(PKT, OPTION + 2, ENTRY, our_mac_at);
        self.write_checksum();
        self.mark_handled(handled_at);
        self.ins(LDX_W, R1, ENTRY, egress_at, 0);
        self.redirect();
    }
    /// Stores the frame's receive timestamp in the entry's `handled_tstamp` at
    /// `handled_at`: the program's word that it handled this frame with this entry.
    pub(super) fn mark_handled(&mut self, handled_at: i16) {
        self.ins(LDX_DW, R2, CTX, SKB_TSTAMP, 0);
        self.ins(STX_DW, ENTRY, R2, handled_at, 0);
    }
    /// Redirects the frame out of the interface whose index is in R1 and ends the
    /// program.
    pub(super) fn redirect(&mut self) {
        self.ins(MOV_K, R2, 0, 0, 0);
        self.call(REDIRECT);
        self.ins(EXIT, 0, 0, 0, 0);
    }
    /// Binds the pass-on exit and returns the program.
    pub(super) fn finish(mut self) -> Vec<EbpfInsn> {
        self.labels.bind(self.pass, self.code.len());
        self.ins(MOV_K, R0, 0, 0, TCX_NEXT);
        self.ins(EXIT, 0, 0, 0, 0);
        for (at, l) in self.fixups {
            let off = self.labels.offset(l, at);
            self.code[at].off = i16::try_from(off).expect("jump within i16");
        }
        self.code
    }
}

/// A hash map the programs read, whose `K`-byte keys start with a
/// [`PortTarget`](super::ebpf_maps::PortTarget), with
/// values `V`, and what the daemon put in it (by target, each key with its expiry):
/// entries are found by port or target, and expired ones make room in a full map.
#[derive(Debug)]
pub(super) struct TargetMap<const K: usize, V> {
    /// The config key that asked for the map, for log lines.
    config_key: &'static str,
    map: BpfMap,
    entries: HashMap<Ipv6Addr, Vec<([u8; K], u64)>>,
    len: usize,
    capacity: u32,
    /// No entry expires before this: a full map is not searched for expired entries
    /// again before then.
    earliest: u64,
    value: PhantomData<V>,
}

impl<const K: usize, V: MapValue> TargetMap<K, V> {
    pub(super) fn create(config_key: &'static str, capacity: u32) -> Result<Self, SetupError> {
        let capacity = capacity.max(1);
        let map = BpfMap::create(K as u32, V::SIZE as u32, capacity).map_err(|error| {
            SetupError::Map {
                key: config_key,
                error,
            }
        })?;
        Ok(Self {
            config_key,
            map,
            entries: HashMap::new(),
            len: 0,
            capacity,
            earliest: 0,
            value: PhantomData,
        })
    }

    pub(super) fn raw(&self) -> RawFd {
        self.map.raw()
    }

    /// The entries the map has room for.
    pub(super) fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Inserts or replaces; a full map first drops its expired entries. A replaced
    /// entry keeps the `handled_tstamp` the program last wrote, so that renewing an
    /// entry does not lose the word on a frame the engine has yet to read.
    pub(super) fn insert(&mut self, key: [u8; K], value: &V) -> io::Result<()> {
        let expiry = value.expiry_ns();
        let mut bytes = value.to_bytes();
        let target = key_target(&key);
        let known = self
            .entries
            .get(&target)
            .is_some_and(|on| on.iter().any(|(k, _)| *k == key));
        if known {
            if let Some(handled) = self.handled_tstamp(&key)? {
                bytes[V::HANDLED_AT..V::HANDLED_AT + 8].copy_from_slice(&handled.to_ne_bytes());
            }
        } else if self.len >= self.capacity as usize {
            let now = expiry_ns(Duration::ZERO);
            if now >= self.earliest {
                self.remove_where(|_, expiry| expiry <= now);
                self.earliest = self
                    .entries
                    .values()
                    .flatten()
                    .map(|(_, e)| *e)
                    .min()
                    .unwrap_or(0);
            }
            if self.len >= self.capacity as usize {
                return Err(io::Error::other("the map is full"));
            }
        }
        self.map.insert(&key, &bytes)?;
        let on = self.entries.entry(target).or_default();
        match on.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = expiry,
            None => {
                on.push((key, expiry));
                self.len += 1;
            }
        }
        self.earliest = self.earliest.min(expiry);
        Ok(())
    }

    /// The `handled_tstamp` of `key`'s entry, if there is one.
    pub(super) fn handled_tstamp(&self, key: &[u8; K]) -> io::Result<Option<u64>> {
        let mut value = vec![0u8; V::SIZE];
        if !self.map.lookup(key, &mut value)? {
            return Ok(None);
        }
        let mut t = [0u8; 8];
        t.copy_from_slice(&value[V::HANDLED_AT..V::HANDLED_AT + 8]);
        Ok(Some(u64::from_ne_bytes(t)))
    }

    /// Whether the program answered or relayed the frame received at `rx_tstamp_ns`
    /// (`skb->tstamp`, as `SCM_TIMESTAMPNS` reports it: seconds * 10^9 + nanoseconds)
    /// with `key`'s entry: the entry's `handled_tstamp` is that timestamp. A frame
    /// without a timestamp (0) is never the program's; a later frame the program handled
    /// with the same entry, or the entry removed since, makes this `false` although the
    /// program acted: the answer errs towards the engine doing the work again, never
    /// towards nobody doing it.
    #[allow(
        dead_code,
        reason = "the capture path asks it once it reads SCM_TIMESTAMPNS (issue 15)"
    )]
    pub(super) fn handled(&self, key: &[u8; K], rx_tstamp_ns: u64) -> io::Result<bool> {
        if rx_tstamp_ns == 0 {
            return Ok(false);
        }
        Ok(self.handled_tstamp(key)? == Some(rx_tstamp_ns))
    }

    /// Removes every entry for `target`.
    pub(super) fn remove_target(&mut self, target: Ipv6Addr) {
        for (k, _) in self.entries.remove(&target).unwrap_or_default() {
            self.remove_entry(&k);
            self.len -= 1;
        }
    }

    /// Removes every entry from an ingress in `ifindexes`.
    pub(super) fn remove_ingress(&mut self, ifindexes: &[i32]) {
        if !ifindexes.is_empty() {
            self.remove_where(|k, _| ifindexes.contains(&key_ingress(k)));
        }
    }

    /// Removes every entry.
    pub(super) fn clear(&mut self) {
        self.remove_where(|_, _| true);
    }

    fn remove_where(&mut self, mut gone: impl FnMut(&[u8; K], u64) -> bool) {
        let mut removed = Vec::new();
        for on in self.entries.values_mut() {
            on.retain(|(k, expiry)| {
                let remove = gone(k, *expiry);
                if remove {
                    removed.push(*k);
                }
                !remove
            });
        }
        self.entries.retain(|_, on| !on.is_empty());
        for k in &removed {
            self.remove_entry(k);
        }
        self.len -= removed.len();
    }

    fn remove_entry(&self, key: &[u8; K]) {
        if let Err(e) = self.map.remove(key) {
            log::warn!(
                "{}: cannot remove an entry from the map: {e}",
                self.config_key
            );
        }
    }
}

fn key_ingress(key: &[u8]) -> i32 {
    i32::from_ne_bytes([key[0], key[1], key[2], key[3]])
}

fn key_target(key: &[u8]) -> Ipv6Addr {
    let mut t = [0u8; 16];
    t.copy_from_slice(&key[4..20]);
    Ipv6Addr::from(t)
}

/// The `bpf_ktime_get_ns()` value `valid_for` from now.
pub(super) fn expiry_ns(valid_for: Duration) -> u64 {
    let left = u64::try_from(valid_for.as_nanos()).unwrap_or(u64::MAX);
    ebpf::monotonic_ns().saturating_add(left)
}

/// Why an in-kernel program could not be set up; each names the way out. `key` is the
/// config key that asked for it.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The map could not be created.
    #[error(
        "{key}: creating the eBPF map: {error} (it needs CAP_BPF and the bpf system call: \
         run as root, or see packaging/ndprelay.service for the capability and \
         SystemCallFilter lines to add; or remove {key})"
    )]
    Map {
        /// The config key.
        key: &'static str,
        /// The errno.
        error: io::Error,
    },
    /// The kernel refused the program.
    #[error(
        "{key}: loading the eBPF program: {error} (it needs CAP_BPF and CAP_NET_ADMIN; or \
         remove {key})"
    )]
    Load {
        /// The config key.
        key: &'static str,
        /// What the verifier said.
        error: LoadError,
    },
    /// The program could not be attached.
    #[error(
        "{key}: attaching to {name} (tcx ingress): {error} (tcx needs Linux 6.6 or later; \
         or remove {key})"
    )]
    Attach {
        /// The config key.
        key: &'static str,
        /// The port.
        name: String,
        /// The errno.
        error: io::Error,
    },
}

/// A loaded program and its tcx ingress link on each port it runs on.
#[derive(Debug)]
pub(super) struct TcxLinks {
    key: &'static str,
    prog: OwnedFd,
    links: Vec<(i32, OwnedFd)>,
}

impl TcxLinks {
    /// Loads `insns` as a `sched_cls` program called `name`, for config key `key`.
    pub(super) fn load(
        key: &'static str,
        insns: &[EbpfInsn],
        name: &str,
    ) -> Result<Self, SetupError> {
        let prog =
            ebpf::load_sched_cls(insns, name).map_err(|error| SetupError::Load { key, error })?;
        Ok(Self {
            key,
            prog,
            links: Vec::new(),
        })
    }

    /// Runs on exactly `ports` (name, ifindex): a port re-created under a new index gets
    /// a new link. Returns the indexes it no longer runs on, and what failed.
    pub(super) fn sync(&mut self, ports: &[(&str, i32)]) -> (Vec<i32>, Vec<SetupError>) {
        let gone: Vec<i32> = self
            .links
            .iter()
            .map(|(i, _)| *i)
            .filter(|i| !ports.iter().any(|(_, p)| p == i))
            .collect();
        self.links.retain(|(i, _)| !gone.contains(i));
        let mut errors = Vec::new();
        for &(name, ifindex) in ports {
            if self.attached(ifindex) {
                continue;
            }
            match ebpf::attach_tcx_ingress(&self.prog, ifindex) {
                Ok(link) => self.links.push((ifindex, link)),
                Err(error) => errors.push(SetupError::Attach {
                    key: self.key,
                    name: name.to_owned(),
                    error,
                }),
            }
        }
        (gone, errors)
    }

    /// Whether the program runs on `ifindex`.
    pub(super) fn attached(&self, ifindex: i32) -> bool {
        self.links.iter().any(|(i, _)| *i == ifindex)
    }

    /// Runs the program once on `frame` with `BPF_PROG_TEST_RUN` (see
    /// [`ebpf::test_run`]), whether or not it is attached anywhere.
    #[cfg(test)]
    pub(super) fn test_run(
        &self,
        frame: &[u8],
        ctx: Option<&ebpf::SkBuff>,
    ) -> io::Result<ebpf::TestRun> {
        ebpf::test_run(&self.prog, frame, ctx)
    }
}
