//! A port's capture thread: it waits on the port's AF_PACKET socket (or reads through
//! libpcap) and hands each read to the sink. While the sink works the socket's receive
//! queue holds what arrives; what the kernel drops when it is full is counted
//! (`live_rx_kernel_drops`).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration as StdDuration;

#[cfg(feature = "libpcap")]
use super::super::bpf;
use super::super::counters::{DriverCounters, RX_LOG};
use super::super::sys::{PacketSocket, RecvBatch, pkttype};
use super::{CaptureFilter, FrameSink, MAX_FRAME, RECV_BATCH, Received};

/// How long a capture thread waits for a frame before it looks at its stop flag again.
const WAIT: StdDuration = StdDuration::from_millis(250);

/// What a port's thread needs besides its socket.
pub(super) struct Reader {
    pub(super) name: Arc<str>,
    pub(super) port: usize,
    pub(super) generation: u64,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) sink: Arc<dyn FrameSink>,
    pub(super) counters: Arc<DriverCounters>,
}

impl Reader {
    pub(super) fn deliver(&self, frames: &[Received<'_>]) {
        if !frames.is_empty() {
            self.sink.frames(self.port, self.generation, frames);
        }
    }
}

/// Opens the port's socket (which also transmits) and starts its reading thread.
pub(super) fn start(
    reader: Reader,
    ifindex: i32,
    filter: &CaptureFilter,
) -> io::Result<(Arc<PacketSocket>, JoinHandle<()>)> {
    let name = Arc::clone(&reader.name);
    #[cfg(not(feature = "libpcap"))]
    {
        let (sock, info) = PacketSocket::open_with(ifindex, &filter.bpf, filter.timestamps)?;
        log::debug!(
            "{name}: capture on ifindex {ifindex} (ignore-outgoing {}, drained {})",
            info.ignores_outgoing,
            info.drained
        );
        let sock = Arc::new(sock);
        let s = Arc::clone(&sock);
        let thread = std::thread::Builder::new()
            .name(format!("capture-{name}"))
            .spawn(move || {
                // The socket is open: reading it needs no capability; the in-kernel
                // programs' maps may (see privileges.rs).
                super::super::privileges::drop_all_but_map_access_on_this_thread();
                read_loop(&reader, &s);
            })?;
        Ok((sock, thread))
    }
    #[cfg(feature = "libpcap")]
    {
        // libpcap reads; this socket holds all-multicast and transmits.
        let (sock, _) = PacketSocket::open(ifindex, &bpf::drop_all())?;
        let cap = super::pcap::open(&name, &filter.pcap)?;
        log::debug!("{name}: libpcap capture on ifindex {ifindex}");
        let thread = std::thread::Builder::new()
            .name(format!("capture-{name}"))
            .spawn(move || {
                super::super::privileges::drop_all_but_map_access_on_this_thread();
                super::pcap::read_loop(cap, &reader);
            })?;
        Ok((Arc::new(sock), thread))
    }
}

#[cfg_attr(feature = "libpcap", allow(dead_code))]
fn read_loop(reader: &Reader, sock: &PacketSocket) {
    let name = &reader.name;
    // The wait's timeout is how often `stop` is looked at.
    if let Err(e) = sock.set_receive_timeout(WAIT) {
        log::warn!("{name}: cannot set the capture timeout ({e}); stopping may be slow");
    }
    let mut batch = RecvBatch::new(RECV_BATCH, MAX_FRAME);
    let mut down_logged = false;
    while !reader.stop.load(Ordering::Relaxed) {
        match sock.recv_batch(&mut batch) {
            Ok(n) => {
                down_logged = false;
                let frames: Vec<Received<'_>> = relayable(&batch).collect();
                reader.deliver(&frames);
                // A full batch means the relay is behind: see whether the kernel dropped some.
                if n == batch.capacity() {
                    count_kernel_drops(name, sock, &reader.counters);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                count_kernel_drops(name, sock, &reader.counters);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                // One read fails when the port goes down; the socket re-arms on up.
                if !down_logged {
                    log::debug!("{name}: capture socket reports ENETDOWN");
                    down_logged = true;
                }
                // Reads fail at once while the link is down: do not spin on them.
                std::thread::sleep(StdDuration::from_millis(50));
            }
            Err(e) => {
                DriverCounters::bump(&reader.counters.rx_errors);
                RX_LOG.warn(format_args!("{name}: receive failed: {e}"));
                std::thread::sleep(StdDuration::from_millis(100));
            }
        }
    }
}

/// The frames of a batch that are ours to relay: frames the host sends are not (see
/// bpf.rs; this matters on kernels without PACKET_IGNORE_OUTGOING only).
fn relayable(batch: &RecvBatch) -> impl Iterator<Item = Received<'_>> {
    batch
        .received()
        .filter(|r| r.pkttype != pkttype::OUTGOING && r.pkttype != pkttype::OTHERHOST)
        .map(|r| Received {
            frame: r.frame,
            rx_ns: r.rx_time_ns,
        })
}

/// Adds what the kernel dropped for a full receive queue since the last look.
fn count_kernel_drops(name: &str, sock: &PacketSocket, counters: &DriverCounters) {
    if let Ok(n) = sock.kernel_drops() {
        if n > 0 {
            counters
                .rx_kernel_drops
                .fetch_add(u64::from(n), Ordering::Relaxed);
            RX_LOG.warn(format_args!(
                "{name}: {n} frames dropped by the kernel: the relay did not keep up \
                 (counter live_rx_kernel_drops)"
            ));
        }
    }
}
