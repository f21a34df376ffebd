//! Capabilities: ndprelay runs with CAP_NET_RAW (packet sockets) and CAP_NET_ADMIN
//! (routes, all-multicast, sysctls, nf_tables). CAP_BPF, when present at start, loads the
//! in-kernel programs (`relay_in_kernel`, `fast_path_in_kernel`: required when `true`,
//! used when not set) and is then dropped: Linux checks it when a map or program is
//! created, not when the daemon later fills the maps or attaches a program to a
//! re-created port. Started as root it checks them, loads the programs, then drops
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

use caps::{CapSet, Capability, CapsHashSet};

use super::Error;

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

/// Drops every capability but CAP_NET_RAW and CAP_NET_ADMIN, on the calling thread and
/// so on every thread it starts afterwards (call it before starting any). Best effort:
/// failures are logged, because running with more privilege than needed is not a reason
/// to stop relaying.
pub fn drop_others() {
    let keep: CapsHashSet = NEEDED.into_iter().collect();
    for c in caps::all() {
        if !keep.contains(&c) && caps::has_cap(None, CapSet::Bounding, c).unwrap_or(false) {
            // Needs CAP_SETPCAP, which is dropped below, so the bounding set goes first.
            if let Err(e) = caps::drop(None, CapSet::Bounding, c) {
                log::debug!("cannot drop {c} from the bounding set: {e}");
            }
        }
    }
    let _ = caps::clear(None, CapSet::Inheritable);
    let permitted = caps::read(None, CapSet::Permitted).unwrap_or_default();
    let keep: CapsHashSet = keep.intersection(&permitted).copied().collect();
    if let Err(e) = caps::set(None, CapSet::Effective, &keep)
        .and_then(|()| caps::set(None, CapSet::Permitted, &keep))
    {
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
