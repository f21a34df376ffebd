//! The in-kernel fast path (opt-in, `fast_path_in_kernel`): an eBPF program on the
//! uplink's tcx ingress hook that answers a Neighbor Solicitation for a freshly confirmed
//! guest by turning it into the Neighbor Advertisement the engine would send, without
//! waking a thread. The engine decides which targets qualify and until when
//! (`Action::KernelAnswer`); the daemon keeps them in a hash map the program reads.
//!
//! `AF_PACKET` taps run before tc ingress, so the capture thread still sees every NS:
//! the engine counts it, learns from it and relays the re-verification NS to the guest
//! as before; it only leaves the answer to the kernel while the entry is valid.
//!
//! The program answers only the common shape (a 32-byte NS with one Source Link-Layer
//! Address option, hop limit 255, a valid checksum, not DAD); anything else goes on to
//! the capture thread and the engine as without it.

use std::collections::HashMap;
use std::io;
use std::net::Ipv6Addr;
use std::os::fd::OwnedFd;
use std::time::Duration;

use super::bpf::Labels;
use super::sys::ebpf::{self, BpfMap, EbpfInsn, LoadError};
use crate::wire::Mac;

/// Key: ingress ifindex (native order), then the target address.
const KEY_SIZE: u32 = 20;
/// Value: the MAC to answer with, two bytes of padding, the expiry in `CLOCK_MONOTONIC`
/// nanoseconds (native order).
const VALUE_SIZE: u32 = 16;

/// The loaded program, its map and one tcx link per port it answers on.
#[derive(Debug)]
pub struct KernelAnswers {
    map: BpfMap,
    prog: OwnedFd,
    links: Vec<(i32, OwnedFd)>,
    /// What the map holds: target → the ifindexes it is answered on.
    entries: HashMap<Ipv6Addr, Vec<i32>>,
    capacity: u32,
}

/// Why the fast path could not be set up; each names the way out.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The map could not be created.
    #[error(
        "fast_path_in_kernel: creating the eBPF map: {0} (it needs CAP_BPF and the bpf \
         system call: run as root, or see packaging/ndprelay.service for the capability and \
         SystemCallFilter lines to add; or remove fast_path_in_kernel)"
    )]
    Map(io::Error),
    /// The kernel refused the program.
    #[error(
        "fast_path_in_kernel: loading the eBPF program: {0} (it needs CAP_BPF and \
         CAP_NET_ADMIN; or remove fast_path_in_kernel)"
    )]
    Load(LoadError),
    /// The program could not be attached.
    #[error(
        "fast_path_in_kernel: attaching to {name} (tcx ingress): {error} (tcx needs Linux \
         6.6 or later; or remove fast_path_in_kernel)"
    )]
    Attach {
        /// The port.
        name: String,
        /// The errno.
        error: io::Error,
    },
}

impl KernelAnswers {
    /// Creates a map for `max_entries` (port, guest) pairs and loads the program.
    pub fn load(max_entries: u32) -> Result<Self, SetupError> {
        let capacity = max_entries.max(1);
        let map = BpfMap::create(KEY_SIZE, VALUE_SIZE, capacity).map_err(SetupError::Map)?;
        let prog =
            ebpf::load_sched_cls(&program(map.raw()), "ndprelay_ns").map_err(SetupError::Load)?;
        Ok(Self {
            map,
            prog,
            links: Vec::new(),
            entries: HashMap::new(),
            capacity,
        })
    }

    /// The (port, guest) pairs the map has room for.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Answers on exactly `ports` (name, ifindex): the upstream ports present now. A
    /// port re-created under a new index gets a new link; links and entries of indexes
    /// no longer listed go.
    pub fn sync(&mut self, ports: &[(&str, i32)]) -> Vec<SetupError> {
        let gone: Vec<i32> = self
            .links
            .iter()
            .map(|(i, _)| *i)
            .filter(|i| !ports.iter().any(|(_, p)| p == i))
            .collect();
        for ifindex in gone {
            self.links.retain(|(i, _)| *i != ifindex);
            for (target, on) in &mut self.entries {
                if let Some(at) = on.iter().position(|i| *i == ifindex) {
                    on.swap_remove(at);
                    remove_entry(&self.map, ifindex, *target);
                }
            }
            self.entries.retain(|_, on| !on.is_empty());
        }
        let mut errors = Vec::new();
        for &(name, ifindex) in ports {
            if self.links.iter().any(|(i, _)| *i == ifindex) {
                continue;
            }
            match ebpf::attach_tcx_ingress(&self.prog, ifindex) {
                Ok(link) => self.links.push((ifindex, link)),
                Err(error) => errors.push(SetupError::Attach {
                    name: name.to_owned(),
                    error,
                }),
            }
        }
        errors
    }

