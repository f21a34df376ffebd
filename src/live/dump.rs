//! `ndprelay run --dump DIR`: every ND frame a port received (when the engine takes
//! it) and every frame the relay sent, in size-bounded rotating pcapng files with one
//! interface per port (engine port order, the port's MAC as `if_MACaddr`), so that
//! `ndprelay replay -c CONFIG --input DIR/ndprelay-<start>-<pid>-NNNNNN.pcapng` replays
//! production 1:1. Files are created new only (no symlink followed, nothing truncated,
//! mode 0600), under names that differ from run to run: see [`RotatingDump`].
//!
//! Timestamps are the engine's own time mapped onto the wall clock at start, so a frame
//! and what the relay sent in answer carry the times the engine saw, and replay's timers
//! run on the same clock the live engine's did.

use std::path::Path;
use std::time::{Duration as StdDuration, Instant as StdInstant, SystemTime};

use crate::pcapng::{PcapNgError, RotatingDump};
use crate::time::Instant;
use crate::wire::Mac;

/// Bytes of packets per dump file before the next one is started.
pub const DEFAULT_FILE_BYTES: u64 = 16 << 20;
/// Dump files kept; the oldest is removed when one more is started.
pub const DEFAULT_FILES: usize = 8;
/// Buffered frames reach the file at least this often, so a running dump can be copied.
const FLUSH_EVERY: StdDuration = StdDuration::from_secs(1);
/// After a write error (disk full), dumping pauses this long before trying a new file.
const RETRY_AFTER: StdDuration = StdDuration::from_secs(30);

/// The dump of a running daemon.
pub struct Dump {
    files: RotatingDump,
    /// Wall-clock time (since the epoch) of engine time zero.
    origin: StdDuration,
    last_flush: StdInstant,
    paused_until: Option<StdInstant>,
}

impl Dump {
    /// Starts dumping into `dir`; `ports` are the engine's ports in order, `now` the
    /// engine's current time.
    pub fn open<'a>(
        dir: &Path,
        ports: impl Iterator<Item = (&'a str, Mac)>,
        now: Instant,
        max_file_bytes: u64,
        max_files: usize,
    ) -> Result<Self, PcapNgError> {
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let files = RotatingDump::new(dir, interfaces(ports), max_file_bytes, max_files)?;
        Ok(Self {
            files,
            origin: wall.saturating_sub(StdDuration::from_micros(now.total_micros())),
            last_flush: StdInstant::now(),
            paused_until: None,
        })
    }

    /// Records `frame`, received or sent on port index `port` at engine time `now`;
    /// `ports` are the current ports (a reload or a MAC change starts a new file that
    /// describes them). Failures are logged, never passed on: the relay goes on.
    pub fn write<'a>(
        &mut self,
        ports: impl Iterator<Item = (&'a str, Mac)> + Clone,
        port: usize,
        now: Instant,
        frame: &[u8],
    ) {
        if let Some(until) = self.paused_until {
            if StdInstant::now() < until {
                return;
            }
            self.paused_until = None;
        }
        let same = ports.clone().map(|(n, m)| (n, Some(m))).eq(self
            .files
            .interfaces()
            .iter()
            .map(|(n, m)| (n.as_str(), *m)));
        let result = if same {
            Ok(())
        } else {
            self.files.set_interfaces(interfaces(ports))
        };
        let at = self.origin + StdDuration::from_micros(now.total_micros());
        let interface = u32::try_from(port).unwrap_or(u32::MAX);
        if let Err(e) = result.and_then(|()| self.files.write(interface, at, frame)) {
            self.fail(&e);
        }
    }

    /// Flushes buffered frames when due; the engine loop calls this on every turn.
    pub fn tick(&mut self) {
        if self.last_flush.elapsed() < FLUSH_EVERY {
            return;
        }
        self.last_flush = StdInstant::now();
        if let Err(e) = self.files.flush() {
            self.fail(&e);
        }
    }

    fn fail(&mut self, e: &PcapNgError) {
        log::error!("dump: {e}; dumping pauses for {}s", RETRY_AFTER.as_secs());
        // The file that failed is closed; the next write after the pause starts a new one.
        let _ = self.files.rotate();
        self.paused_until = Some(StdInstant::now() + RETRY_AFTER);
    }
}

impl Drop for Dump {
    fn drop(&mut self) {
        if let Err(e) = self.files.rotate() {
            log::error!("dump: {e}");
        }
    }
}

fn interfaces<'a>(ports: impl Iterator<Item = (&'a str, Mac)>) -> Vec<(String, Option<Mac>)> {
    ports.map(|(n, m)| (n.to_owned(), Some(m))).collect()
}

