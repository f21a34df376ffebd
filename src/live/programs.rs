//! The in-kernel programs as the daemon runs them: loaded at start if the config and
//! the host allow (`fast_path_in_kernel`, `relay_in_kernel`), attached to the ports
//! present, told the engine's entries, and asked what they did with a frame (the
//! kernel's word, see `engine/kernel.rs`).

use std::io;
use std::net::Ipv6Addr;
use std::time::Duration as StdDuration;

use super::counters::TX_LOG;
use super::ebpf_prog::SetupError;
use super::kernel_answer::{AnswerWitness, KernelAnswers};
use super::kernel_relay::{KernelRelays, NaPath, NsPath, RelayWitness};
use super::ports::Received;
use super::{Error, privileges};
use crate::config::{Config, InKernel};
use crate::engine::{Action, Engine, KernelWord, PortId, Role};
use crate::time::Instant;

/// An in-kernel program as the config and the log name it.
#[derive(Debug, Clone, Copy)]
pub(super) struct ProgramKey {
    /// Its config key.
    name: &'static str,
    /// What it takes over from the relay's threads.
    what: &'static str,
}
pub(super) const FAST_PATH_IN_KERNEL: ProgramKey = ProgramKey {
    name: "fast_path_in_kernel",
    what: "fast-path answers sent",
};
pub(super) const RELAY_IN_KERNEL: ProgramKey = ProgramKey {
    name: "relay_in_kernel",
    what: "NS and NA for bound guests relayed",
};

/// The loaded programs and whether each is in use (a reload may stop using one; it
/// stays loaded so a later reload can use it again: CAP_BPF is gone after start).
#[derive(Default)]
pub(super) struct KernelPrograms {
    answers: Option<KernelAnswers>,
    answering: bool,
    relays: Option<KernelRelays>,
    relaying: bool,
}

/// A port as the programs see it: its role and interface index, if present.
#[derive(Debug, Clone, Copy)]
pub(super) struct ProgramPort<'a> {
    pub(super) name: &'a str,
    pub(super) role: Role,
    pub(super) ifindex: Option<i32>,
}

