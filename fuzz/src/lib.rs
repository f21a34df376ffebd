//! Helpers shared by the fuzz targets: the engine target's input format and a checksum
//! fix-up, so mutated frames get past the ICMPv6 checksum check (which a fuzzer cannot
//! solve by itself) into the ND validation and the engine logic behind it.
//!
//! The engine input format (written by `cargo run --example fuzz_seeds`, which keeps its
//! own copy of the encoder) is a config byte followed by records, each one op byte and a
//! body in big-endian order; a body cut short by the end of the input reads as zeros:
//!
//! | op & 3 | op                    | body                                 |
//! |--------|-----------------------|--------------------------------------|
//! | 0      | frame on port P       | advance ms: u16, length: u16, bytes  |
//! | 1      | timeout, on time (bit 2) or late | advance ms: u32           |
//! | 2      | link up (bit 4) / down| none                                 |
//! | 3      | MAC change            | last MAC byte: u8                    |
//! | 3, bit 7 set | route added (bit 4) / deleted through port P (P = 3: elsewhere) | prefix length: u8, last address byte: u8 |
//!
//! P is `(op >> 2) & 3` modulo the port count; a frame's ICMPv6 checksum is fixed up
//! unless bit 7 of its op is set.

use std::net::Ipv6Addr;

use ndprelay::wire::{
    ETH_HEADER_LEN, ETHERTYPE_IPV6, IPPROTO_ICMPV6, IPV6_HEADER_LEN, icmpv6_checksum,
};

/// One step of the engine target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op<'a> {
    /// `handle_frame` on `port` after moving the clock by `advance_ms`.
    Frame {
        /// Port index (before the modulo by the port count).
        port: u8,
        /// Clock advance before the frame.
        advance_ms: u16,
        /// Fix the ICMPv6 checksum up before feeding the frame.
        fix_checksum: bool,
        /// The frame.
        bytes: &'a [u8],
    },
    /// `handle_timeout` after moving the clock by `advance_ms`.
    Timeout {
        /// Clock advance.
        advance_ms: u32,
        /// Fire each deadline on the way at its own time, as a punctual driver does;
        /// otherwise once at the end, as a driver that woke up late.
        on_time: bool,
    },
    /// A link up or down event on `port`.
    Link {
        /// Port index (before the modulo by the port count).
        port: u8,
        /// Up or down.
        up: bool,
    },
    /// A main-table route change (`Engine::handle_route`) for
    /// `2001:db8:1::<last>/<len>` (lengths above 128 wrap) through `port` (3: elsewhere).
    Route {
        /// Port index (3: no port).
        port: u8,
        /// Prefix length, modulo 129.
        len: u8,
        /// Last byte of the address.
        last: u8,
        /// Added rather than deleted.
        present: bool,
    },
    /// A MAC change on `port` to `02:00:00:00:01:<last>`.
    MacChange {
        /// Port index (before the modulo by the port count).
        port: u8,
        /// Last byte of the new MAC.
        last: u8,
    },
}

/// Splits an engine input into its config byte and its ops.
pub fn decode(data: &[u8]) -> (u8, Ops<'_>) {
    match data.split_first() {
        Some((&config, rest)) => (config, Ops { rest }),
        None => (0, Ops { rest: &[] }),
    }
}

/// Iterator over the ops of an engine input.
#[derive(Debug)]
pub struct Ops<'a> {
    rest: &'a [u8],
}

impl<'a> Ops<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = tail;
        head
    }

    /// The next `n` (at most 4) bytes as a big-endian number, missing bytes as zeros.
    fn be(&mut self, n: usize) -> u32 {
        let bytes = self.take(n);
        (0..n).fold(0, |acc, i| {
            (acc << 8) | u32::from(bytes.get(i).copied().unwrap_or(0))
        })
    }
}

impl<'a> Iterator for Ops<'a> {
    type Item = Op<'a>;

    fn next(&mut self) -> Option<Op<'a>> {
        let (&op, rest) = self.rest.split_first()?;
        self.rest = rest;
        let port = (op >> 2) & 3;
        Some(match op & 3 {
            0 => {
                // Both fit in u16: `be(2)` reads two bytes.
                let advance_ms = self.be(2) as u16;
                let len = self.be(2) as usize;
                Op::Frame {
                    port,
                    advance_ms,
                    fix_checksum: op & 0x80 == 0,
                    bytes: self.take(len),
                }
            }
            1 => Op::Timeout {
                advance_ms: self.be(4),
                on_time: op & 4 != 0,
            },
            2 => Op::Link {
                port,
                up: op & 0x10 != 0,
            },
            _ if op & 0x80 != 0 => Op::Route {
                port,
                len: self.be(1) as u8,
                last: self.be(1) as u8,
                present: op & 0x10 != 0,
            },
            _ => Op::MacChange {
                port,
                last: self.be(1) as u8,
            },
        })
    }
}