    /// Answers NS for `target` arriving on `ifindex` with `mac` for `valid_for` from now.
    pub fn answer(
        &mut self,
        ifindex: i32,
        target: Ipv6Addr,
        mac: Mac,
        valid_for: Duration,
    ) -> io::Result<()> {
        if !self.links.iter().any(|(i, _)| *i == ifindex) {
            return Err(io::Error::other("the program is not attached to the port"));
        }
        let left = u64::try_from(valid_for.as_nanos()).unwrap_or(u64::MAX);
        let expiry = ebpf::monotonic_ns().saturating_add(left);
        let mut value = [0u8; VALUE_SIZE as usize];
        value[..6].copy_from_slice(&mac.0);
        value[8..].copy_from_slice(&expiry.to_ne_bytes());
        self.map.insert(&key(ifindex, target), &value)?;
        let on = self.entries.entry(target).or_default();
        if !on.contains(&ifindex) {
            on.push(ifindex);
        }
        Ok(())
    }

    /// Stops answering for `target` on every port.
    pub fn forget(&mut self, target: Ipv6Addr) {
        for ifindex in self.entries.remove(&target).unwrap_or_default() {
            remove_entry(&self.map, ifindex, target);
        }
    }
}

fn remove_entry(map: &BpfMap, ifindex: i32, target: Ipv6Addr) {
    if let Err(e) = map.remove(&key(ifindex, target)) {
        log::warn!("fast_path_in_kernel: cannot remove {target} from the map: {e}");
    }
}

fn key(ifindex: i32, target: Ipv6Addr) -> [u8; KEY_SIZE as usize] {
    let mut k = [0u8; KEY_SIZE as usize];
    k[..4].copy_from_slice(&ifindex.to_ne_bytes());
    k[4..].copy_from_slice(&target.octets());
    k
}

// eBPF opcodes (linux/bpf.h, linux/bpf_common.h).
const LDX_W: u8 = 0x61;
const LDX_H: u8 = 0x69;
const LDX_B: u8 = 0x71;
const LDX_DW: u8 = 0x79;
const STX_W: u8 = 0x63;
const STX_H: u8 = 0x6b;
const STX_DW: u8 = 0x7b;
const ADD_K: u8 = 0x07;
const AND_K: u8 = 0x57;
const OR_X: u8 = 0x4f;
const RSH_K: u8 = 0x77;
const XOR_K: u8 = 0xa7;
const MOV_K: u8 = 0xb7;
const MOV_X: u8 = 0xbf;
const ADD_X: u8 = 0x0f;
const JEQ_K: u8 = 0x15;
const JNE_K: u8 = 0x55;
const JGE_X: u8 = 0x3d;
const JGT_X: u8 = 0x2d;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const LD_IMM64: u8 = 0x18;
const PSEUDO_MAP_FD: u8 = 1;

// Helpers.
const MAP_LOOKUP_ELEM: i32 = 1;
const KTIME_GET_NS: i32 = 5;
const REDIRECT: i32 = 23;
const CSUM_DIFF: i32 = 28;

/// `struct __sk_buff` fields.
const SKB_PKT_TYPE: i16 = 4;
const SKB_IFINDEX: i16 = 40;
const SKB_DATA: i16 = 76;
const SKB_DATA_END: i16 = 80;

const PACKET_OTHERHOST: i32 = 3;
const TCX_NEXT: i32 = -1;

