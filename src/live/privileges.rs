//! Capabilities: ndprelay runs with CAP_NET_RAW (packet sockets) and CAP_NET_ADMIN
//! (routes, all-multicast, sysctls, nf_tables). CAP_BPF, when present at start, loads the
//! in-kernel programs (`relay_in_kernel`, `fast_path_in_kernel`: required when `true`,
//! used when not set) and is then dropped: since Linux 6.5 the kernel checks it when a
//! map or program is created, not when the daemon later fills the maps or attaches a
//! program to a re-created port. Some older kernels with `kernel.unprivileged_bpf_disabled`
//! set (the default of Debian, Ubuntu and RHEL) check it on every `bpf()` call, map
//! lookups and updates included, others only where objects are created (Debian 12's
//! 6.1.192 does, `scripts/old-kernel.sh`); the daemon finds out at start
//! ([`map_access_needs_bpf`]) and keeps CAP_BPF, and only CAP_BPF, on the threads that
//! touch the maps. Started as root it checks them, loads the programs, then drops
//! every other capability from the effective, permitted, inheritable and bounding sets
//! before it starts any thread.
//!
//! Linux keeps capabilities per thread: `capset` and `PR_CAPBSET_DROP` change the
//! calling thread only, and a new thread starts with its creator's. So the drop runs on
//! the main thread before the first capture, netlink, signal or control thread exists,
//! and each of those threads, which only read sockets opened for them, then drops
//! everything for itself ([`drop_all_on_this_thread`]). Only the daemon thread keeps
//! CAP_NET_RAW and CAP_NET_ADMIN, for what a reload or a link change opens and the
//! routes it installs.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use caps::{CapSet, Capability, CapsHashSet};

use super::Error;

/// Set at start when this kernel checks CAP_BPF on every map access: the threads that
/// touch the in-kernel programs' maps keep it.
static KEEP_BPF: AtomicBool = AtomicBool::new(false);

const NEEDED: [Capability; 2] = [Capability::CAP_NET_RAW, Capability::CAP_NET_ADMIN];

fn needed(with_bpf: bool) -> Vec<Capability> {
    let mut caps = NEEDED.to_vec();
    if with_bpf {
        caps.push(Capability::CAP_BPF);
    }
    caps
}

/// Refuses to start without the capabilities (`with_bpf`: also CAP_BPF, for an
/// in-kernel program the config requires), naming how to grant them.
pub fn check(with_bpf: bool) -> Result<(), Error> {
    let missing: Vec<String> = needed(with_bpf)
        .iter()
        .filter(|&&c| !caps::has_cap(None, CapSet::Effective, c).unwrap_or(false))
        .map(|c| c.to_string())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let how = if with_bpf {
        "run ndprelay as root, under the shipped systemd unit (which grants CAP_BPF), \
         or grant them with \
         `setcap cap_net_raw,cap_net_admin,cap_bpf+ep $(command -v ndprelay)`; or remove \
         fast_path_in_kernel and relay_in_kernel: true, which are what need CAP_BPF"
    } else {
        "run ndprelay as root, under the shipped systemd unit \
         (AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN), or grant them with \
         `setcap cap_net_raw,cap_net_admin+ep $(command -v ndprelay)`"
    };
    Err(Error::Capability { missing, how })
}

/// Whether CAP_BPF is in the effective set, to load an in-kernel program.
pub fn has_bpf() -> bool {
    caps::has_cap(None, CapSet::Effective, Capability::CAP_BPF).unwrap_or(false)
}

/// Whether this kernel refuses map access to a thread without CAP_BPF (some kernels
/// before 6.5 with `kernel.unprivileged_bpf_disabled` set, not all): runs `access`, a lookup in a map of the
/// loaded programs, on a new thread that has dropped every capability, and reads
/// `EPERM` as yes. Any other outcome is no: the lookup either worked or failed for a
/// reason CAP_BPF does not change.
pub fn map_access_needs_bpf(access: impl FnOnce() -> io::Result<()> + Send) -> bool {
    std::thread::scope(|s| {
        s.spawn(|| {
            drop_all_on_this_thread();
            access()
        })
        .join()
    })
    .is_ok_and(|r| r.is_err_and(|e| e.raw_os_error() == Some(libc::EPERM)))
}

/// Makes [`drop_others`] and [`drop_all_but_map_access_on_this_thread`] keep CAP_BPF
/// (see [`map_access_needs_bpf`]). Call it before either.
pub fn keep_bpf_for_map_access() {
    KEEP_BPF.store(true, Ordering::Relaxed);
}

/// Whether CAP_BPF is kept for map access.
pub fn keeps_bpf() -> bool {
    KEEP_BPF.load(Ordering::Relaxed)
}

