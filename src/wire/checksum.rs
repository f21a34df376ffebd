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

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::golden::*;

    /// RFC 1071 from scratch: build the pseudo-header, zero the checksum field, sum
    /// 16-bit big-endian words one at a time, fold, complement.
    fn reference(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
        let mut data = Vec::new();
        data.extend_from_slice(&src.octets());
        data.extend_from_slice(&dst.octets());
        data.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
        data.extend_from_slice(&[0, 0, 0, 58]);
        let start = data.len();
        data.extend_from_slice(icmp);
        if data.len() > start + 3 {
            data[start + 2] = 0;
            data[start + 3] = 0;
        } else {
            data.truncate(start + icmp.len().min(2));
        }
        if data.len() % 2 == 1 {
            data.push(0);
        }
        let mut sum: u32 = 0;
        for i in (0..data.len()).step_by(2) {
            sum += (u32::from(data[i]) << 8) | u32::from(data[i + 1]);
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn golden_frames_agree_with_reference() {
        for frame in [
            &NS_FRAME[..],
            &RS_FRAME,
            &RA_FRAME,
            &NA_FRAME,
            &REDIRECT_FRAME,
            &ECHO_FRAME,
        ] {
            let src = Ipv6Addr::from(read(&frame[22..38]));
            let dst = Ipv6Addr::from(read(&frame[38..54]));
            let icmp = &frame[54..];
            let stored = u16::from_be_bytes([icmp[2], icmp[3]]);
            assert_eq!(reference(src, dst, icmp), stored);
            assert_eq!(icmpv6_checksum(src, dst, icmp), stored);
            assert!(verify_icmpv6_checksum(src, dst, icmp));
        }
    }

    fn read(b: &[u8]) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(b);
        a
    }

    #[test]
    fn every_length_and_odd_tail_agrees_with_reference() {
        let src = ip("2001:db8::1");
        let dst = ip("fe80::1234:5678");
        let data: Vec<u8> = (0..300u32).map(|i| (i * 97 + 13) as u8).collect();
        for len in 0..data.len() {
            let icmp = &data[..len];
            assert_eq!(
                icmpv6_checksum(src, dst, icmp),
                reference(src, dst, icmp),
                "len {len}"
            );
        }
    }

    #[test]
    fn verify_rejects_wrong_and_zero_checksums() {
        let src = Ipv6Addr::from(read(&NS_FRAME[22..38]));
        let dst = Ipv6Addr::from(read(&NS_FRAME[38..54]));
        let mut icmp = NS_FRAME[54..].to_vec();
        for bad in [[0, 0], [0xff, 0xff], [icmp[2] ^ 1, icmp[3]]] {
            icmp[2..4].copy_from_slice(&bad);
            assert!(!verify_icmpv6_checksum(src, dst, &icmp), "{bad:?}");
        }
        assert!(!verify_icmpv6_checksum(src, dst, &icmp[..3]));
        fill_icmpv6_checksum(src, dst, &mut icmp);
        assert_eq!(icmp, NS_FRAME[54..]);
    }
}
