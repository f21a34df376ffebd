//! Each port's I/O, owned in one place: its capture socket, the one thread that reads
//! it, and the handle every other thread transmits through. No socket is read by two
//! threads; sending on a port's socket needs no reader's co-operation.
//!
//! A port's thread hands what it reads to a [`FrameSink`] (the relay, see `relay.rs`),
//! one read's batch at a time, and nothing else: this module knows nothing of the
//! engine.

mod capture;
#[cfg(feature = "libpcap")]
pub(super) mod pcap;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use super::counters::{DriverCounters, TX_LOG};
use super::sys::{PacketSocket, SockFilter};

/// Largest frame read from a capture socket (jumbo frames are not ND we relay).
pub(super) const MAX_FRAME: usize = 9216 + 18;
/// Frames a capture thread reads in one `recvmmsg` and hands over as one batch: one
/// frame when idle (no added latency), fewer lock round trips under load.
pub(super) const RECV_BATCH: usize = 32;

/// A frame as a port's thread read it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Received<'a> {
    pub(super) frame: &'a [u8],
    /// The kernel's receive timestamp of the frame (`skb->tstamp`, nanoseconds of the
    /// real-time clock), 0 when the backend has none: what the in-kernel programs
    /// store in an entry they used, so the relay can ask whether they took this frame.
    pub(super) rx_ns: u64,
}

/// Where a port's thread delivers its frames.
pub(super) trait FrameSink: Send + Sync + 'static {
    /// The frames one read returned on port `port` from its socket of `generation`.
    fn frames(&self, port: usize, generation: u64, frames: &[Received<'_>]);
}

/// What a capture passes, for both backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CaptureFilter {
    /// Classic BPF for the AF_PACKET backend.
    pub(super) bpf: Vec<SockFilter>,
    /// The same in libpcap's language for the `libpcap` backend.
    #[cfg_attr(not(feature = "libpcap"), allow(dead_code))]
    pub(super) pcap: String,
    /// Whether frames carry the kernel's receive time: only the in-kernel programs'
    /// word needs it (libpcap always gives one).
    pub(super) timestamps: bool,
}

/// Sends frames on one port: any thread may, none of them reads.
#[derive(Debug, Clone)]
pub(super) struct Transmitter {
    sock: Arc<PacketSocket>,
    name: Arc<str>,
    counters: Arc<DriverCounters>,
}

impl Transmitter {
    /// Sends `frame`; a failure is counted and logged (rate-limited), never fatal.
    pub(super) fn send(&self, frame: &[u8]) {
        if let Err(e) = self.sock.send(frame) {
            DriverCounters::bump(&self.counters.tx_errors);
            TX_LOG.warn(format_args!("{}: send failed: {e}", self.name));
        }
    }
}

/// A port's open socket and the thread reading it; dropping it stops the thread and
/// closes the socket (which also leaves all-multicast).
pub(super) struct PortIo {
    /// The port index the thread delivers its frames under.
    pub(super) port: usize,
    pub(super) generation: u64,
    tx: Transmitter,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PortIo {
    /// Opens port `port` (`name`, `ifindex`) with `filter` and starts its thread,
    /// delivering to `sink` under `generation`.
    pub(super) fn open(
        name: &str,
        ifindex: i32,
        port: usize,
        generation: u64,
        filter: &CaptureFilter,
        sink: Arc<dyn FrameSink>,
        counters: Arc<DriverCounters>,
    ) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let reader = capture::Reader {
            name: name.into(),
            port,
            generation,
            stop: Arc::clone(&stop),
            sink,
            counters: Arc::clone(&counters),
        };
        let (sock, thread) = capture::start(reader, ifindex, filter)?;
        Ok(Self {
            port,
            generation,
            tx: Transmitter {
                sock,
                name: name.into(),
                counters,
            },
            stop,
            thread: Some(thread),
        })
    }

    /// The handle other threads transmit on this port through.
    pub(super) fn transmitter(&self) -> Transmitter {
        self.tx.clone()
    }
}

impl Drop for PortIo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One configured port as the daemon knows it: the facts from netlink and its I/O
/// while the device exists.
pub(super) struct Port {
    pub(super) name: String,
    pub(super) role: crate::engine::Role,
    pub(super) ifindex: Option<i32>,
    pub(super) mac: crate::wire::Mac,
    pub(super) mtu: u32,
    pub(super) link_local: std::net::Ipv6Addr,
    pub(super) running: bool,
    /// No link layer (tun, WireGuard, PPP): no capture, no RAs, no routes of ours;
    /// served from the routing table (`route_feed.rs`).
    pub(super) routed: bool,
    pub(super) io: Option<PortIo>,
}
