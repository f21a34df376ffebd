//! Capture threads: one per port, each waiting on its AF_PACKET socket (or reading
//! through libpcap) and running the engine on what it reads itself, under the daemon
//! lock. Handing frames to another thread cost a second wake-up per direction, 60–70 µs
//! each on a 2 vCPU VM, which doubled NS→NA latency. Frames the engine sends go out
//! after the lock is released: answers and relays first, then the sender reads the
//! ports it sent on (the answer often already waits there), then the batch's floods,
//! after which it reads the ports those went out on the same way. While it does, those
//! ports' own threads are kept asleep ([`PacketSocket::hold_wakeups`]).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use parking_lot::Mutex;

#[cfg(feature = "libpcap")]
use super::bpf;
use super::daemon::{Daemon, DriverCounters};
use super::sys::{PacketSocket, RecvBatch, SockFilter, pkttype};

/// Frames a capture thread reads in one `recvmmsg` and hands to the engine under one
/// lock: one frame when idle (no added latency), fewer lock hand-overs under load.
const RECV_BATCH: usize = 32;
/// How long a capture thread waits for the lock before it looks at its stop flag again.
const LOCK_RETRY: StdDuration = StdDuration::from_millis(20);
/// Largest frame read from a capture socket (jumbo frames are not ND we relay).
const MAX_FRAME: usize = 9216 + 18;
/// How long a capture thread waits for a frame before it looks at its stop flag again.
const WAIT: StdDuration = StdDuration::from_millis(250);
/// Whether a sender reads the ports it sent on: with libpcap the ports' own threads
/// read through libpcap's buffers, which the AF_PACKET socket does not see.
const SENDER_READS_ANSWERS: bool = cfg!(not(feature = "libpcap"));
/// Most frames one send may put on a port whose thread it keeps asleep meanwhile. With
/// more, an answer to the first would wait for the sends of the rest, while the port's
/// own thread could relay it in parallel (under load it is awake anyway).
const HOLD_AT_MOST: usize = 4;

/// How a capture thread reaches the engine: the daemon, locked for each batch of frames
/// one `recvmmsg` returned, and not across reads (held while waiting for more, it would
/// keep the port that gets the relayed frame's answer waiting). Weak, because the
/// daemon owns the capture threads.
pub(super) struct Inbox {
    daemon: Weak<Mutex<Daemon>>,
    port: usize,
    generation: u64,
}

impl Inbox {
    /// The port whose frames this inbox takes.
    #[cfg_attr(not(feature = "libpcap"), allow(dead_code))]
    pub(super) fn port(&self) -> usize {
        self.port
    }

    pub(super) fn new(daemon: Weak<Mutex<Daemon>>, port: usize, generation: u64) -> Self {
        Self {
            daemon,
            port,
            generation,
        }
    }

    /// Runs the engine on `frames` under one lock and, after unlocking, sends what it
    /// asks for except the batch's floods (an NS for an unknown target to every port),
    /// which the caller sends after reading the answers: a scan's floods must not delay
    /// a known guest (RFC 6583 §7). `reader` is the port whose capture thread calls
    /// this. `None` once `stop` is set or the daemon is gone.
    pub(super) fn deliver<'a>(
        &self,
        stop: &AtomicBool,
        reader: usize,
        frames: impl IntoIterator<Item = &'a [u8]>,
    ) -> Option<Delivered> {
        let daemon = self.daemon.upgrade()?;
        loop {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            if let Some(mut d) = daemon.try_lock_for(LOCK_RETRY) {
                for frame in frames {
                    d.receive(self.port, self.generation, frame);
                }
                let urgent = d.queued_frames();
                d.drain();
                d.wake_engine_thread_if_due();
                let mut outbox = d.take_outbox();
                drop(d);
                let floods = outbox.split_off(urgent);
                let answers = outbox.send_holding(&self.daemon, Some(reader));
                return Some(Delivered {
                    daemon: self.daemon.clone(),
                    answers,
                    floods,
                });
            }
        }
    }
}

/// A frame the engine asked to send.
struct Outgoing {
    sock: Arc<PacketSocket>,
    name: Arc<str>,
    frame: Vec<u8>,
    port: usize,
    generation: u64,
}

/// What a capture thread has to do after [`Inbox::deliver`]: read the ports it sent
/// on ([`take_answers`]), then send the batch's floods and read their ports too.
pub(super) struct Delivered {
    daemon: Weak<Mutex<Daemon>>,
    answers: Vec<SentOn>,
    floods: Outbox,
}

impl Delivered {
    /// Sends the batch's floods; returns the ports they went out on, for
    /// [`take_answers`]: a guest resolved for the first time has usually answered by
    /// the time the flood's send returns. No port's thread is held for floods: a flood
    /// makes every guest of a segment handle it inside the send (hundreds of µs each
    /// for guests with many addresses), and a known guest's answer arriving meanwhile
    /// must not wait for them (RFC 6583 §7).
    pub(super) fn send_floods(self) -> Vec<SentOn> {
        self.floods.send_holding(&self.daemon, None)
    }
}

/// A port a capture thread just sent on, with the inbox its frames go to. If `held`,
/// the port's own thread is kept from waking for what arrives until the sender has
/// read it: dropping this lets it wake again.
pub(super) struct SentOn {
    sock: Arc<PacketSocket>,
    inbox: Inbox,
    held: bool,
}