impl KernelPrograms {
    /// Loads and attaches what `config` asks for to `ports`: a program asked for
    /// explicitly must load, one wanted "when possible" is skipped with the reason
    /// logged (no CAP_BPF, `--dump`, an old kernel).
    pub(super) fn at_start(
        config: &Config,
        ports: &[ProgramPort<'_>],
        dumping: bool,
    ) -> Result<Self, Error> {
        let entries = map_entries(config);
        let answers = at_start(FAST_PATH_IN_KERNEL, answers_wanted(config), dumping, || {
            load_and_attach(
                || KernelAnswers::load(entries),
                |k| k.sync(&present(ports, true, true)),
            )
        })?;
        let relays = at_start(RELAY_IN_KERNEL, config.relay_in_kernel, dumping, || {
            load_and_attach(
                || KernelRelays::load(entries),
                |k| k.sync(&present(ports, true, false)),
            )
        })?;
        Ok(Self {
            answering: answers.is_some(),
            answers,
            relaying: relays.is_some(),
            relays,
        })
    }

    /// Whether the fast-path program answers in the kernel.
    pub(super) fn answering(&self) -> bool {
        self.answering
    }

    /// Whether the relay program relays in the kernel.
    pub(super) fn relaying(&self) -> bool {
        self.relaying
    }

    /// Which programs a reload's `config` puts to use; an error if it asks for one that
    /// was not loaded at start.
    pub(super) fn in_use_after(&self, config: &Config) -> Result<(bool, bool), Error> {
        Ok((
            in_use(
                FAST_PATH_IN_KERNEL,
                answers_wanted(config),
                self.answers.is_some(),
            )?,
            in_use(
                RELAY_IN_KERNEL,
                config.relay_in_kernel,
                self.relays.is_some(),
            )?,
        ))
    }

    /// Puts a reload's choice (from [`Self::in_use_after`]) in place.
    pub(super) fn set_in_use(&mut self, config: &Config, (answering, relaying): (bool, bool)) {
        let entries = map_entries(config);
        log_use(
            FAST_PATH_IN_KERNEL,
            (self.answering, answering),
            self.answers.as_ref().map(KernelAnswers::capacity),
            entries,
        );
        log_use(
            RELAY_IN_KERNEL,
            (self.relaying, relaying),
            self.relays.as_ref().map(KernelRelays::capacity),
            entries,
        );
        self.answering = answering;
        self.relaying = relaying;
    }

    /// Attaches the programs in use to the ports present now and detaches them from
    /// the rest (which also empties their maps).
    pub(super) fn sync(&mut self, ports: &[ProgramPort<'_>]) -> Vec<SetupError> {
        let mut errors = Vec::new();
        if let Some(k) = &mut self.answers {
            errors.extend(k.sync(&present(ports, self.answering, true)));
        }
        if let Some(k) = &mut self.relays {
            errors.extend(k.sync(&present(ports, self.relaying, false)));
        }
        errors
    }

    /// Writes what a `Kernel*` action tells the kernel (`ifindex` maps the engine's
    /// ports); an entry that cannot be written is handed back to the engine, which
    /// then does the work itself.
    pub(super) fn apply(
        &mut self,
        engine: &mut Engine,
        now: Instant,
        action: Action,
        ifindex: impl Fn(PortId) -> Option<i32>,
    ) {
        let valid_for = |until: Instant| StdDuration::from(until.saturating_since(now));
        match action {
            Action::KernelAnswer {
                port,
                target,
                mac,
                until,
            } => {
                let written = match (&mut self.answers, ifindex(port)) {
                    (Some(k), Some(ix)) => k.answer(ix, target, mac, valid_for(until)),
                    _ => Err(not_set_up()),
                };
                if let Err(e) = written {
                    TX_LOG.warn(format_args!(
                        "fast_path_in_kernel: cannot hand {target} to the kernel; \
                         answering it here ({e})"
                    ));
                    engine.kernel_answer_refused(target);
                }
            }
            Action::KernelForget { target } => {
                if let Some(k) = &mut self.answers {
                    k.forget(target);
                }
                if let Some(k) = &mut self.relays {
                    k.forget_ns(target);
                }
            }
            Action::KernelRelayNs {
                from,
                target,
                to,
                mac,
                guest_mac,
                until,
            } => {
                let path = ifindex(from).zip(ifindex(to)).map(|(from, to)| NsPath {
                    from,
                    target,
                    to,
                    mac,
                    guest_mac,
                });
                let written = match (&mut self.relays, path) {
                    (Some(k), Some(path)) => k.relay_ns(&path, valid_for(until)),
                    _ => Err(not_set_up()),
                };
                if let Err(e) = written {
                    TX_LOG.warn(format_args!(
                        "relay_in_kernel: cannot hand the NS for {target} to the kernel; \
                         relaying them here ({e})"
                    ));
                    engine.kernel_relay_ns_refused(target);
                }
            }
            Action::KernelRelayNa {
                from,
                target,
                solicitor,
                guest_mac,
                to,
                mac,
                solicitor_mac,
                until,
            } => {
                let path = ifindex(from).zip(ifindex(to)).map(|(from, to)| NaPath {
                    from,
                    target,
                    solicitor,
                    guest_mac,
                    to,
                    mac,
                    solicitor_mac,
                });
                let written = match (&mut self.relays, path) {
                    (Some(k), Some(path)) => k.relay_na(&path, valid_for(until)),
                    _ => Err(not_set_up()),
                };
                if let Err(e) = written {
                    TX_LOG.warn(format_args!(
                        "relay_in_kernel: cannot hand the NAs for {target} to {solicitor} \
                         to the kernel; relaying them here ({e})"
                    ));
                    engine.kernel_relay_refused(target, solicitor);
                }
            }
            Action::KernelForgetRelays => {
                if let Some(k) = &mut self.relays {
                    k.forget_all_na();
                }
            }
            _ => {}
        }
    }

    /// What the threads that ask about frames need from the programs in use, with
    /// `ifindex`, each engine port's interface index.
    pub(super) fn witness(&self, ifindex: Vec<Option<i32>>) -> KernelWitness {
        KernelWitness::of(
            self.answers.as_ref().filter(|_| self.answering),
            self.relays.as_ref().filter(|_| self.relaying),
            ifindex,
        )
    }
}

/// Asks the programs in use what they did with a frame (the kernel's word): a map
/// lookup, a syscall, which the capture threads make before they take the engine's lock.
/// A snapshot: a reload or a port's new interface index replaces it (`Relay::with`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct KernelWitness {
    answers: Option<AnswerWitness>,
    relays: Option<RelayWitness>,
    ifindex: Vec<Option<i32>>,
}

impl KernelWitness {
    /// Asks `answers` and `relays`, on ports of interface indexes `ifindex`.
    pub(super) fn of(
        answers: Option<&KernelAnswers>,
        relays: Option<&KernelRelays>,
        ifindex: Vec<Option<i32>>,
    ) -> Self {
        Self {
            answers: answers.map(KernelAnswers::witness),
            relays: relays.map(KernelRelays::witness),
            ifindex,
        }
    }

