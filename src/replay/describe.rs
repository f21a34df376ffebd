//! One-line, human-readable decode of a frame, as in a timeline or a replay listing.

use std::fmt::Write as _;

use crate::wire::{NdMessage, NdOption, Parsed, parse_frame};

/// Describes `frame` in one line, e.g. `NS who-has 2001:db8::10 from fe80::1 slla 02:..`.
pub fn describe(frame: &[u8]) -> String {
    match parse_frame(frame) {
        Err(reason) => format!("invalid ({reason}), {} bytes", frame.len()),
        Ok(Parsed::NotIpv6) => format!("not IPv6, {} bytes", frame.len()),
        Ok(Parsed::Data(d)) => format!(
            "IPv6 {} > {} hlim {}, {} bytes",
            d.src_addr,
            d.dst_addr,
            d.hop_limit,
            d.packet.len()
        ),
        Ok(Parsed::Nd(p)) => {
            let mut s = match p.message {
                NdMessage::RouterSolicit => format!("RS from {}", p.src_addr),
                NdMessage::RouterAdvert(ra) => {
                    let mut s = format!("RA from {} lifetime {}s", p.src_addr, ra.router_lifetime);
                    if ra.flags.proxy() {
                        s.push_str(" P");
                    }
                    for opt in p.options() {
                        if let NdOption::PrefixInfo(pi) = opt {
                            let _ = write!(s, " prefix {}/{}", pi.prefix, pi.prefix_len);
                        }
                    }
                    s
                }
                NdMessage::NeighborSolicit { target_addr } if p.src_addr.is_unspecified() => {
                    format!("NS DAD for {target_addr}")
                }
                NdMessage::NeighborSolicit { target_addr } => {
                    format!(
                        "NS who-has {target_addr} from {} to {}",
                        p.src_addr, p.dst_addr
                    )
                }
                NdMessage::NeighborAdvert { flags, target_addr } => {
                    let f: String = [
                        (flags.router, 'R'),
                        (flags.solicited, 'S'),
                        (flags.override_, 'O'),
                    ]
                    .iter()
                    .filter_map(|(on, c)| on.then_some(*c))
                    .collect();
                    format!("NA {target_addr} [{f}] to {}", p.dst_addr)
                }
                NdMessage::Redirect {
                    target_addr,
                    dest_addr,
                } => {
                    format!("Redirect {dest_addr} via {target_addr} from {}", p.src_addr)
                }
            };
            if let Some(mac) = p.slla {
                let _ = write!(s, " slla {mac}");
            }
            if let Some(mac) = p.tlla {
                let _ = write!(s, " tlla {mac}");
            }
            s
        }
    }
}
