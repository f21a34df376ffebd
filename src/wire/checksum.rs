//! The ICMPv6 checksum over the IPv6 pseudo-header (RFC 4443 §2.3, RFC 8200 §8.1).
//!
//! Words are summed 32 bits at a time into a 64-bit accumulator and folded at the end;
//! one's-complement addition is associative, so this equals the 16-bit sum of RFC 1071.

use std::net::Ipv6Addr;

use super::IPPROTO_ICMPV6;

/// Adds `bytes` (starting at an even offset of the checksummed data) to `acc`.
fn sum_bytes(mut acc: u64, bytes: &[u8]) -> u64 {
    let mut quads = bytes.chunks_exact(4);
    for q in &mut quads {
        acc += u64::from(u32::from_be_bytes([q[0], q[1], q[2], q[3]]));
    }
    let rest = quads.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        // An odd final byte is padded with a zero byte on the right (RFC 1071).
        acc += u64::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // The loop leaves at most 16 significant bits.
    acc as u16
}

/// Pseudo-header sum: source, destination, upper-layer length, Next Header 58.
fn pseudo_header(src: Ipv6Addr, dst: Ipv6Addr, len: usize) -> u64 {
    let acc = sum_bytes(0, &src.octets());
    let acc = sum_bytes(acc, &dst.octets());
    acc + len as u64 + u64::from(IPPROTO_ICMPV6)
}

/// Computes the ICMPv6 checksum of `icmp` (whose checksum field is taken as zero).
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut acc = pseudo_header(src, dst, icmp.len());
    acc = sum_bytes(acc, &icmp[..icmp.len().min(2)]);
    if let Some(body) = icmp.get(4..) {
        acc = sum_bytes(acc, body);
    }
    !fold(acc)
}

/// True if the checksum stored in `icmp` is correct.
///
/// The whole message, stored checksum included, must sum to `0xffff` (as Linux checks),
/// so a zero checksum field only passes when zero is the correct value.
pub fn verify_icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> bool {
    if icmp.len() < 4 {
        return false;
    }
    let acc = sum_bytes(pseudo_header(src, dst, icmp.len()), icmp);
    fold(acc) == 0xffff
}

/// Writes the checksum of `icmp` into bytes 2..4 (no-op if `icmp` is shorter).
pub(crate) fn fill_icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &mut [u8]) {
    let c = icmpv6_checksum(src, dst, icmp);
    if let Some(field) = icmp.get_mut(2..4) {
        field.copy_from_slice(&c.to_be_bytes());
    }
}