/// Drops every capability but CAP_NET_RAW and CAP_NET_ADMIN (and CAP_BPF, if
/// [`keep_bpf_for_map_access`] was called), on the calling thread and so on every
/// thread it starts afterwards (call it before starting any). Best effort: failures are
/// logged, because running with more privilege than needed is not a reason to stop
/// relaying.
pub fn drop_others() {
    let mut keep: CapsHashSet = NEEDED.into_iter().collect();
    if keeps_bpf() {
        keep.insert(Capability::CAP_BPF);
    }
    for c in caps::all() {
        if !keep.contains(&c) && caps::has_cap(None, CapSet::Bounding, c).unwrap_or(false) {
            // Needs CAP_SETPCAP, which is dropped below, so the bounding set goes first.
            if let Err(e) = caps::drop(None, CapSet::Bounding, c) {
                log::debug!("cannot drop {c} from the bounding set: {e}");
            }
        }
    }
    let permitted = caps::read(None, CapSet::Permitted).unwrap_or_default();
    let keep: CapsHashSet = keep.intersection(&permitted).copied().collect();
    if let Err(e) = keep_only(&keep) {
        log::warn!("could not drop capabilities: {e}");
    } else {
        let mut names: Vec<String> = keep.iter().map(ToString::to_string).collect();
        names.sort();
        log::debug!("capabilities reduced to {}", names.join(", "));
    }
}

/// Drops every capability of the calling thread (effective, permitted, inheritable;
/// the bounding set is already reduced by [`drop_others`] on the thread that started
/// it). For threads that only read or write sockets opened for them.
pub fn drop_all_on_this_thread() {
    for set in [CapSet::Inheritable, CapSet::Effective, CapSet::Permitted] {
        if let Err(e) = caps::clear(None, set) {
            log::warn!("could not drop the {set:?} capabilities of this thread: {e}");
        }
    }
}

/// [`drop_all_on_this_thread`] for the capture threads, which write and read the
/// in-kernel programs' maps: they keep CAP_BPF where the kernel checks it on every map
/// access ([`keep_bpf_for_map_access`]).
pub fn drop_all_but_map_access_on_this_thread() {
    if !keeps_bpf() {
        return drop_all_on_this_thread();
    }
    let keep: CapsHashSet = [Capability::CAP_BPF].into_iter().collect();
    if let Err(e) = keep_only(&keep) {
        log::warn!("could not drop the capabilities of this thread: {e}");
    }
}

/// Reduces the calling thread's effective and permitted sets to `keep` and empties its
/// inheritable set.
fn keep_only(keep: &CapsHashSet) -> Result<(), caps::errors::CapsError> {
    let _ = caps::clear(None, CapSet::Inheritable);
    caps::set(None, CapSet::Effective, keep).and_then(|()| caps::set(None, CapSet::Permitted, keep))
}

#[cfg(test)]
mod test {
    use super::*;

    fn status_line(tid: &str, key: &str) -> String {
        let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
        s.lines()
            .find(|l| l.starts_with(key))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned()
    }

    fn tid() -> String {
        std::fs::read_link("/proc/thread-self")
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn map_access_needs_bpf_only_when_the_kernel_says_eperm() {
        let refused = || Err(io::Error::from_raw_os_error(libc::EPERM));
        assert!(map_access_needs_bpf(refused));
        assert!(!map_access_needs_bpf(|| Ok(())));
        let other = || Err(io::Error::from_raw_os_error(libc::EBADF));
        assert!(!map_access_needs_bpf(other), "CAP_BPF does not cure EBADF");
    }

    #[test]
    fn the_probe_runs_without_capabilities() {
        let caps_seen = std::sync::Mutex::new(String::new());
        map_access_needs_bpf(|| {
            *caps_seen.lock().unwrap() = status_line(&tid(), "CapEff:");
            Ok(())
        });
        assert_eq!(*caps_seen.lock().unwrap(), "0000000000000000");
    }

    #[test]
    fn drop_all_empties_the_calling_thread_only() {
        let (main_eff, main) = (status_line(&tid(), "CapEff:"), tid());
        let (eff, prm, inh) = std::thread::spawn(|| {
            drop_all_on_this_thread();
            let t = tid();
            (
                status_line(&t, "CapEff:"),
                status_line(&t, "CapPrm:"),
                status_line(&t, "CapInh:"),
            )
        })
        .join()
        .unwrap();
        let zero = "0000000000000000";
        assert_eq!(
            (eff.as_str(), prm.as_str(), inh.as_str()),
            (zero, zero, zero)
        );
        assert_eq!(
            status_line(&main, "CapEff:"),
            main_eff,
            "other threads keep theirs"
        );
    }
}
