//! Capture threads: one per port, each waiting on its AF_PACKET socket (or reading
//! through libpcap) and handing what it reads, one batch per read, to the engine thread
//! over a bounded channel ([`Inbox`]). Each port may have at most [`PORT_SHARE`] batches
//! on the channel at a time, and the channel has room for every port's share: a port's
//! flood waits for its own batches to be handled, never for room taken by another
//! port, so another port's batch is handled after at most [`PORT_SHARE`] batches of
//! each other port. A waiting thread leaves the rest in its socket's receive queue;
//! what the kernel then drops is counted (`live_rx_kernel_drops`). The engine thread also reads a port itself right after it
//! sent there (see `engine_thread.rs`); meanwhile the port's own thread is kept asleep
//! ([`PacketSocket::hold_wakeups`]), and each frame is read once either way.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender};
use parking_lot::Mutex;

#[cfg(feature = "libpcap")]
use super::bpf;
use super::daemon::DriverCounters;
use super::sys::{PacketSocket, RecvBatch, SockFilter, pkttype};

/// Frames a capture thread reads in one `recvmmsg` and hands over as one message: one
/// frame when idle (no added latency), fewer hand-overs under load.
pub(super) const RECV_BATCH: usize = 32;
/// How long a capture thread waits for room on the engine thread's channel before it
/// looks at its stop flag again.
const SEND_RETRY: StdDuration = StdDuration::from_millis(20);
/// Largest frame read from a capture socket (jumbo frames are not ND we relay).
pub(super) const MAX_FRAME: usize = 9216 + 18;
/// How long a capture thread waits for a frame before it looks at its stop flag again.
const WAIT: StdDuration = StdDuration::from_millis(250);

/// Batches of one port that may wait on the engine thread's channel at once: enough to
/// keep the engine thread busy while the capture thread reads the next batch, few
/// enough that another port's batch waits for at most this many of each port.
pub(super) const PORT_SHARE: usize = 4;

/// The frames one read returned on a port, as the engine thread gets them.
pub(super) struct Frames {
    pub(super) port: usize,
    /// Which capture socket of the port read them: frames of a socket closed since
    /// (port deleted, moved by a reload) are not relayed.
    pub(super) generation: u64,
    pub(super) frames: Vec<Vec<u8>>,
    /// The port's share this batch takes, given back when it is dropped: when the
    /// engine thread is done with it.
    _share: Share,
}

/// One of a port's [`PORT_SHARE`] places on the channel (a token taken from the port's
/// bounded token channel, which works as a semaphore).
struct Share(Receiver<()>);

impl Drop for Share {
    fn drop(&mut self) {
        let _ = self.0.try_recv();
    }
}

/// How a capture thread reaches the engine thread: the sending end of its bounded
/// frame channel, with the port and socket generation the frames come from, and the
/// port's share of that channel.
pub(super) struct Inbox {
    tx: Sender<Frames>,
    port: usize,
    generation: u64,
    /// Holds one token per batch of this port on the channel.
    shares: (Sender<()>, Receiver<()>),
}

impl Inbox {
    pub(super) fn new(tx: Sender<Frames>, port: usize, generation: u64) -> Self {
        Self {
            tx,
            port,
            generation,
            shares: crossbeam_channel::bounded(PORT_SHARE),
        }
    }