impl Drop for SentOn {
    fn drop(&mut self) {
        if self.held {
            if let Err(e) = self.sock.release_wakeups() {
                TX_LOG.warn(format_args!("cannot re-arm a capture socket: {e}"));
            }
        }
    }
}

/// Frames to send once the daemon lock is released: a send runs the receiving side's
/// kernel path inline (on a veth, a guest's whole NS handling and its answer), and the
/// capture thread that reads that answer must not find the lock still taken.
#[derive(Default)]
pub(super) struct Outbox {
    frames: Vec<Outgoing>,
    counters: Arc<DriverCounters>,
}

impl Outbox {
    pub(super) fn push(
        &mut self,
        sock: Arc<PacketSocket>,
        name: Arc<str>,
        frame: Vec<u8>,
        port: usize,
        generation: u64,
    ) {
        self.frames.push(Outgoing {
            sock,
            name,
            frame,
            port,
            generation,
        });
    }

    pub(super) fn len(&self) -> usize {
        self.frames.len()
    }

    /// Everything queued, leaving this one empty.
    pub(super) fn take(&mut self, counters: &Arc<DriverCounters>) -> Self {
        Self {
            frames: std::mem::take(&mut self.frames),
            counters: Arc::clone(counters),
        }
    }

    /// The frames from `at` on, taken out.
    fn split_off(&mut self, at: usize) -> Self {
        Self {
            frames: self.frames.split_off(at.min(self.frames.len())),
            counters: Arc::clone(&self.counters),
        }
    }

    /// Sends everything (threads that do not read the ports afterwards).
    pub(super) fn send(self) {
        for o in self.frames {
            Self::send_one(&o, &self.counters);
        }
    }

    /// Sends like [`Outbox::send`] for a capture thread, which reads the ports it sends
    /// on afterwards. With `reader`, that thread's port: before the first of at most
    /// [`HOLD_AT_MOST`] frames to another port, that port's thread stops being woken by
    /// frames (the answer is queued inside our send, and waking it would cost an
    /// inter-processor interrupt there, for a frame this thread takes anyway). Returns
    /// the ports sent on, each once; a hold ends when its [`SentOn`] is dropped.
    pub(super) fn send_holding(
        self,
        daemon: &Weak<Mutex<Daemon>>,
        reader: Option<usize>,
    ) -> Vec<SentOn> {
        let mut sent: Vec<SentOn> = Vec::new();
        for o in &self.frames {
            if !sent.iter().any(|p| Arc::ptr_eq(&p.sock, &o.sock)) {
                let few = || {
                    let to_port = self.frames.iter().filter(|f| Arc::ptr_eq(&f.sock, &o.sock));
                    to_port.count() <= HOLD_AT_MOST
                };
                let held = SENDER_READS_ANSWERS
                    && reader.is_some_and(|r| r != o.port)
                    && few()
                    && match o.sock.hold_wakeups() {
                        Ok(()) => true,
                        Err(e) => {
                            TX_LOG.warn(format_args!("{}: cannot hold its reader: {e}", o.name));
                            false
                        }
                    };
                sent.push(SentOn {
                    sock: Arc::clone(&o.sock),
                    inbox: Inbox::new(daemon.clone(), o.port, o.generation),
                    held,
                });
            }
            Self::send_one(o, &self.counters);
        }
        sent
    }

    fn send_one(o: &Outgoing, counters: &DriverCounters) {
        if let Err(e) = o.sock.send(&o.frame) {
            counters.tx_errors.fetch_add(1, Ordering::Relaxed);
            TX_LOG.warn(format_args!("{}: send failed: {e}", o.name));
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
                .spawn(move || capture_loop(&n, &s, &st, &inbox, &counters))?;
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
                // Frames the host sends are not ours to relay (see bpf.rs); this matters
                // on kernels without PACKET_IGNORE_OUTGOING only.
                let Some(mut delivered) = inbox.deliver(stop, inbox.port, relayable(&batch)) else {
                    return;
                };
                let answers = std::mem::take(&mut delivered.answers);
                if !take_answers(inbox.port, answers, &mut batch, stop) {
                    return;
                }
                if !take_answers(inbox.port, delivered.send_floods(), &mut batch, stop) {
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
fn relayable(batch: &RecvBatch) -> impl Iterator<Item = &[u8]> {
    batch
        .frames()
        .filter(|&(_, pt)| pt != pkttype::OUTGOING && pt != pkttype::OTHERHOST)
        .map(|(f, _)| f)
}

/// After sending, reads the ports sent on without waiting: a frame relayed onto a veth
/// or bridge is handled by the receiving kernel inside our send, so its answer (a
/// guest's NA) is often queued already, and handling it here saves the wake-up of that
/// port's own capture thread (60–70 µs on a VM). That thread may take it instead; each
/// frame is read once either way. `false` once stopping.
fn take_answers(
    reader: usize,
    mut sent: Vec<SentOn>,
    batch: &mut RecvBatch,
    stop: &AtomicBool,
) -> bool {
    // Bounded: a relay loop must not keep one thread here.
    for _ in 0..4 {
        let mut next = Vec::new();
        for s in sent {
            if matches!(s.sock.recv_batch_now(batch), Ok(n) if n > 0) {
                match s.inbox.deliver(stop, reader, relayable(batch)) {
                    Some(mut more) => {
                        next.append(&mut more.answers);
                        next.extend(more.send_floods());
                    }
                    None => return false,
                }
            }
        }
        if next.is_empty() {
            break;
        }
        sent = next;
    }
    true
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