    /// One lookup in a map of each program in use (of a key no entry has), for
    /// [`privileges::map_access_needs_bpf`](super::privileges::map_access_needs_bpf).
    pub(super) fn probe(&self) -> io::Result<()> {
        let nobody = Ipv6Addr::UNSPECIFIED;
        if let Some(k) = &self.answers {
            k.answered(0, nobody, 1)?;
        }
        if let Some(k) = &self.relays {
            k.relayed_ns(0, nobody, 1)?;
            k.relayed_na(0, nobody, nobody, 1)?;
        }
        Ok(())
    }

    /// Whether a program is in use.
    pub(super) fn any(&self) -> bool {
        self.answers.is_some() || self.relays.is_some()
    }

    /// What the programs say they did with `frame`, received on engine port `port`:
    /// each is asked only for the frames it could have taken, and a lookup that fails
    /// counts as "not taken" (the engine then handles the frame: a duplicate at worst).
    pub(super) fn word(&self, port: usize, frame: &Received<'_>) -> KernelWord {
        let mut word = KernelWord::NOTHING;
        if frame.rx_ns == 0 || !self.any() {
            return word;
        }
        let Some(ifindex) = self.ifindex.get(port).copied().flatten() else {
            return word;
        };
        let Some(nd) = NdPeek::of(frame.frame) else {
            return word;
        };
        let said = |asked: io::Result<bool>| asked.unwrap_or(false);
        match nd.icmp_type {
            ICMP_NS => {
                if let Some(k) = &self.answers {
                    word.answered = said(k.answered(ifindex, nd.target, frame.rx_ns));
                }
                if let Some(k) = self.relays.as_ref().filter(|_| !word.answered) {
                    word.relayed_ns = said(k.relayed_ns(ifindex, nd.target, frame.rx_ns));
                }
            }
            ICMP_NA => {
                if let Some(k) = &self.relays {
                    word.relayed_na = said(k.relayed_na(ifindex, nd.target, nd.dst, frame.rx_ns));
                }
            }
            _ => {}
        }
        word
    }
}

/// ICMPv6 Neighbor Solicitation.
const ICMP_NS: u8 = 135;
/// ICMPv6 Neighbor Advertisement.
const ICMP_NA: u8 = 136;
/// The only frame length the programs take: Ethernet, IPv6, a 24-byte NS or NA and
/// one 8-byte link-layer address option.
const PROGRAM_FRAME_LEN: usize = 14 + 40 + 32;
/// Offsets in such a frame.
const ETH_TYPE_AT: usize = 12;
const IPV6_NEXT_HEADER_AT: usize = 14 + 6;
const IPV6_DST_AT: usize = 14 + 24;
const ICMP_TYPE_AT: usize = 14 + 40;
const ND_TARGET_AT: usize = 14 + 40 + 8;

/// Which entry to ask about a frame: read at fixed offsets, without validation. A
/// frame that is not what it seems finds no entry holding its receive time (the
/// programs store it only for frames they took), so a loose read can only cost a
/// lookup.
struct NdPeek {
    icmp_type: u8,
    target: Ipv6Addr,
    dst: Ipv6Addr,
}

impl NdPeek {
    fn of(frame: &[u8]) -> Option<Self> {
        let addr = |at: usize| -> Option<Ipv6Addr> {
            let bytes: [u8; 16] = frame.get(at..at + 16)?.try_into().ok()?;
            Some(Ipv6Addr::from(bytes))
        };
        (frame.len() == PROGRAM_FRAME_LEN
            && frame[ETH_TYPE_AT..ETH_TYPE_AT + 2] == [0x86, 0xdd]
            && frame[IPV6_NEXT_HEADER_AT] == 58)
            .then_some(())?;
        Some(Self {
            icmp_type: frame[ICMP_TYPE_AT],
            target: addr(ND_TARGET_AT)?,
            dst: addr(IPV6_DST_AT)?,
        })
    }
}

fn not_set_up() -> io::Error {
    io::Error::other("the program is not set up on the port")
}

/// One entry per binding at most: the engine tells the kernel about a binding on one
/// upstream port at a time.
fn map_entries(config: &Config) -> u32 {
    u32::try_from(config.tunables.max_bindings)
        .unwrap_or(u32::MAX)
        .max(1)
}

/// `fast_path_in_kernel` as it applies: without `fast_path` there is nothing to answer.
fn answers_wanted(config: &Config) -> InKernel {
    if config.fast_path.is_some() {
        config.fast_path_in_kernel
    } else {
        InKernel::Never
    }
}

/// The ports a program runs on: with `on`, those present (with `upstream_only`, the
/// upstream ones), otherwise none.
fn present<'a>(ports: &[ProgramPort<'a>], on: bool, upstream_only: bool) -> Vec<(&'a str, i32)> {
    ports
        .iter()
        .filter(|p| on && (!upstream_only || p.role == Role::Upstream))
        .filter_map(|p| Some((p.name, p.ifindex?)))
        .collect()
}

