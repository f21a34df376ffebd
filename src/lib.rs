//! ndprelay: a userspace IPv6 NDP relay (RFC 4389 bridge-like ND proxy).
//!
//! The crate is layered so that one engine serves three drivers:
//!
//! - [`wire`] parses, validates and builds Ethernet/IPv6/ICMPv6 Neighbor Discovery
//!   frames (RFC 4861), naming a [`DropReason`] for every frame it rejects.
//! - [`engine`] is the relay itself: a sans-IO state machine fed with frames, link
//!   events and the current [`time::Instant`], whose results are drained as
//!   [`engine::Action`]s. It never reads a clock, opens a socket or spawns a thread.
//! - [`config`] reads the RON configuration shared by the daemon, the simulator and
//!   replay; [`cli`] is the command line.
//! - Drivers, each a thin loop around the engine: [`sim`] (a virtual-time lab of
//!   simulated hosts and segments), [`replay`] (pcap/pcapng captures in, decisions and
//!   emitted frames out) and `live` (AF_PACKET capture threads, netlink, routes).
//!   [`pcapng`] is the capture format they share; [`rng`] the seeded generator they share.
//! - [`explain`] words what the relay knows about one address, for `ndprelay explain`
//!   (live) and `replay --explain` alike.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod engine;
pub mod explain;
pub mod live;
pub mod logging;
pub mod manual;
pub mod pcapng;
pub mod reason;
pub mod replay;
pub mod rng;
pub mod sim;
pub mod time;
pub mod wire;

pub use reason::DropReason;
