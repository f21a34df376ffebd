//! The engine and its executor behind one lock, driven from wherever work arrives: each
//! port's capture thread hands its frames in (this is its [`FrameSink`]) and the daemon
//! thread its timers, link events and reloads. Whoever holds the lock handles the work
//! and applies the actions; frames go out after the lock is released.
//!
//! Why a lock and not a channel to an engine thread: a relayed NS then costs one
//! wake-up (the ingress port's thread) instead of two (that thread, then the engine
//! thread), and the guest's answer wakes its own port's thread, which relays it at once
//! (BENCHMARKS.md, issue 15). Contention is short: the engine's work per frame is small
//! and no send, route change or log flush happens under the lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant as StdInstant;

use crossbeam_channel::Sender;
use parking_lot::{Mutex, MutexGuard};

use super::executor::{Executor, Outgoing};
use super::ports::{FrameSink, RECV_BATCH, Received};
use super::programs::KernelWitness;
use crate::engine::{Engine, KernelWord, PortId};
use crate::time::{Duration, Instant};

/// Monotonic clock at the edge: engine time is microseconds since start.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock(StdInstant);

impl Clock {
    pub(super) fn start() -> Self {
        Self(StdInstant::now())
    }

    pub(super) fn now(self) -> Instant {
        Instant::ZERO + Duration::from(self.0.elapsed())
    }
}

/// What the lock guards.
pub(super) struct RelayState {
    pub(super) engine: Engine,
    pub(super) exec: Executor,
}

/// The engine shared by the relay's threads.
pub(super) struct Relay {
    state: Mutex<RelayState>,
    /// Asks the in-kernel programs about frames without the engine's lock; replaced
    /// when the work of [`Relay::with`] changed it. Never locked while `state` is.
    witness: Mutex<Arc<KernelWitness>>,
    pub(super) clock: Clock,
    /// When the daemon thread wakes next for the engine's timers (engine time in µs).
    timers_at: AtomicU64,
    /// Wakes the daemon thread when a frame made a timer due sooner than that.
    wake: Sender<()>,
}

impl Relay {
    pub(super) fn new(engine: Engine, exec: Executor, clock: Clock, wake: Sender<()>) -> Self {
        let witness = Mutex::new(Arc::new(exec.witness()));
        Self {
            state: Mutex::new(RelayState { engine, exec }),
            witness,
            clock,
            timers_at: AtomicU64::new(0),
            wake,
        }
    }

    /// Runs `work` on the engine and executor under the lock with the time now, then
    /// sends the frames it queued. For the daemon thread, which owns the routes and
    /// applies the changes this asked for right after.
    pub(super) fn with<R>(&self, work: impl FnOnce(&mut RelayState, Instant) -> R) -> R {
        self.with_next_timer(false, work).0
    }

    /// [`Relay::with`], also returning when the engine's timers are due next after the
    /// work. With `sleeps_until_next` the caller is the daemon thread about to sleep until
    /// then: the deadline is recorded under the lock, so a frame handled right after
    /// compares against it and wakes the thread if it made a timer due sooner.
    fn with_next_timer<R>(
        &self,
        sleeps_until_next: bool,
        work: impl FnOnce(&mut RelayState, Instant) -> R,
    ) -> (R, Option<Instant>) {
        let mut out = Outgoing::default();
        let (r, witness, next) = {
            let mut s = self.state.lock();
            let now = self.clock.now();
            let r = work(&mut s, now);
            let RelayState { engine, exec } = &mut *s;
            exec.drain(engine, now, &mut out);
            let next = engine.poll_timeout();
            if sleeps_until_next {
                let at = next.map_or(u64::MAX, |t| {
                    t.saturating_since(Instant::ZERO).total_micros()
                });
                self.timers_at.store(at, Ordering::Relaxed);
            } else {
                self.wake_for_timers(engine);
            }
            (r, exec.witness(), next)
        };
        let mut current = self.witness.lock();
        if **current != witness {
            *current = Arc::new(witness);
        }
        drop(current);
        out.send(false);
        (r, next)
    }

    /// The lock itself, for reading (status snapshots).
    pub(super) fn lock(&self) -> MutexGuard<'_, RelayState> {
        self.state.lock()
    }

    /// Runs the engine's due timers; returns when they are due next.
    pub(super) fn run_timers(&self) -> Option<Instant> {
        let ((), next) = self.with_next_timer(true, |s, now| {
            if s.engine.poll_timeout().is_some_and(|t| t <= now) {
                s.engine.handle_timeout(now);
            }
        });
        next
    }

    /// Wakes the daemon thread if the engine's next deadline is now sooner than the
    /// one it sleeps until.
    fn wake_for_timers(&self, engine: &Engine) {
        let Some(t) = engine.poll_timeout() else {
            return;
        };
        let at = t.saturating_since(Instant::ZERO).total_micros();
        if at < self.timers_at.load(Ordering::Relaxed) {
            self.timers_at.store(at, Ordering::Relaxed);
            // A full channel already holds a wake-up.
            let _ = self.wake.try_send(());
        }
    }
}

impl FrameSink for Relay {
    fn frames(&self, port: usize, generation: u64, frames: &[Received<'_>]) {
        let witness = Arc::clone(&self.witness.lock());
        for frames in frames.chunks(RECV_BATCH) {
            // The programs are asked before the engine's lock is taken: a syscall per
            // frame, which a flood of frames shaped like theirs would otherwise make
            // every other port's thread wait for.
            let words: [KernelWord; RECV_BATCH] = std::array::from_fn(|i| {
                frames
                    .get(i)
                    .map_or(KernelWord::NOTHING, |f| witness.word(port, f))
            });
            let mut out = Outgoing::default();
            {
                let mut s = self.state.lock();
                let RelayState { engine, exec } = &mut *s;
                if !exec.current(port, generation) {
                    return;
                }
                let now = self.clock.now();
                // The engine bounds the port count far below u16::MAX.
                let id = PortId(u16::try_from(port).unwrap_or(u16::MAX));
                for (f, word) in frames.iter().zip(words) {
                    exec.dump(port, now, f.frame);
                    engine.handle_frame_with(now, id, f.frame, word);
                    exec.drain_urgent(engine, now, &mut out);
                }
                exec.drain(engine, now, &mut out);
                self.wake_for_timers(engine);
            }
            out.send(true);
        }
    }
}