/// An in-kernel program as its config key asks (`wanted`), loaded and attached by
/// `load`: `None` when it is off, or when it was not asked for explicitly and cannot be
/// set up here (logged with the reason). Loading needs CAP_BPF, dropped after start.
fn at_start<K>(
    key: ProgramKey,
    wanted: InKernel,
    dumping: bool,
    load: impl FnOnce() -> Result<K, SetupError>,
) -> Result<Option<K>, Error> {
    let ProgramKey { name, what } = key;
    let why_not = match wanted {
        InKernel::Never => return Ok(None),
        InKernel::Always => return Ok(Some(load()?)),
        InKernel::WhenPossible if dumping => "frames are being dumped (--dump, dump_dir) and \
            what the kernel sends would be missing from the files"
            .to_owned(),
        InKernel::WhenPossible if !privileges::has_bpf() => "CAP_BPF is missing at start (run \
            as root, or add CAP_BPF as packaging/ndprelay.service shows; it is dropped once \
            the program is loaded)"
            .to_owned(),
        InKernel::WhenPossible => match load() {
            Ok(k) => {
                log::info!("{name}: {what} in the kernel");
                return Ok(Some(k));
            }
            Err(e) => e.to_string(),
        },
    };
    log::info!(
        "{name}: {what} by the relay's threads, not in the kernel: {why_not}; \
         `{name}: false` in the config says this is intended"
    );
    Ok(None)
}

