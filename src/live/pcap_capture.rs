//! The `libpcap` capture backend (cargo feature `libpcap`): the same frames as the
//! AF_PACKET backend, read through the `pcap` crate. libpcap installs its filter the
//! race-free way itself; all-multicast membership and transmission stay on an AF_PACKET
//! socket with a drop-all filter (libpcap only offers all-multicast through promiscuous
//! mode, which would also bring other hosts' unicast).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use pcap::{Active, Capture, Direction};

use super::capture::{Inbox, RX_LOG};
use super::daemon::DriverCounters;

fn to_io(e: pcap::Error) -> io::Error {
    io::Error::other(e.to_string())
}

/// Opens `device` for incoming frames matching `expr`.
pub(super) fn open(device: &str, expr: &str) -> io::Result<Capture<Active>> {
    let mut cap = Capture::from_device(device)
        .map_err(to_io)?
        .promisc(false)
        .immediate_mode(true)
        .snaplen(65535)
        // A bounded wait so the thread sees its stop flag.
        .timeout(250)
        .open()
        .map_err(to_io)?;
    cap.direction(Direction::In).map_err(to_io)?;
    cap.filter(expr, true).map_err(to_io)?;
    Ok(cap)
}

/// Reads until `stop` is set, handing each frame to the engine thread.
pub(super) fn run(
    mut cap: Capture<Active>,
    name: &str,
    stop: &AtomicBool,
    inbox: &Inbox,
    counters: &DriverCounters,
) {
    while !stop.load(Ordering::Relaxed) {
        match cap.next_packet() {
            Ok(p) => {
                if !inbox.deliver(stop, [p.data]) {
                    return;
                }
            }
            Err(pcap::Error::TimeoutExpired) => {}
            Err(e) => {
                counters.rx_errors.fetch_add(1, Ordering::Relaxed);
                RX_LOG.warn(format_args!("{name}: libpcap read failed: {e}"));
                // A vanished device fails every read: back off instead of spinning.
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
        }
    }
}
