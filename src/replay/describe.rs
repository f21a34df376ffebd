//! One-line, human-readable decode of a frame, as in a timeline or a replay listing.

use std::fmt::Write as _;

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
    // Writing into a String cannot fail.
    let _ = write_description(s, len, parsed);
}

fn write_description(
    s: &mut String,
    len: usize,
    parsed: &Result<Parsed<'_>, DropReason>,
) -> std::fmt::Result {
    match parsed {
        Err(reason) => write!(s, "invalid ({reason}), {len} bytes"),
        Ok(Parsed::NotIpv6) => write!(s, "not IPv6, {len} bytes"),
        Ok(Parsed::Data(d)) => write!(
            s,
            "IPv6 {} > {} hlim {}, {} bytes",
            d.src_addr,
            d.dst_addr,
            d.hop_limit,
            d.packet.len()
        ),
        Ok(Parsed::Nd(p)) => {
            match p.message {
                NdMessage::RouterSolicit => write!(s, "RS from {}", p.src_addr)?,
                NdMessage::RouterAdvert(ra) => {
                    write!(s, "RA from {} lifetime {}s", p.src_addr, ra.router_lifetime)?;
                    if ra.flags.proxy() {
                        s.push_str(" P");
                    }
                    for opt in p.options() {
                        if let NdOption::PrefixInfo(pi) = opt {
                            write!(s, " prefix {}/{}", pi.prefix, pi.prefix_len)?;
                        }
                    }
                }
                NdMessage::NeighborSolicit { target_addr } if p.src_addr.is_unspecified() => {
                    write!(s, "NS DAD for {target_addr}")?;
                }
                NdMessage::NeighborSolicit { target_addr } => {
                    write!(
                        s,
                        "NS who-has {target_addr} from {} to {}",
                        p.src_addr, p.dst_addr
                    )?;
                }
                NdMessage::NeighborAdvert { flags, target_addr } => {
                    write!(s, "NA {target_addr} [")?;
                    for (on, c) in [
                        (flags.router, 'R'),
                        (flags.solicited, 'S'),
                        (flags.override_, 'O'),
                    ] {
                        if on {
                            s.push(c);
                        }
                    }
                    write!(s, "] to {}", p.dst_addr)?;
                }
                NdMessage::Redirect {
                    target_addr,
                    dest_addr,
                } => {
                    write!(s, "Redirect {dest_addr} via {target_addr} from {}", p.src_addr)?;
                }
            }
            if let Some(mac) = p.slla {
                write!(s, " slla {mac}")?;
            }
            if let Some(mac) = p.tlla {
                write!(s, " tlla {mac}")?;
            }
            Ok(())
        }
    }
}