#[cfg(test)]
mod test {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::*;
    use crate::engine::PortId;
    use crate::replay::Source;
    use crate::time::Duration;

    fn tmpdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ndprelay-dump-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }

    /// Frames (port, time, bytes) and the MAC declared per port.
    type Read = (Vec<(PortId, StdDuration, Vec<u8>)>, Vec<(PortId, Mac)>);

    /// The frames of the dump file `path`, and the MACs its interfaces declare.
    fn read(path: &Path, ids: &HashMap<String, PortId>) -> Read {
        let mut src = Source::open(path, 0, None).unwrap();
        let mut warnings = Vec::new();
        let mut frames = Vec::new();
        while let Some(f) = src.next_frame(ids, &mut warnings).unwrap() {
            frames.push((f.port, f.timestamp, f.data));
        }
        assert!(warnings.is_empty(), "{warnings:?}");
        let macs = src.interface_macs().collect();
        (frames, macs)
    }

    #[test]
    fn frames_land_on_their_port_with_engine_time_and_port_macs() {
        let dir = tmpdir("sink");
        let (m0, m1) = (Mac([2, 0, 0, 0, 0, 1]), Mac([2, 0, 0, 0, 0, 2]));
        let ports = [("eth0", m0), ("br0", m1)];
        let t0 = Instant::ZERO + Duration::from_secs(5);
        let mut dump = Dump::open(&dir, ports.iter().copied(), t0, 1 << 20, 4).unwrap();
        dump.write(ports.iter().copied(), 0, t0, &[1; 60]);
        let t1 = t0 + Duration::from_millis(250);
        dump.write(ports.iter().copied(), 1, t1, &[2; 70]);
        drop(dump);

        let ids: HashMap<String, PortId> = [
            ("eth0".to_owned(), PortId(0)),
            ("br0".to_owned(), PortId(1)),
        ]
        .into();
        let all = files(&dir);
        assert_eq!(all.len(), 1);
        let (frames, macs) = read(&all[0], &ids);
        assert_eq!(macs, vec![(PortId(0), m0), (PortId(1), m1)]);
        assert_eq!(frames.len(), 2);
        assert_eq!(
            (frames[0].0, frames[0].2.as_slice()),
            (PortId(0), &[1u8; 60][..])
        );
        assert_eq!(
            (frames[1].0, frames[1].2.as_slice()),
            (PortId(1), &[2u8; 70][..])
        );
        assert_eq!(
            frames[1].1 - frames[0].1,
            StdDuration::from_millis(250),
            "engine time differences survive exactly"
        );
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap();
        assert!(
            frames[0].1 <= wall && wall - frames[0].1 < StdDuration::from_secs(60),
            "timestamps are wall-clock times"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_port_change_starts_a_file_that_describes_the_new_ports() {
        let dir = tmpdir("change");
        let (m0, m1) = (Mac([2, 0, 0, 0, 0, 1]), Mac([2, 0, 0, 0, 0, 2]));
        let before = [("eth0", m0), ("br0", m1)];
        let after = [("eth0", m0), ("br0", Mac([2, 0, 0, 0, 0, 9])), ("br1", m1)];
        let mut dump = Dump::open(&dir, before.iter().copied(), Instant::ZERO, 1 << 20, 4).unwrap();
        dump.write(before.iter().copied(), 1, Instant::ZERO, &[1; 60]);
        dump.write(after.iter().copied(), 2, Instant::ZERO, &[2; 60]);
        drop(dump);
        let all = files(&dir);
        assert_eq!(all.len(), 2, "{all:?}");
        let ids: HashMap<String, PortId> = [("eth0", 0), ("br0", 1), ("br1", 2)]
            .iter()
            .map(|(n, i)| ((*n).to_owned(), PortId(*i)))
            .collect();
        let (f0, macs0) = read(&all[0], &ids);
        let (f1, macs1) = read(&all[1], &ids);
        assert_eq!((f0.len(), f0[0].0), (1, PortId(1)));
        assert_eq!((f1.len(), f1[0].0), (1, PortId(2)));
        assert_eq!(macs0.len(), 2);
        assert_eq!(macs1[1], (PortId(1), Mac([2, 0, 0, 0, 0, 9])));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_dir_is_an_error_naming_it() {
        let file = tmpdir("notadir");
        std::fs::write(&file, b"x").unwrap();
        let err = Dump::open(&file.join("sub"), std::iter::empty(), Instant::ZERO, 1, 1)
            .err()
            .unwrap();
        assert!(err.to_string().contains("notadir"), "{err}");
        std::fs::remove_file(&file).unwrap();
    }
}
