//! Writes a synthetic capture for benchmarking `ndprelay replay` (scripts/bench-replay.sh).
//!
//! `cargo run --release --example gen_capture -- OUT.pcapng N [SEED]` writes N frames, one
//! per millisecond, as one pcapng with interfaces `eth0` (uplink) and `br0` (guests)
//! carrying the relay's MACs, so `ndprelay replay -c CONFIG --input OUT.pcapng` needs no
//! `--mac`. The mix is what a busy uplink looks like: the router soliciting many guest
//! addresses, guests answering and resolving the router, DAD, RS, unsolicited NAs, a
//! periodic RA, and about 5% malformed frames (bad checksum, hop limit, truncation,
//! foreign EtherType). The config to replay it against: uplink eth0, downstream br0,
//! prefix 2001:db8:1::/64 (scripts/bench-replay.sh writes it).

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::time::Duration;

use ndprelay::pcapng::PcapNgFile;
use ndprelay::wire::{
    Mac, NaFlags, NdMessage, OptionRepr, PrefixInfo, RaFlags, RouterAdvert, emit_nd, solicited_node,
};

/// The relay's MACs (interface descriptions of the capture).
const UPLINK_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
const BR0_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x02]);
const ROUTER_MAC: Mac = Mac([0x00, 0x00, 0x5e, 0x00, 0x53, 0x01]);
/// Distinct guest addresses the router asks about.
const GUESTS: u32 = 4096;
/// One RA from the router every this many frames.
const RA_EVERY: u64 = 2000;
const UPLINK: u32 = 0;
const BR0: u32 = 1;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn guest_addr(k: u32) -> Ipv6Addr {
    let [a, b, c, d] = k.to_be_bytes();
    Ipv6Addr::new(
        0x2001,
        0xdb8,
        1,
        0,
        0x5054,
        0x00ff,
        0xfe00 | u16::from(b),
        u16::from_be_bytes([c, d]) ^ u16::from(a),
    )
}

fn guest_mac(k: u32) -> Mac {
    let [_, b, c, d] = k.to_be_bytes();
    Mac([0x52, 0x54, 0x00, b, c, d])
}

fn router_ll() -> Ipv6Addr {
    ROUTER_MAC.link_local()
}

fn router_global() -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1)
}

fn all_nodes() -> Ipv6Addr {
    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)
}

fn router_ra() -> Vec<u8> {
    let ra = RouterAdvert {
        cur_hop_limit: 64,
        flags: RaFlags::empty(),
        router_lifetime: 1800,
        reachable_time: 0,
        retrans_timer: 0,
    };
    let prefix = PrefixInfo {
        prefix_len: 64,
        on_link: true,
        autonomous: true,
        valid_lifetime: 86400,
        preferred_lifetime: 14400,
        prefix: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0),
    };
    emit_nd(
        ROUTER_MAC,
        Mac::ipv6_multicast(all_nodes()),
        router_ll(),
        all_nodes(),
        &NdMessage::RouterAdvert(ra),
        &[
            OptionRepr::SourceLla(ROUTER_MAC),
            OptionRepr::Mtu(1500),
            OptionRepr::PrefixInfo(prefix),
        ],
    )
}

fn ns(eth_src: Mac, src: Ipv6Addr, target: Ipv6Addr, slla: Option<Mac>) -> Vec<u8> {
    let dst = solicited_node(target);
    let opts: Vec<OptionRepr> = slla.map(OptionRepr::SourceLla).into_iter().collect();
    emit_nd(
        eth_src,
        Mac::ipv6_multicast(dst),
        src,
        dst,
        &NdMessage::NeighborSolicit {
            target_addr: target,
        },
        &opts,
    )
}

fn na(k: u32, dst: Ipv6Addr, eth_dst: Mac, solicited: bool) -> Vec<u8> {
    let flags = if solicited {
        NaFlags::SOLICITED | NaFlags::OVERRIDE
    } else {
        NaFlags::OVERRIDE
    };
    emit_nd(
        guest_mac(k),
        eth_dst,
        guest_addr(k),
        dst,
        &NdMessage::NeighborAdvert {
            flags,
            target_addr: guest_addr(k),
        },
        &[OptionRepr::TargetLla(guest_mac(k))],
    )
}

/// One frame of the mix: (interface, frame).
fn frame(i: u64, rng: &mut Rng) -> (u32, Vec<u8>) {
    if i % RA_EVERY == 0 {
        return (UPLINK, router_ra());
    }
    // Guests are asked about roughly in turn, as a router's neighbour cache refreshes.
    let k = u32::try_from(rng.below(u64::from(GUESTS))).unwrap_or(0);
    match rng.below(100) {
        0..40 => {
            let src = if rng.below(2) == 0 {
                router_ll()
            } else {
                router_global()
            };
            (UPLINK, ns(ROUTER_MAC, src, guest_addr(k), Some(ROUTER_MAC)))
        }
        40..75 => (BR0, na(k, router_ll(), BR0_MAC, true)),
        75..85 => {
            let src = guest_addr(k);
            (
                BR0,
                ns(guest_mac(k), src, router_global(), Some(guest_mac(k))),
            )
        }
        85..90 => (
            BR0,
            ns(guest_mac(k), Ipv6Addr::UNSPECIFIED, guest_addr(k), None),
        ),
        90..93 => {
            let all_routers = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
            let rs = emit_nd(
                guest_mac(k),
                Mac::ipv6_multicast(all_routers),
                guest_mac(k).link_local(),
                all_routers,
                &NdMessage::RouterSolicit,
                &[OptionRepr::SourceLla(guest_mac(k))],
            );
            (BR0, rs)
        }
        93..95 => (
            BR0,
            na(k, all_nodes(), Mac::ipv6_multicast(all_nodes()), false),
        ),
        _ => malformed(k, rng),
    }
}

/// Hostile or broken frames, as a real uplink carries now and then.
fn malformed(k: u32, rng: &mut Rng) -> (u32, Vec<u8>) {
    let mut f = ns(ROUTER_MAC, router_ll(), guest_addr(k), Some(ROUTER_MAC));
    match rng.below(4) {
        // Checksum no longer matches.
        0 => f[14 + 40 + 8] ^= 0xff,
        // Hop limit 64: forwarded ND, never valid.
        1 => f[14 + 7] = 64,
        // Cut inside the target address.
        2 => f.truncate(14 + 40 + 12),
        // Not IPv6 at all.
        _ => f[12..14].copy_from_slice(&[0x08, 0x06]),
    }
    (UPLINK, f)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(out), Some(n)) = (args.first(), args.get(1)) else {
        anyhow::bail!("usage: gen_capture OUT.pcapng FRAMES [SEED]");
    };
    let out = PathBuf::from(out);
    let n: u64 = n.parse()?;
    let seed: u64 = args.get(2).map_or(Ok(1), |s| s.parse())?;
    let mut rng = Rng(seed | 1);
    let interfaces = [
        ("eth0".to_owned(), Some(UPLINK_MAC)),
        ("br0".to_owned(), Some(BR0_MAC)),
    ];
    let mut file = PcapNgFile::create(&out, &interfaces)?;
    let start = Duration::from_secs(1_700_000_000);
    for i in 0..n {
        let (interface, data) = frame(i, &mut rng);
        file.write(interface, start + Duration::from_millis(i), &data)?;
    }
    file.finish()?;
    eprintln!("{}: {n} frames", out.display());
    Ok(())
}