/// `frame` with its ICMPv6 checksum recomputed, if it is an Ethernet IPv6 frame whose
/// fixed header is followed directly by ICMPv6 with at least a checksum field (the only
/// layout the parser accepts for ND); `None` otherwise.
pub fn with_fixed_checksum(frame: &[u8]) -> Option<Vec<u8>> {
    let ip = frame.get(ETH_HEADER_LEN..ETH_HEADER_LEN + IPV6_HEADER_LEN)?;
    if frame[12..14] != ETHERTYPE_IPV6.to_be_bytes() || ip[6] != IPPROTO_ICMPV6 {
        return None;
    }
    let payload_len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).ok()?);
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).ok()?);
    let start = ETH_HEADER_LEN + IPV6_HEADER_LEN;
    // The checksum covers Payload Length octets; a frame cut shorter is left to the
    // parser to reject, checksummed over what there is.
    let end = frame.len().min(start + payload_len);
    if end < start + 4 {
        return None;
    }
    let mut out = frame.to_vec();
    out[start + 2..start + 4].fill(0);
    let sum = icmpv6_checksum(src, dst, &out[start..end]);
    out[start + 2..start + 4].copy_from_slice(&sum.to_be_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_op_and_reads_missing_bytes_as_zero() {
        let input = [
            0x5a, // config
            0x84, 0, 10, 0, 2, 0xaa, 0xbb, // raw frame on port 1, +10 ms, 2 bytes
            0x01, 0, 0, 1, 0, // timeout +256 ms
            0x05, 0, 0, 0, 9,    // timeout +9 ms, on time
            0x1a, // link up on port 2
            0x03, 7, // MAC change on port 0
            0x9f, 128, 5, // route added through port 3 (elsewhere)
            0x00, 0, 1, 0, 9, 0xcc, // frame cut short: 9 bytes announced, 1 there
        ];
        let (config, ops) = decode(&input);
        assert_eq!(config, 0x5a);
        let ops: Vec<Op<'_>> = ops.collect();
        assert_eq!(
            ops,
            [
                Op::Frame {
                    port: 1,
                    advance_ms: 10,
                    fix_checksum: false,
                    bytes: &[0xaa, 0xbb]
                },
                Op::Timeout {
                    advance_ms: 256,
                    on_time: false
                },
                Op::Timeout {
                    advance_ms: 9,
                    on_time: true
                },
                Op::Link { port: 2, up: true },
                Op::MacChange { port: 0, last: 7 },
                Op::Route {
                    port: 3,
                    len: 128,
                    last: 5,
                    present: true
                },
                Op::Frame {
                    port: 0,
                    advance_ms: 1,
                    fix_checksum: true,
                    bytes: &[0xcc]
                },
            ]
        );
    }

    #[test]
    fn fixed_checksum_makes_a_corrupted_nd_frame_parse_again() {
        use ndprelay::wire::{Mac, NdMessage, Parsed, emit_nd, parse_frame};
        let mac = Mac([0x52, 0x54, 0, 0, 0, 0x10]);
        let target = "2001:db8:1::10".parse().expect("literal");
        let mut frame = emit_nd(
            mac,
            Mac::ipv6_multicast("ff02::1:ff00:10".parse().expect("literal")),
            mac.link_local(),
            "ff02::1:ff00:10".parse().expect("literal"),
            &NdMessage::NeighborSolicit {
                target_addr: target,
            },
            &[],
        );
        frame[ETH_HEADER_LEN + IPV6_HEADER_LEN + 8] ^= 0x40; // a target address bit
        assert!(parse_frame(&frame).is_err(), "checksum no longer matches");
        let fixed = with_fixed_checksum(&frame).expect("ICMPv6 frame");
        assert!(matches!(parse_frame(&fixed), Ok(Parsed::Nd(_))));
        assert_eq!(
            with_fixed_checksum(&frame[..ETH_HEADER_LEN + IPV6_HEADER_LEN + 3]),
            None
        );
    }
}