    /// Copies `frames` onto the engine thread's channel, waiting while the port has
    /// [`PORT_SHARE`] batches there (or the channel is full). `false` once `stop` is
    /// set or the engine thread is gone.
    pub(super) fn deliver<'a>(
        &self,
        stop: &AtomicBool,
        frames: impl IntoIterator<Item = &'a [u8]>,
    ) -> bool {
        let frames: Vec<Vec<u8>> = frames.into_iter().map(<[u8]>::to_vec).collect();
        if frames.is_empty() {
            return true;
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            match self.shares.0.send_timeout((), SEND_RETRY) {
                Ok(()) => break,
                Err(SendTimeoutError::Timeout(())) => {}
                // Unreachable: this Inbox holds the receiving end too.
                Err(SendTimeoutError::Disconnected(())) => return false,
            }
        }
        let mut message = Frames {
            port: self.port,
            generation: self.generation,
            frames,
            _share: Share(self.shares.1.clone()),
        };
        loop {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            match self.tx.send_timeout(message, SEND_RETRY) {
                Ok(()) => return true,
                Err(SendTimeoutError::Timeout(m)) => message = m,
                Err(SendTimeoutError::Disconnected(_)) => return false,
            }
        }
    }
}

/// What a capture passes, for both backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CaptureFilter {
    /// Classic BPF for the AF_PACKET backend.
    pub(super) bpf: Vec<SockFilter>,
    /// The same in libpcap's language for the `libpcap` backend.
    #[cfg_attr(not(feature = "libpcap"), allow(dead_code))]
    pub(super) pcap: String,
}

/// Logs the first occurrence of a per-packet problem and then at most one line per
/// interval with how many more happened (the counter has the exact total).
#[derive(Debug)]
pub(super) struct RateLimitedLog {
    last: Mutex<Option<(StdInstant, u64)>>,
}

impl RateLimitedLog {
    const INTERVAL: StdDuration = StdDuration::from_secs(10);

    const fn new() -> Self {
        Self {
            last: Mutex::new(None),
        }
    }

    pub(super) fn warn(&self, msg: std::fmt::Arguments<'_>) {
        let mut last = self.last.lock();
        match &mut *last {
            None => {
                log::warn!("{msg}");
                *last = Some((StdInstant::now(), 0));
            }
            Some((at, suppressed)) if at.elapsed() >= Self::INTERVAL => {
                log::warn!(
                    "{msg} (and {suppressed} more like it in the last {}s)",
                    at.elapsed().as_secs()
                );
                *at = StdInstant::now();
                *suppressed = 0;
            }
            Some((_, suppressed)) => *suppressed += 1,
        }
    }
}

pub(super) static RX_LOG: RateLimitedLog = RateLimitedLog::new();
pub(super) static TX_LOG: RateLimitedLog = RateLimitedLog::new();

/// A running capture thread and the socket it reads (also used to transmit).
pub(super) struct Capture {
    pub(super) port: usize,
    name: Arc<str>,
    pub(super) sock: Arc<PacketSocket>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    /// The socket that transmits on this port, and the port's name for errors.
    pub(super) fn sender(&self) -> (Arc<PacketSocket>, Arc<str>) {
        (Arc::clone(&self.sock), Arc::clone(&self.name))
    }

