//! Segments: shared Ethernet links (hubs) that record what crossed them.
//!
//! A segment delivers every frame to every attached endpoint but the sender, after a
//! fixed latency; hosts filter by MAC and multicast group, the relay's ports take
//! everything (all-multicast). Each segment keeps per-kind statistics for expectations
//! and, when asked, a capture for pcapng and the diagram.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;

use super::host::echo_fields;
use super::scenario::FrameKind;
use crate::replay::describe;
use crate::time::Instant;
use crate::wire::{self, Mac, NdMessage, Parsed};

/// What the segment saw of one frame kind.
#[derive(Debug, Clone, Default)]
pub struct KindSeen {
    /// Frames.
    pub count: u64,
    /// Ethernet sources and link-layer option MACs.
    pub macs: BTreeSet<Mac>,
    /// IPv6 sources.
    pub srcs: BTreeSet<Ipv6Addr>,
}

/// One segment.
#[derive(Debug)]
pub struct Segment {
    /// Name from the scenario.
    pub name: String,
    /// Frames seen, all kinds.
    pub frames: u64,
    /// Per kind.
    pub seen: BTreeMap<FrameKind, KindSeen>,
    /// Every frame with its time, when captures are wanted.
    pub capture: Option<Vec<(Instant, Vec<u8>)>>,
}

impl Segment {
    /// An empty segment.
    pub fn new(name: &str, capture: bool) -> Self {
        Self {
            name: name.to_owned(),
            frames: 0,
            seen: BTreeMap::new(),
            capture: capture.then(Vec::new),
        }
    }

    /// Records a frame put on the segment at `now`.
    pub fn record(&mut self, now: Instant, frame: &[u8], info: &FrameInfo) {
        self.frames += 1;
        let seen = self.seen.entry(info.kind).or_default();
        seen.count += 1;
        seen.macs.extend(info.macs.iter().copied());
        seen.srcs.extend(info.src);
        if let Some(c) = &mut self.capture {
            c.push((now, frame.to_vec()));
        }
    }

    /// Frames of `kind` (all kinds if `None`).
    pub fn count(&self, kind: Option<FrameKind>) -> u64 {
        match kind {
            None => self.frames,
            Some(k) => self.seen.get(&k).map_or(0, |s| s.count),
        }
    }

    /// True if `mac` appeared as a source or in a link-layer option on this segment.
    pub fn saw_mac(&self, mac: Mac) -> Option<FrameKind> {
        self.seen
            .iter()
            .find(|(_, s)| s.macs.contains(&mac))
            .map(|(k, _)| *k)
    }
}

/// A frame classified for statistics and the timeline.
#[derive(Debug, Clone)]
pub struct FrameInfo {
    /// Kind.
    pub kind: FrameKind,
    /// Ethernet source, destination.
    pub eth_src: Mac,
    /// Ethernet destination.
    pub eth_dst: Mac,
    /// Ethernet source and link-layer option MACs.
    pub macs: Vec<Mac>,
    /// IPv6 source, if IPv6.
    pub src: Option<Ipv6Addr>,
    /// IPv6 destination, if IPv6.
    pub dst: Option<Ipv6Addr>,
    /// One-line description of the payload (without addresses).
    pub what: String,
    /// True for ND messages (the diagram draws these).
    pub is_nd: bool,
}

/// Classifies a frame with `crate::wire`; the text is `replay::describe`'s (echo aside).
pub fn classify(frame: &[u8]) -> FrameInfo {
    let mac_at = |o: usize| {
        frame
            .get(o..o + 6)
            .and_then(|b| <[u8; 6]>::try_from(b).ok())
            .map_or(Mac::default(), Mac)
    };
    let mut info = FrameInfo {
        kind: FrameKind::Invalid,
        eth_dst: mac_at(0),
        eth_src: mac_at(6),
        macs: vec![mac_at(6)],
        src: None,
        dst: None,
        what: String::new(),
        is_nd: false,
    };
    match wire::parse_frame(frame) {
        Ok(Parsed::NotIpv6) => {
            info.kind = FrameKind::NotIpv6;
            info.what = describe(frame);
        }
        Ok(Parsed::Data(d)) => {
            info.src = Some(d.src_addr);
            info.dst = Some(d.dst_addr);
            match echo_fields(d.packet) {
                Some((reply, id, seq, _)) => {
                    info.kind = if reply {
                        FrameKind::EchoReply
                    } else {
                        FrameKind::EchoRequest
                    };
                    info.what = format!(
                        "echo {} {} > {} id {id:#06x} seq {seq}",
                        if reply { "reply" } else { "request" },
                        d.src_addr,
                        d.dst_addr
                    );
                }
                None => {
                    info.kind = FrameKind::Data;
                    info.what = describe(frame);
                }
            }
        }
        Ok(Parsed::Nd(nd)) => {
            info.is_nd = true;
            info.src = Some(nd.src_addr);
            info.dst = Some(nd.dst_addr);
            info.macs.extend(nd.slla);
            info.macs.extend(nd.tlla);
            info.kind = match nd.message {
                NdMessage::RouterSolicit => FrameKind::RS,
                NdMessage::RouterAdvert(_) => FrameKind::RA,
                NdMessage::NeighborSolicit { .. } => FrameKind::NS,
                NdMessage::NeighborAdvert { .. } => FrameKind::NA,
                NdMessage::Redirect { .. } => FrameKind::Redirect,
            };
            info.what = describe(frame);
        }
        Err(_) => {
            info.kind = FrameKind::Invalid;
            info.what = describe(frame);
        }
    }
    info
}
