//! One-line, human-readable decode of a frame, as in a timeline or a replay listing.

use super::text::{push_ipv6, push_mac, push_u64};
use crate::DropReason;
use crate::wire::{NaFlags, NdMessage, NdOption, Parsed, parse_frame};

/// Describes `frame` in one line, e.g. `NS who-has 2001:db8::10 from fe80::1 slla 02:..`.
pub fn describe(frame: &[u8]) -> String {
    let mut s = Vec::new();
    describe_parsed(&mut s, frame.len(), &parse_frame(frame));
    String::from_utf8_lossy(&s).into_owned()
}

/// Appends the description (UTF-8) of a frame of `len` bytes that parsed as `parsed` to `s`
/// (replay parses each frame once for the description and the addresses).
pub(crate) fn describe_parsed(
    s: &mut Vec<u8>,
    len: usize,
    parsed: &Result<Parsed<'_>, DropReason>,
) {
    write_description(s, len, parsed);
}

fn write_description(s: &mut Vec<u8>, len: usize, parsed: &Result<Parsed<'_>, DropReason>) {
    let len = len as u64;
    match parsed {
        Err(reason) => {
            s.extend_from_slice(b"invalid (");
            s.extend_from_slice(reason.name().as_bytes());
            s.extend_from_slice(b"), ");
            push_u64(s, len);
            s.extend_from_slice(b" bytes");
        }
        Ok(Parsed::NotIpv6) => {
            s.extend_from_slice(b"not IPv6, ");
            push_u64(s, len);
            s.extend_from_slice(b" bytes");
        }
        Ok(Parsed::Data(d)) => {
            s.extend_from_slice(b"IPv6 ");
            push_ipv6(s, d.src_addr);
            s.extend_from_slice(b" > ");
            push_ipv6(s, d.dst_addr);
            s.extend_from_slice(b" hlim ");
            push_u64(s, u64::from(d.hop_limit));
            s.extend_from_slice(b", ");
            push_u64(s, d.packet.len() as u64);
            s.extend_from_slice(b" bytes");
        }
        Ok(Parsed::Nd(p)) => {
            match p.message {
                NdMessage::RouterSolicit => {
                    s.extend_from_slice(b"RS from ");
                    push_ipv6(s, p.src_addr);
                }
                NdMessage::RouterAdvert(ra) => {
                    s.extend_from_slice(b"RA from ");
                    push_ipv6(s, p.src_addr);
                    s.extend_from_slice(b" lifetime ");
                    push_u64(s, u64::from(ra.router_lifetime));
                    s.push(b's');
                    if ra.flags.proxy() {
                        s.extend_from_slice(b" P");
                    }
                    for opt in p.options() {
                        if let NdOption::PrefixInfo(pi) = opt {
                            s.extend_from_slice(b" prefix ");
                            push_ipv6(s, pi.prefix);
                            s.push(b'/');
                            push_u64(s, u64::from(pi.prefix_len));
                        }
                    }
                }
                NdMessage::NeighborSolicit { target_addr } if p.src_addr.is_unspecified() => {
                    s.extend_from_slice(b"NS DAD for ");
                    push_ipv6(s, target_addr);
                }
                NdMessage::NeighborSolicit { target_addr } => {
                    s.extend_from_slice(b"NS who-has ");
                    push_ipv6(s, target_addr);
                    s.extend_from_slice(b" from ");
                    push_ipv6(s, p.src_addr);
                    s.extend_from_slice(b" to ");
                    push_ipv6(s, p.dst_addr);
                }
                NdMessage::NeighborAdvert { flags, target_addr } => {
                    s.extend_from_slice(b"NA ");
                    push_ipv6(s, target_addr);
                    s.extend_from_slice(b" [");
                    for (on, c) in [
                        (flags.contains(NaFlags::ROUTER), b'R'),
                        (flags.contains(NaFlags::SOLICITED), b'S'),
                        (flags.contains(NaFlags::OVERRIDE), b'O'),
                    ] {
                        if on {
                            s.push(c);
                        }
                    }
                    s.extend_from_slice(b"] to ");
                    push_ipv6(s, p.dst_addr);
                }
                NdMessage::Redirect {
                    target_addr,
                    dest_addr,
                } => {
                    s.extend_from_slice(b"Redirect ");
                    push_ipv6(s, dest_addr);
                    s.extend_from_slice(b" via ");
                    push_ipv6(s, target_addr);
                    s.extend_from_slice(b" from ");
                    push_ipv6(s, p.src_addr);
                }
            }
            if let Some(mac) = p.slla {
                s.extend_from_slice(b" slla ");
                push_mac(s, mac);
            }
            if let Some(mac) = p.tlla {
                s.extend_from_slice(b" tlla ");
                push_mac(s, mac);
            }
        }
    }
}
