//! The `libpcap` capture backend (cargo feature `libpcap`): the same frames as the
//! AF_PACKET backend, read through the `pcap` crate. libpcap installs its filter the
//! race-free way itself; all-multicast membership and transmission stay on an AF_PACKET
//! socket with a drop-all filter (libpcap only offers all-multicast through promiscuous
//! mode, which would also bring other hosts' unicast). What libpcap reports dropped
//! (its buffer full, or the interface's own missed and FIFO errors) is added to
//! `live_rx_kernel_drops`, as the AF_PACKET backend adds its socket's drops.

use std::io;
use std::sync::atomic::Ordering;

use pcap::{Active, Capture, Direction};

use super::super::counters::{DriverCounters, RX_LOG};
use super::capture::Reader;
use super::{MAX_FRAME, RECV_BATCH, Received};

/// libpcap's ring, as big as an AF_PACKET capture socket's receive queue.
const RING_BYTES: i32 = 4 << 20;

fn to_io(e: pcap::Error) -> io::Error {
    io::Error::other(e.to_string())
}

/// libpcap's timestamp as nanoseconds: with nanosecond precision (asked for at open)
/// its "microseconds" field holds nanoseconds.
fn timeval_ns(sec: libc::time_t, nsec: libc::suseconds_t) -> u64 {
    let (sec, nsec) = (
        u64::try_from(sec).unwrap_or(0),
        u64::try_from(nsec).unwrap_or(0),
    );
    sec.saturating_mul(1_000_000_000).saturating_add(nsec)
}

/// Opens `device` for incoming frames matching `expr`.
pub(super) fn open(device: &str, expr: &str) -> io::Result<Capture<Active>> {
    let mut cap = Capture::from_device(device)
        .map_err(to_io)?
        .promisc(false)
        .immediate_mode(true)
        // libpcap's ring has a slot of the snapshot length per frame, so its default
        // snapshot length left room for few frames in a burst. Frames longer than
        // MAX_FRAME are not ND we relay, and the ring gets the AF_PACKET socket's
        // receive queue size.
        .snaplen(MAX_FRAME as i32)
        .buffer_size(RING_BYTES)
        // A bounded wait so the thread sees its stop flag.
        .timeout(250)
        // The in-kernel programs' word is compared with the kernel's receive time
        // to the nanosecond (see `relay.rs`).
        .precision(pcap::Precision::Nano)
        .open()
        .map_err(to_io)?;
    cap.direction(Direction::In).map_err(to_io)?;
    cap.filter(expr, true).map_err(to_io)?;
    Ok(cap)
}

/// libpcap's drop totals as last read.
#[derive(Debug, Default)]
pub(super) struct DropsSeen {
    dropped: u32,
    if_dropped: u32,
}

impl DropsSeen {
    /// Frames dropped since the last call, from libpcap's totals since the capture
    /// opened (`ps_drop`: its buffer was full; `ps_ifdrop`: the interface's missed and
    /// FIFO errors meanwhile). They are 32-bit and wrap.
    pub(super) fn since(&mut self, stat: &pcap::Stat) -> u64 {
        let new = u64::from(stat.dropped.wrapping_sub(self.dropped))
            + u64::from(stat.if_dropped.wrapping_sub(self.if_dropped));
        self.dropped = stat.dropped;
        self.if_dropped = stat.if_dropped;
        new
    }
}

/// Adds what libpcap dropped since the last look to `live_rx_kernel_drops`.
fn count_drops(
    cap: &mut Capture<Active>,
    name: &str,
    seen: &mut DropsSeen,
    counters: &DriverCounters,
) {
    match cap.stats() {
        Ok(stat) => {
            let n = seen.since(&stat);
            if n > 0 {
                counters.rx_kernel_drops.fetch_add(n, Ordering::Relaxed);
                RX_LOG.warn(format_args!(
                    "{name}: {n} frames dropped before libpcap handed them over: the relay \
                     did not keep up (counter live_rx_kernel_drops)"
                ));
            }
        }
        Err(e) => RX_LOG.warn(format_args!(
            "{name}: cannot read libpcap's statistics: {e}"
        )),
    }
}

/// Reads until the reader's stop flag is set, handing each frame to its sink, and
/// counts what libpcap dropped: when no frame came for a while and after every
/// [`RECV_BATCH`] frames (as the AF_PACKET backend looks after a full batch).
pub(super) fn read_loop(mut cap: Capture<Active>, reader: &Reader) {
    let (name, counters) = (&*reader.name, &*reader.counters);
    let mut seen = DropsSeen::default();
    let mut since_look = 0;
    while !reader.stop.load(Ordering::Relaxed) {
        match cap.next_packet() {
            Ok(p) => {
                let rx_ns = timeval_ns(p.header.ts.tv_sec, p.header.ts.tv_usec);
                reader.deliver(&[Received {
                    frame: p.data,
                    rx_ns,
                }]);
                since_look += 1;
                if since_look >= RECV_BATCH {
                    since_look = 0;
                    count_drops(&mut cap, name, &mut seen, counters);
                }
            }
            Err(pcap::Error::TimeoutExpired) => {
                since_look = 0;
                count_drops(&mut cap, name, &mut seen, counters);
            }
            Err(e) => {
                counters.rx_errors.fetch_add(1, Ordering::Relaxed);
                RX_LOG.warn(format_args!("{name}: libpcap read failed: {e}"));
                // A vanished device fails every read: back off instead of spinning.
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn drops_are_counted_once_each_also_across_the_wrap() {
        let stat = |dropped, if_dropped| pcap::Stat {
            received: 0,
            dropped,
            if_dropped,
        };
        let mut seen = DropsSeen::default();
        assert_eq!(seen.since(&stat(0, 0)), 0);
        assert_eq!(seen.since(&stat(5, 2)), 7);
        assert_eq!(seen.since(&stat(5, 2)), 0, "nothing new");
        assert_eq!(seen.since(&stat(u32::MAX, 2)), u64::from(u32::MAX - 5));
        assert_eq!(seen.since(&stat(3, 2)), 4, "wrapped");
    }
}
