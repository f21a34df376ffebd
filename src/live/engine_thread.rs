//! The engine thread: it owns the daemon and with it the engine. It takes the capture
//! threads' frames from one bounded channel and link events, signals and status requests
//! from another, runs the engine's timers, and transmits.
//!
//! After sending it reads the ports it sent on itself, without waiting: a frame relayed
//! onto a veth or bridge is handled by the receiving kernel inside our send, so a
//! guest's answer is usually queued by the time the send returns. Taking it here saves
//! waking that port's capture thread and the hand-over back over the channel; the
//! port's thread is kept asleep meanwhile ([`PacketSocket::hold_wakeups`]). What is left
//! is one hand-over per relayed NS, the engine thread's wake-up: on the 2 vCPU test VM
//! it moved the userspace relay's median from 0.18 to 0.28 ms (BENCHMARKS.md, session
//! 8), which is why the in-kernel programs are used by default where they can be.
//!
//! Answers and relays go out first; a batch's floods (an NS for an unknown target to
//! every port) only after its answers were read, so a scan does not delay a known guest
//! (RFC 6583 §7).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::Receiver;

use super::capture::{Frames, MAX_FRAME, PORT_SHARE, RECV_BATCH, TX_LOG, relayable};
use super::daemon::{Control, Daemon, DriverCounters};
use super::sys::{PacketSocket, RecvBatch};

/// Frame batches the capture threads may queue for the engine thread, up to
/// [`RECV_BATCH`] frames each: every port's share ([`PORT_SHARE`]), so that a port
/// waits only for its own batches (see `capture.rs`); beyond that they wait and their
/// sockets queue.
pub(super) const FRAME_QUEUE: usize = PORT_SHARE * crate::engine::MAX_PORTS;
/// Whether the engine thread reads the ports it sent on: with libpcap the ports' own
/// threads read through libpcap's buffers, which the AF_PACKET socket does not see.
const READS_ANSWERS: bool = cfg!(not(feature = "libpcap"));
/// Most frames one send may put on a port whose thread it keeps asleep meanwhile. With
/// more, an answer to the first would wait for the sends of the rest, while the port's
/// own thread could hand it over in parallel (under load it is awake anyway).
const HOLD_AT_MOST: usize = 4;
/// Rounds of "read the ports sent on, send what that asks for" after one batch: a relay
/// loop must not keep the engine thread from its channels.
const ANSWER_ROUNDS: usize = 4;

/// Runs until the daemon is told to stop (a signal, or the control channel closing).
pub(super) fn run(
    d: &mut Daemon,
    frames: &Receiver<Frames>,
    control: &Receiver<Control>,
    config_path: &Path,
) {
    let mut scratch = RecvBatch::new(RECV_BATCH, MAX_FRAME);
    loop {
        d.housekeeping();
        flush(d, &mut scratch);
        if d.stopping() {
            return;
        }
        let wait = d.plan_wait();
        crossbeam_channel::select! {
            recv(frames) -> batch => {
                // The daemon keeps a sender for future captures: this never disconnects.
                if let Ok(b) = batch {
                    for f in &b.frames {
                        d.receive(b.port, b.generation, f);
                    }
                    flush(d, &mut scratch);
                }
            }
            recv(control) -> message => match message {
                Ok(c) => d.handle_control(c, config_path),
                Err(_) => d.stop(),
            },
            default(wait) => {}
        }
    }
}

/// Sends what the engine asked for and reads the answers; floods last.
fn flush(d: &mut Daemon, scratch: &mut RecvBatch) {
    let (sent, floods) = send_all_but_floods(d);
    take_answers(d, sent, scratch);
    let sent = floods.send_holding(false);
    take_answers(d, sent, scratch);
}

/// Sends the frames the engine queued before its floods, holding the ports' threads;
/// returns the ports sent on and the floods, still to send.
fn send_all_but_floods(d: &mut Daemon) -> (Vec<SentOn>, Outbox) {
    let urgent = d.queued_frames();
    d.drain();
    let mut outbox = d.take_outbox();
    let floods = outbox.split_off(urgent);
    (outbox.send_holding(true), floods)
}

/// Reads the ports just sent on and hands what is queued there to the engine, sending
/// what that asks for in turn.
fn take_answers(d: &mut Daemon, mut sent: Vec<SentOn>, scratch: &mut RecvBatch) {
    if !READS_ANSWERS {
        return;
    }
    for _ in 0..ANSWER_ROUNDS {
        let mut next = Vec::new();
        for s in sent {
            if matches!(s.sock.recv_batch_now(scratch), Ok(n) if n > 0) {
                for f in relayable(scratch) {
                    d.receive(s.port, s.generation, f);
                }
                let (answers, floods) = send_all_but_floods(d);
                next.extend(answers);
                next.extend(floods.send_holding(false));
            }
        }
        if next.is_empty() {
            break;
        }
        sent = next;
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

/// A port the engine thread just sent on. If `held`, the port's own thread is kept
/// from waking for what arrives until the engine thread has read it: dropping this
/// lets it wake again.
struct SentOn {
    sock: Arc<PacketSocket>,
    port: usize,
    generation: u64,
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

/// Frames the engine asked to send, in order.
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

    /// Sends everything in order and returns the ports sent on, each once. With
    /// `hold`, before the first of at most [`HOLD_AT_MOST`] frames to a port, that
    /// port's thread stops being woken by frames: the answer is queued inside our send,
    /// and waking it would cost an inter-processor interrupt there, for a frame this
    /// thread takes anyway. Floods are sent without: they make every guest of a segment
    /// handle them inside the send (hundreds of µs for guests with many addresses), and
    /// a known guest's answer arriving meanwhile must not wait for that.
    fn send_holding(self, hold: bool) -> Vec<SentOn> {
        let mut sent: Vec<SentOn> = Vec::new();
        for o in &self.frames {
            if !sent.iter().any(|p| Arc::ptr_eq(&p.sock, &o.sock)) {
                let few = || {
                    let to_port = self.frames.iter().filter(|f| Arc::ptr_eq(&f.sock, &o.sock));
                    to_port.count() <= HOLD_AT_MOST
                };
                let held = READS_ANSWERS
                    && hold
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
                    port: o.port,
                    generation: o.generation,
                    held,
                });
            }
            if let Err(e) = o.sock.send(&o.frame) {
                self.counters.tx_errors.fetch_add(1, Ordering::Relaxed);
                TX_LOG.warn(format_args!("{}: send failed: {e}", o.name));
            }
        }
        sent
    }
}
