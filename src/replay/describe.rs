//! One-line, human-readable decode of a frame, as in a timeline or a replay listing.

use super::text::{push_ipv6, push_mac, push_u64};
use crate::DropReason;
use crate::wire::{NdMessage, NdOption, Parsed, parse_frame};

/// Describes `frame` in one line, e.g. `NS who-has 2001:db8::10 from fe80::1 slla 02:..`.
pub fn describe(frame: &[u8]) -> String {
    let mut s = String::new();
    describe_parsed(&mut s, frame.len(), &parse_frame(frame));
    s
}

/// Appends the description of a frame of `len` bytes that parsed as `parsed` to `s`
/// (replay parses each frame once for the description and the addresses).
pub(crate) fn describe_parsed(s: &mut String, len: usize, parsed: &Result<Parsed<'_>, DropReason>) {
    write_description(s, len, parsed);
}

fn write_description(s: &mut String, len: usize, parsed: &Result<Parsed<'_>, DropReason>) {
    let len = len as u64;
    match parsed {
        Err(reason) => {
            s.push_str("invalid (");
            s.push_str(reason.name());
            s.push_str("), ");
            push_u64(s, len);
            s.push_str(" bytes");
        }
        Ok(Parsed::NotIpv6) => {
            s.push_str("not IPv6, ");
            push_u64(s, len);
            s.push_str(" bytes");
        }
        Ok(Parsed::Data(d)) => {
            s.push_str("IPv6 ");
            push_ipv6(s, d.src_addr);
            s.push_str(" > ");
            push_ipv6(s, d.dst_addr);
            s.push_str(" hlim ");
            push_u64(s, u64::from(d.hop_limit));
            s.push_str(", ");
            push_u64(s, d.packet.len() as u64);
            s.push_str(" bytes");
        }
        Ok(Parsed::Nd(p)) => {
            match p.message {
                NdMessage::RouterSolicit => {
                    s.push_str("RS from ");
                    push_ipv6(s, p.src_addr);
                }
                NdMessage::RouterAdvert(ra) => {
                    s.push_str("RA from ");
                    push_ipv6(s, p.src_addr);
                    s.push_str(" lifetime ");
                    push_u64(s, u64::from(ra.router_lifetime));
                    s.push('s');
                    if ra.flags.proxy() {
                        s.push_str(" P");
                    }
                    for opt in p.options() {
                        if let NdOption::PrefixInfo(pi) = opt {
                            s.push_str(" prefix ");
                            push_ipv6(s, pi.prefix);
                            s.push('/');
                            push_u64(s, u64::from(pi.prefix_len));
                        }
                    }
                }
                NdMessage::NeighborSolicit { target_addr } if p.src_addr.is_unspecified() => {
                    s.push_str("NS DAD for ");
                    push_ipv6(s, target_addr);
                }
                NdMessage::NeighborSolicit { target_addr } => {
                    s.push_str("NS who-has ");
                    push_ipv6(s, target_addr);
                    s.push_str(" from ");
                    push_ipv6(s, p.src_addr);
                    s.push_str(" to ");
                    push_ipv6(s, p.dst_addr);
                }
                NdMessage::NeighborAdvert { flags, target_addr } => {
                    s.push_str("NA ");
                    push_ipv6(s, target_addr);
                    s.push_str(" [");
                    for (on, c) in [
                        (flags.router, 'R'),
                        (flags.solicited, 'S'),
                        (flags.override_, 'O'),
                    ] {
                        if on {
                            s.push(c);
                        }
                    }
                    s.push_str("] to ");
                    push_ipv6(s, p.dst_addr);
                }
                NdMessage::Redirect {
                    target_addr,
                    dest_addr,
                } => {
                    s.push_str("Redirect ");
                    push_ipv6(s, dest_addr);
                    s.push_str(" via ");
                    push_ipv6(s, target_addr);
                    s.push_str(" from ");
                    push_ipv6(s, p.src_addr);
                }
            }
            if let Some(mac) = p.slla {
                s.push_str(" slla ");
                push_mac(s, mac);
            }
            if let Some(mac) = p.tlla {
                s.push_str(" tlla ");
                push_mac(s, mac);
            }
        }
    }
}