    pub(super) fn start(
        name: &str,
        ifindex: i32,
        filter: &CaptureFilter,
        inbox: Inbox,
        counters: Arc<DriverCounters>,
    ) -> io::Result<Self> {
        let port = inbox.port;
        let stop = Arc::new(AtomicBool::new(false));
        let st = Arc::clone(&stop);
        let n = name.to_owned();
        #[cfg(not(feature = "libpcap"))]
        let (sock, thread) = {
            let (sock, info) = PacketSocket::open(ifindex, &filter.bpf)?;
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
                    // The socket is open: reading it needs no capability.
                    super::privileges::drop_all_on_this_thread();
                    capture_loop(&n, &s, &st, &inbox, &counters);
                })?;
            (sock, thread)
        };
        #[cfg(feature = "libpcap")]
        let (sock, thread) = {
            // libpcap reads; this socket holds all-multicast and transmits.
            let (sock, _) = PacketSocket::open(ifindex, &bpf::drop_all())?;
            let cap = super::pcap_capture::open(name, &filter.pcap)?;
            log::debug!("{name}: libpcap capture on ifindex {ifindex}");
            let thread = std::thread::Builder::new()
                .name(format!("capture-{name}"))
                .spawn(move || {
                    super::privileges::drop_all_on_this_thread();
                    super::pcap_capture::run(cap, &n, &st, &inbox, &counters);
                })?;
            (Arc::new(sock), thread)
        };
        Ok(Self {
            port,
            name: name.into(),
            sock,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg_attr(feature = "libpcap", allow(dead_code))]
fn capture_loop(
    name: &str,
    sock: &PacketSocket,
    stop: &AtomicBool,
    inbox: &Inbox,
    counters: &DriverCounters,
) {
    // The wait's timeout is how often `stop` is looked at.
    if let Err(e) = sock.set_receive_timeout(WAIT) {
        log::warn!("{name}: cannot set the capture timeout ({e}); stopping may be slow");
    }
    let wait_ms = i32::try_from(WAIT.as_millis()).unwrap_or(i32::MAX);
    let mut batch = RecvBatch::new(RECV_BATCH, MAX_FRAME);
    let mut down_logged = false;
    // A port's thread waits where other threads' holds work (epoll) when the last thing
    // that happened to the port was such a hold, and otherwise in one blocking
    // `recvmmsg`, a system call less per wake-up (4-6 µs on the fast path's answer on a
    // VM): guests' ports are held for every NS relayed to them, an uplink mostly wakes
    // its own thread with the router's NS.
    let mut holds_seen = sock.holds_taken();
    let mut holdable = false;
    while !stop.load(Ordering::Relaxed) {
        let holds = sock.holds_taken();
        if holds != holds_seen {
            holds_seen = holds;
            holdable = true;
        }
        let received = if holdable {
            sock.wait_readable(wait_ms)
                .and_then(|_| sock.recv_batch_now(&mut batch))
        } else {
            sock.recv_batch(&mut batch)
        };
        match received {
            Ok(n) => {
                down_logged = false;
                holdable = false;
                if !inbox.deliver(stop, relayable(&batch)) {
                    return;
                }
                // A full batch means the relay is behind: see whether the kernel dropped some.
                if n == batch.capacity() {
                    count_kernel_drops(sock, counters);
                }
            }
            // Nothing came, or another thread took it (see `hold_wakeups`).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                count_kernel_drops(sock, counters);
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
                counters.rx_errors.fetch_add(1, Ordering::Relaxed);
                RX_LOG.warn(format_args!("{name}: receive failed: {e}"));
                std::thread::sleep(StdDuration::from_millis(100));
            }
        }
    }
}

/// The frames of a batch that are ours to relay: frames the host sends are not (see
/// bpf.rs; this matters on kernels without PACKET_IGNORE_OUTGOING only).
pub(super) fn relayable(batch: &RecvBatch) -> impl Iterator<Item = &[u8]> {
    batch
        .frames()
        .filter(|&(_, pt)| pt != pkttype::OUTGOING && pt != pkttype::OTHERHOST)
        .map(|(f, _)| f)
}