// Registers.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;
const CTX: u8 = 6;
const PKT: u8 = 7;
const PKT_END: u8 = 8;
const ENTRY: u8 = 9;
const FP: u8 = 10;

/// Frame offsets: Ethernet, IPv6, ICMPv6, the option.
const NS_FRAME_LEN: i32 = 86;
const IP6: i16 = 14;
const IP6_SRC: i16 = IP6 + 8;
const IP6_DST: i16 = IP6 + 24;
const ICMP: i16 = IP6 + 40;
const TARGET: i16 = ICMP + 8;
const OPTION: i16 = ICMP + 24;

/// Stack slots: the map key, then the pseudo-header's length and next header.
const KEY_AT: i16 = -24;
const PSEUDO_AT: i16 = -32;

/// A small eBPF assembler with forward labels, like `bpf.rs`'s for classic BPF.
struct Asm {
    code: Vec<EbpfInsn>,
    /// (instruction index, label) of each jump to patch.
    fixups: Vec<(usize, usize)>,
    labels: Labels,
}

impl Asm {
    fn new() -> Self {
        Self {
            code: Vec::new(),
            fixups: Vec::new(),
            labels: Labels::default(),
        }
    }
    fn label(&mut self) -> usize {
        self.labels.new_label()
    }
    fn bind(&mut self, l: usize) {
        self.labels.bind(l, self.code.len());
    }
    fn ins(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.code.push(EbpfInsn {
            code,
            regs: src << 4 | dst,
            off,
            imm,
        });
    }
    fn jump(&mut self, code: u8, dst: u8, src: u8, imm: i32, to: usize) {
        self.fixups.push((self.code.len(), to));
        self.ins(code, dst, src, 0, imm);
    }
    fn call(&mut self, helper: i32) {
        self.ins(CALL, 0, 0, 0, helper);
    }
    /// Ones'-complement sum of the addresses and the ICMPv6 message (contiguous: 64
    /// bytes from the IPv6 source on) plus the pseudo-header tail on the stack, folded
    /// to 16 bits, in R0.
    fn checksum(&mut self) {
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
    /// Copies `len` (4, 2 or 8) bytes from `src + so` to `dst + doff`.
    fn copy(&mut self, dst: u8, doff: i16, src: u8, so: i16, len: usize) {
        let (ld, st) = match len {
            8 => (LDX_DW, STX_DW),
            4 => (LDX_W, STX_W),
            _ => (LDX_H, STX_H),
        };
        self.ins(ld, R2, src, so, 0);
        self.ins(st, dst, R2, doff, 0);
    }
    fn store_imm(&mut self, size: usize, dst: u8, off: i16, imm: i32) {
        self.ins(MOV_K, R2, 0, 0, imm);
        let st = match size {
            4 => STX_W,
            _ => STX_H,
        };
        self.ins(st, dst, R2, off, 0);
    }
    fn finish(mut self) -> Vec<EbpfInsn> {
        for (at, l) in self.fixups {
            let off = self.labels.offset(l, at);
            self.code[at].off = i16::try_from(off).expect("jump within i16");
        }
        self.code
    }
}

/// The program; `map_fd` is the map of [`KernelAnswers`].
fn program(map_fd: i32) -> Vec<EbpfInsn> {
    let mut a = Asm::new();
    let pass = a.label();
    a.ins(MOV_X, CTX, R1, 0, 0);
    a.ins(LDX_W, R0, CTX, SKB_PKT_TYPE, 0);
    a.jump(JEQ_K, R0, 0, PACKET_OTHERHOST, pass);
    a.ins(LDX_W, PKT, CTX, SKB_DATA, 0);
    a.ins(LDX_W, PKT_END, CTX, SKB_DATA_END, 0);
    a.ins(MOV_X, R2, PKT, 0, 0);
    a.ins(ADD_K, R2, 0, 0, NS_FRAME_LEN);
    a.jump(JGT_X, R2, PKT_END, 0, pass);
    // Little-endian loads of the wire bytes: EtherType 86dd; payload length 32; Next
    // Header 58 and hop limit 255; type 135 and code 0; option type 1, length 1.
    for (off, want) in [
        (12, 0xdd86),
        (IP6 + 4, 0x2000),
        (IP6 + 6, 0xff3a),
        (ICMP, 0x0087),
        (OPTION, 0x0101),
    ] {
        a.ins(LDX_H, R2, PKT, off, 0);
        a.jump(JNE_K, R2, 0, want, pass);
    }
    // DAD (unspecified source) is relayed by the engine, never answered; a multicast
    // source is invalid (RFC 4861 §7.1.1) and the engine drops it.
    a.ins(LDX_DW, R2, PKT, IP6_SRC, 0);
    a.ins(LDX_DW, R3, PKT, IP6_SRC + 8, 0);
    a.ins(OR_X, R2, R3, 0, 0);
    a.jump(JEQ_K, R2, 0, 0, pass);
    a.ins(LDX_B, R2, PKT, IP6_SRC, 0);
    a.jump(JEQ_K, R2, 0, 0xff, pass);
    // Key: ifindex, target.
    a.ins(LDX_W, R2, CTX, SKB_IFINDEX, 0);
    a.ins(STX_W, FP, R2, KEY_AT, 0);
    for i in 0..4 {
        a.copy(FP, KEY_AT + 4 + 4 * i, PKT, TARGET + 4 * i, 4);
    }
    a.ins(LD_IMM64, R1, PSEUDO_MAP_FD, 0, map_fd);
    a.ins(0, 0, 0, 0, 0);
    a.ins(MOV_X, R2, FP, 0, 0);
    a.ins(ADD_K, R2, 0, 0, i32::from(KEY_AT));
    a.call(MAP_LOOKUP_ELEM);
    a.jump(JEQ_K, R0, 0, 0, pass);
    a.ins(MOV_X, ENTRY, R0, 0, 0);
    a.call(KTIME_GET_NS);
    a.ins(LDX_DW, R1, ENTRY, 8, 0);
    a.jump(JGE_X, R0, R1, 0, pass);
    // The pseudo-header's upper-layer length (32) and next header (58), as on the wire.
    a.store_imm(4, FP, PSEUDO_AT, 0x2000_0000);
    a.store_imm(4, FP, PSEUDO_AT + 4, 0x3a00_0000);
    a.checksum();
    a.jump(JNE_K, R0, 0, 0xffff, pass);
    // The NA: to the asker's SLLA from our MAC, from the target, S=1 O=0 R=0, with our
    // MAC as Target Link-Layer Address (what the engine's fast path sends).
    a.copy(PKT, 0, PKT, OPTION + 2, 4);
    a.copy(PKT, 4, PKT, OPTION + 6, 2);
    a.copy(PKT, 6, ENTRY, 0, 4);
    a.copy(PKT, 10, ENTRY, 4, 2);
    a.store_imm(4, PKT, IP6, 0x60);
    a.copy(PKT, IP6_DST, PKT, IP6_SRC, 8);
    a.copy(PKT, IP6_DST + 8, PKT, IP6_SRC + 8, 8);
    a.copy(PKT, IP6_SRC, PKT, TARGET, 8);
    a.copy(PKT, IP6_SRC + 8, PKT, TARGET + 8, 8);
    a.store_imm(4, PKT, ICMP, 136); // type, code, checksum 0
    a.store_imm(4, PKT, ICMP + 4, 0x40); // flags: Solicited
    a.store_imm(2, PKT, OPTION, 0x0102); // Target Link-Layer Address, length 1
    a.copy(PKT, OPTION + 2, ENTRY, 0, 4);
    a.copy(PKT, OPTION + 6, ENTRY, 4, 2);
    a.checksum();
    a.ins(XOR_K, R0, 0, 0, 0xffff);
    a.ins(STX_H, PKT, R0, ICMP + 2, 0);
    a.ins(LDX_W, R1, CTX, SKB_IFINDEX, 0);
    a.ins(MOV_K, R2, 0, 0, 0);
    a.call(REDIRECT);
    a.ins(EXIT, 0, 0, 0, 0);
    a.bind(pass);
    a.ins(MOV_K, R0, 0, 0, TCX_NEXT);
    a.ins(EXIT, 0, 0, 0, 0);
    a.finish()
}