/// Whether a reload's config puts a program to use: as `wanted`, if it was `loaded` at
/// start (the only time it can be).
fn in_use(key: ProgramKey, wanted: InKernel, loaded: bool) -> Result<bool, Error> {
    match wanted {
        InKernel::Never => Ok(false),
        InKernel::WhenPossible => Ok(loaded),
        InKernel::Always if loaded => Ok(true),
        InKernel::Always => Err(Error::KernelProgramNotLoaded(key.name)),
    }
}

/// Logs a reload's change of a program's use (`was`, `now`), and that its maps keep the
/// `capacity` they were loaded with when the config now asks for `entries`.
fn log_use(key: ProgramKey, (was, now): (bool, bool), capacity: Option<u32>, entries: u32) {
    let ProgramKey { name, what } = key;
    if was != now {
        let by = if now {
            "in the kernel"
        } else {
            "by the relay's threads"
        };
        log::info!("{name}: {what} now {by}");
    }
    if let Some(c) = capacity.filter(|&c| now && c != entries) {
        log::info!("{name}: the kernel's maps keep room for {c} entries until the next start");
    }
}

/// Loads a program with `load` and attaches it with `sync` to `ports`.
fn load_and_attach<K>(
    load: impl FnOnce() -> Result<K, SetupError>,
    sync: impl FnOnce(&mut K) -> Vec<SetupError>,
) -> Result<K, SetupError> {
    let mut k = load()?;
    match sync(&mut k).into_iter().next() {
        Some(e) => Err(e),
        None => Ok(k),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::{Mac, NaFlags, NdMessage, OptionRepr, emit_nd};

    #[test]
    fn the_peek_reads_the_programs_one_shape_and_nothing_else() {
        let (target, dst): (Ipv6Addr, Ipv6Addr) =
            ("2001:db8::10".parse().unwrap(), "fe80::1".parse().unwrap());
        let mac = Mac([2, 0, 0, 0, 0, 1]);
        let na = |opts: &[OptionRepr]| {
            emit_nd(
                mac,
                mac,
                target,
                dst,
                &NdMessage::NeighborAdvert {
                    flags: NaFlags::SOLICITED,
                    target_addr: target,
                },
                opts,
            )
        };
        let framed = na(&[OptionRepr::TargetLla(mac)]);
        let peek = NdPeek::of(&framed).expect("the programs' shape");
        assert_eq!(
            (peek.icmp_type, peek.target, peek.dst),
            (ICMP_NA, target, dst)
        );
        assert!(NdPeek::of(&na(&[])).is_none(), "no option: not the shape");
        assert!(NdPeek::of(&framed[..framed.len() - 1]).is_none());
        let mut not_ipv6 = framed.clone();
        not_ipv6[ETH_TYPE_AT] = 0x08;
        assert!(NdPeek::of(&not_ipv6).is_none());
    }

    #[test]
    fn a_program_runs_on_the_present_ports_of_its_role_and_on_none_when_off() {
        let port = |name, role, ifindex| ProgramPort {
            name,
            role,
            ifindex,
        };
        let mut ports = vec![
            port("eth0", Role::Upstream, Some(2)),
            port("br0", Role::Downstream, Some(3)),
            port("vif1", Role::Downstream, Some(4)),
        ];
        assert_eq!(present(&ports, true, true), [("eth0", 2)]);
        assert_eq!(
            present(&ports, true, false),
            [("eth0", 2), ("br0", 3), ("vif1", 4)]
        );
        // Turned off by a reload: detached everywhere, which also empties its maps.
        assert!(present(&ports, false, false).is_empty());
        assert!(present(&ports, false, true).is_empty());
        // A deleted port has no ifindex until it comes back.
        ports[1].ifindex = None;
        assert_eq!(present(&ports, true, false), [("eth0", 2), ("vif1", 4)]);
    }
}