/// Adds what the kernel dropped for a full receive queue since the last look.
fn count_kernel_drops(sock: &PacketSocket, counters: &DriverCounters) {
    if let Ok(n) = sock.kernel_drops() {
        if n > 0 {
            counters
                .rx_kernel_drops
                .fetch_add(u64::from(n), Ordering::Relaxed);
            RX_LOG.warn(format_args!(
                "{} frames dropped by the kernel: the relay did not keep up (counter live_rx_kernel_drops)",
                n
            ));
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_batch_reaches_the_engine_thread_with_its_port_and_socket_generation() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let inbox = Inbox::new(tx, 3, 7);
        let stop = AtomicBool::new(false);
        assert!(inbox.deliver(&stop, [&b"one"[..], &b"two"[..]]));
        let got = rx.try_recv().unwrap();
        assert_eq!((got.port, got.generation), (3, 7));
        assert_eq!(got.frames, vec![b"one".to_vec(), b"two".to_vec()]);
        // A read whose frames were all the host's own sends is not handed over.
        assert!(inbox.deliver(&stop, std::iter::empty()));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_full_channel_makes_the_capture_thread_wait_and_lose_nothing() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let stop = Arc::new(AtomicBool::new(false));
        let st = Arc::clone(&stop);
        let capture = std::thread::spawn(move || {
            let inbox = Inbox::new(tx, 0, 1);
            (0u8..5).all(|i| inbox.deliver(&st, [&[i][..]]))
        });
        // Read slower than the sender sends: it has to wait for room each time.
        let mut got = Vec::new();
        for _ in 0..5 {
            std::thread::sleep(StdDuration::from_millis(30));
            got.push(rx.recv_timeout(StdDuration::from_secs(2)).unwrap().frames);
        }
        assert!(capture.join().unwrap());
        let expected: Vec<Vec<Vec<u8>>> = (0u8..5).map(|i| vec![vec![i]]).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_flooding_port_cannot_keep_another_ports_batch_waiting_beyond_its_share() {
        let (tx, rx) = crossbeam_channel::bounded(super::super::engine_thread::FRAME_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let (st, flood_tx) = (Arc::clone(&stop), tx.clone());
        let flood = std::thread::spawn(move || {
            let inbox = Inbox::new(flood_tx, 0, 1);
            while inbox.deliver(&st, [&b"flood"[..]]) {}
        });
        // Until the flood waits: the channel holds all it may.
        let start = StdInstant::now();
        while rx.len() < PORT_SHARE && start.elapsed() < StdDuration::from_secs(5) {
            std::thread::sleep(StdDuration::from_millis(5));
        }
        std::thread::sleep(StdDuration::from_millis(50));
        assert_eq!(rx.len(), PORT_SHARE, "the flood holds exactly its share");
        // Another port's batch goes on at once, behind at most the flood's share, and
        // the engine thread handles it within that many batches while the flood goes on
        // refilling its share as each of its batches is handled.
        let quiet = Inbox::new(tx, 1, 1);
        let at = StdInstant::now();
        assert!(quiet.deliver(&AtomicBool::new(false), [&b"quiet"[..]]));
        assert!(at.elapsed() < SEND_RETRY, "the quiet port waited for room");
        for round in 0..10 * PORT_SHARE {
            let batch = rx.recv_timeout(StdDuration::from_secs(2)).unwrap();
            if batch.port == 1 {
                assert!(round <= PORT_SHARE, "handled after {round} flood batches");
                stop.store(true, Ordering::Relaxed);
                drop(rx);
                flood.join().unwrap();
                return;
            }
            // Handled: its share goes back to the flood, which sends another.
            drop(batch);
        }
        panic!("the quiet port's batch was never handled");
    }

    #[test]
    fn a_capture_thread_waiting_for_room_stops_when_told_and_when_the_engine_thread_is_gone() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let stop = Arc::new(AtomicBool::new(false));
        let inbox = Inbox::new(tx.clone(), 0, 1);
        assert!(inbox.deliver(&stop, [&b"fills it"[..]]));
        let st = Arc::clone(&stop);
        let waiting = std::thread::spawn(move || {
            let started = StdInstant::now();
            let delivered = inbox.deliver(&st, [&b"no room"[..]]);
            (delivered, started.elapsed())
        });
        std::thread::sleep(StdDuration::from_millis(100));
        stop.store(true, Ordering::Relaxed);
        let (delivered, waited) = waiting.join().unwrap();
        assert!(!delivered);
        assert!(
            waited < StdDuration::from_millis(100) + SEND_RETRY * 5,
            "{waited:?}"
        );
        assert_eq!(rx.len(), 1);

        drop(rx);
        let inbox = Inbox::new(tx, 0, 1);
        assert!(!inbox.deliver(&AtomicBool::new(false), [&b"nobody reads"[..]]));
    }
}
