//! pcapng files with one interface per port: written by replay (`--output`), the
//! simulator (`--pcap-dir`) and the daemon (`--dump`), read back by replay.
//!
//! `pcap-file` 2.0 stores Enhanced Packet timestamps as raw nanosecond counts and leaves
//! `if_tsresol` to the caller, so every interface written here declares nanoseconds and
//! [`timestamp_from_units`] rescales what other tools wrote (microseconds by default).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};

use crate::wire::Mac;

/// `if_tsresol` for nanoseconds.
const TSRESOL_NANOS: u8 = 9;

/// A pcapng writer with one Ethernet interface per port.
pub struct PcapNgFile {
    path: PathBuf,
    writer: PcapNgWriter<BufWriter<File>>,
    bytes: u64,
}

/// A failure writing a capture, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("writing {path}: {message}")]
pub struct PcapNgError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

impl PcapNgFile {
    /// Creates `path` with one interface per `(name, mac)`, in order: interface `i` is
    /// port `i`.
    pub fn create(path: &Path, interfaces: &[(String, Option<Mac>)]) -> Result<Self, PcapNgError> {
        let file = File::create(path).map_err(|e| PcapNgError {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Self::with_file(path, file, interfaces)
    }

    /// Creates `path` as a new file only, for the daemon's dumps, which may run as root
    /// in a directory others can write: a symlink there is not followed, an existing
    /// file is neither truncated nor appended to (`ErrorKind::AlreadyExists`), and the
    /// file is mode 0600 whatever the umask, since it holds every guest's addresses.
    pub fn create_new(
        path: &Path,
        interfaces: &[(String, Option<Mac>)],
    ) -> Result<Self, std::io::Error> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(0o600)
            .open(path)?;
        // The umask may take bits away from 0600 (0277 leaves 0400): make it exact.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Self::with_file(path, file, interfaces).map_err(|e| std::io::Error::other(e.message))
    }

    fn with_file(
        path: &Path,
        file: File,
        interfaces: &[(String, Option<Mac>)],
    ) -> Result<Self, PcapNgError> {
        let err = |message: String| PcapNgError {
            path: path.to_owned(),
            message,
        };
        let mut writer = PcapNgWriter::new(BufWriter::new(file)).map_err(|e| err(e.to_string()))?;
        for (name, mac) in interfaces {
            let mut options = vec![
                InterfaceDescriptionOption::IfName(name.clone().into()),
                InterfaceDescriptionOption::IfTsResol(TSRESOL_NANOS),
            ];
            if let Some(mac) = mac {
                options.push(InterfaceDescriptionOption::IfMacAddr(mac.0.to_vec().into()));
            }
            let idb = InterfaceDescriptionBlock {
                linktype: DataLink::ETHERNET,
                snaplen: 0xffff,
                options,
            };
            writer
                .write_pcapng_block(idb)
                .map_err(|e| err(e.to_string()))?;
        }
        Ok(Self {
            path: path.to_owned(),
            writer,
            bytes: 0,
        })
    }

    /// Appends `frame`, seen on interface `interface` at `timestamp` (since the epoch).
    pub fn write(
        &mut self,
        interface: u32,
        timestamp: StdDuration,
        frame: &[u8],
    ) -> Result<(), PcapNgError> {
        let epb = EnhancedPacketBlock {
            interface_id: interface,
            timestamp,
            original_len: u32::try_from(frame.len()).unwrap_or(u32::MAX),
            data: frame.into(),
            options: Vec::new(),
        };
        let n = self
            .writer
            .write_pcapng_block(epb)
            .map_err(|e| PcapNgError {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        self.bytes += n as u64;
        Ok(())
    }

    /// Bytes of packet blocks written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Pushes buffered blocks to the file, so it can be read while still being written.
    pub fn flush(&mut self) -> Result<(), PcapNgError> {
        self.writer.get_mut().flush().map_err(|e| PcapNgError {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }

    /// Flushes and closes the file.
    pub fn finish(self) -> Result<(), PcapNgError> {
        let path = self.path;
        self.writer.into_inner().flush().map_err(|e| PcapNgError {
            path,
            message: e.to_string(),
        })
    }
}

/// Size-bounded, rotating pcapng dumps (`ndprelay run --dump DIR`): files
/// `ndprelay-<start>-<pid>-NNNNNN.pcapng` (`<start>` the run's start in seconds since the
/// epoch), each at most `max_file_bytes` of packets, the oldest of this run removed once
/// there are more than `max_files`. Files are only ever created new (see
/// [`PcapNgFile::create_new`]): a name that exists already, from an earlier run or
/// anyone else, is skipped for the next number, so no run overwrites another's files.
/// Every file repeats the interface descriptions, so any one of them replays on its own.
pub struct RotatingDump {
    dir: PathBuf,
    interfaces: Vec<(String, Option<Mac>)>,
    max_file_bytes: u64,
    max_files: usize,
    /// `<start>-<pid>`, the part of the file names that tells runs apart.
    run: String,
    sequence: u64,
    current: Option<PcapNgFile>,
    written: std::collections::VecDeque<PathBuf>,
}

impl RotatingDump {
    /// Starts dumping into `dir` (created if missing).
    pub fn new(
        dir: &Path,
        interfaces: Vec<(String, Option<Mac>)>,
        max_file_bytes: u64,
        max_files: usize,
    ) -> Result<Self, PcapNgError> {
        std::fs::create_dir_all(dir).map_err(|e| PcapNgError {
            path: dir.to_owned(),
            message: e.to_string(),
        })?;
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Ok(Self {
            dir: dir.to_owned(),
            interfaces,
            max_file_bytes: max_file_bytes.max(1),
            max_files: max_files.max(1),
            run: format!("{start}-{}", std::process::id()),
            sequence: 0,
            current: None,
            written: std::collections::VecDeque::new(),
        })
    }

    /// Appends a frame seen (received or sent) on port `interface`.
    pub fn write(
        &mut self,
        interface: u32,
        timestamp: StdDuration,
        frame: &[u8],
    ) -> Result<(), PcapNgError> {
        if self
            .current
            .as_ref()
            .is_some_and(|f| f.bytes() >= self.max_file_bytes)
        {
            self.rotate()?;
        }
        if self.current.is_none() {
            let (path, file) = self.create_next()?;
            self.current = Some(file);
            self.written.push_back(path);
            while self.written.len() > self.max_files {
                if let Some(old) = self.written.pop_front() {
                    // Already gone (an operator cleaned up) is as good as removed.
                    let _ = std::fs::remove_file(old);
                }
            }
        }
        let file = self
            .current
            .as_mut()
            .expect("opened just above when missing");
        file.write(interface, timestamp, frame)
    }

    /// Creates the next file of this run under a name nobody holds yet.
    fn create_next(&mut self) -> Result<(PathBuf, PcapNgFile), PcapNgError> {
        /// Names taken by others skipped before giving up (each is one failed open).
        const TRIES: u32 = 1000;
        let mut last = None;
        for _ in 0..TRIES {
            let path = self
                .dir
                .join(format!("ndprelay-{}-{:06}.pcapng", self.run, self.sequence));
            self.sequence += 1;
            match PcapNgFile::create_new(&path, &self.interfaces) {
                Ok(file) => return Ok((path, file)),
                // Taken (a file, or a symlink someone planted): never reuse it.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(path),
                Err(e) => {
                    return Err(PcapNgError {
                        path,
                        message: e.to_string(),
                    });
                }
            }
        }
        Err(PcapNgError {
            path: last.unwrap_or_else(|| self.dir.clone()),
            message: format!(
                "the last {TRIES} file names all exist already; move the old dumps away"
            ),
        })
    }

    /// Closes the current file; the next write opens a new one.
    pub fn rotate(&mut self) -> Result<(), PcapNgError> {
        match self.current.take() {
            Some(file) => file.finish(),
            None => Ok(()),
        }
    }

    /// Pushes the current file's buffered blocks to disk.
    pub fn flush(&mut self) -> Result<(), PcapNgError> {
        self.current.as_mut().map_or(Ok(()), PcapNgFile::flush)
    }

    /// The interfaces (ports, in order) the files describe.
    pub fn interfaces(&self) -> &[(String, Option<Mac>)] {
        &self.interfaces
    }

    /// Ports changed (a reload, a new MAC): the current file is closed and the next one
    /// describes `interfaces`, so each file stays true to the frames it holds.
    pub fn set_interfaces(
        &mut self,
        interfaces: Vec<(String, Option<Mac>)>,
    ) -> Result<(), PcapNgError> {
        self.interfaces = interfaces;
        self.rotate()
    }

    /// Files currently kept, oldest first.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.written.iter().map(PathBuf::as_path)
    }
}

/// Converts a timestamp as `pcap-file` read it (a raw count it calls nanoseconds) into
/// real time, given the interface's `if_tsresol` (absent = 6, microseconds).
pub fn timestamp_from_units(raw: StdDuration, tsresol: Option<u8>) -> StdDuration {
    let units = raw.as_nanos();
    let nanos = match tsresol.unwrap_or(6) {
        r if r & 0x80 == 0 => {
            let exp = u32::from(r & 0x7f);
            if exp <= 9 {
                units.saturating_mul(10u128.pow(9 - exp))
            } else {
                units / 10u128.pow(exp.min(38) - 9)
            }
        }
        r => {
            let exp = u32::from(r & 0x7f).min(127);
            units.saturating_mul(1_000_000_000) >> exp
        }
    };
    StdDuration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn dump_rotates_and_keeps_at_most_max_files() {
        let dir = std::env::temp_dir().join(format!("ndprelay-dump-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ifaces = vec![
            ("eth0".to_owned(), Some(Mac([2, 0, 0, 0, 0, 1]))),
            ("br0".to_owned(), None),
        ];
        let mut dump = RotatingDump::new(&dir, ifaces, 1000, 3).unwrap();
        for i in 0..100u64 {
            dump.write((i % 2) as u32, StdDuration::from_millis(i), &[0xaa; 90])
                .unwrap();
        }
        dump.rotate().unwrap();
        let kept: Vec<_> = dump.files().map(Path::to_owned).collect();
        assert_eq!(kept.len(), 3);
        let on_disk = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(on_disk, 3, "old files must be removed");
        for f in &kept {
            let len = std::fs::metadata(f).unwrap().len();
            assert!(len < 1000 + 200 + 256, "{} is {len} bytes", f.display());
        }
        let seq = |p: &PathBuf| -> u64 {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.trim_end_matches(".pcapng")
                .rsplit('-')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let seqs: Vec<u64> = kept.iter().map(seq).collect();
        assert!(
            seqs[0] > 0,
            "the oldest files must be the ones removed: {seqs:?}"
        );
        assert_eq!(
            seqs,
            vec![seqs[0], seqs[0] + 1, seqs[0] + 2],
            "the newest files are kept"
        );
        assert_eq!(
            seqs[2] + 1,
            dump.sequence,
            "the last file kept is the last written"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rescales_by_tsresol() {
        let raw = StdDuration::from_nanos(1_500_000);
        assert_eq!(
            timestamp_from_units(raw, None),
            StdDuration::from_millis(1_500)
        );
        assert_eq!(
            timestamp_from_units(raw, Some(9)),
            StdDuration::from_micros(1_500)
        );
        assert_eq!(
            timestamp_from_units(StdDuration::from_nanos(1024), Some(0x80 | 10)),
            StdDuration::from_secs(1)
        );
    }

    fn fresh_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ndprelay-dump-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn first_name(dump: &RotatingDump) -> PathBuf {
        dump.dir
            .join(format!("ndprelay-{}-000000.pcapng", dump.run))
    }

    fn one_port() -> Vec<(String, Option<Mac>)> {
        vec![("eth0".to_owned(), None)]
    }

    #[test]
    fn a_symlink_at_the_dump_name_is_not_followed() {
        let dir = fresh_dir("symlink");
        let victim = dir.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let mut dump = RotatingDump::new(&dir, one_port(), 1 << 20, 4).unwrap();
        let planted = first_name(&dump);
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        dump.write(0, StdDuration::ZERO, &[0xaa; 60]).unwrap();
        dump.rotate().unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(
            std::fs::symlink_metadata(&planted)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let written: Vec<_> = dump.files().map(Path::to_owned).collect();
        assert_eq!(written.len(), 1);
        assert_ne!(written[0], planted, "the taken name is skipped");
        assert!(std::fs::metadata(&written[0]).unwrap().len() > 60);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_existing_file_at_the_dump_name_is_not_truncated() {
        let dir = fresh_dir("existing");
        let mut dump = RotatingDump::new(&dir, one_port(), 1 << 20, 4).unwrap();
        let taken = first_name(&dump);
        std::fs::write(&taken, b"someone else's").unwrap();
        dump.write(0, StdDuration::ZERO, &[0xaa; 60]).unwrap();
        dump.rotate().unwrap();
        assert_eq!(std::fs::read(&taken).unwrap(), b"someone else's");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dump_files_are_mode_0600_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = fresh_dir("mode");
        for mask in [0o000, 0o022, 0o277] {
            let mut dump = RotatingDump::new(&dir, one_port(), 1 << 20, 4).unwrap();
            // Process-wide: restored at once, and no other test here depends on it.
            let old = crate::live::sys::umask(mask);
            let r = dump.write(0, StdDuration::ZERO, &[0xaa; 60]);
            crate::live::sys::umask(old);
            r.unwrap();
            dump.rotate().unwrap();
            let f = dump.files().next().unwrap().to_owned();
            let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "umask {mask:o}: {}", f.display());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn two_runs_in_one_dir_write_distinct_files() {
        let dir = fresh_dir("runs");
        let mut contents = Vec::new();
        for run in 0..2u8 {
            let mut dump = RotatingDump::new(&dir, one_port(), 1 << 20, 4).unwrap();
            dump.write(0, StdDuration::ZERO, &[run; 60]).unwrap();
            dump.rotate().unwrap();
            contents.push(std::fs::read(dump.files().next().unwrap()).unwrap());
        }
        let mut on_disk: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        assert_eq!(on_disk.len(), 2, "the second run kept the first's file");
        on_disk.sort();
        contents.sort();
        assert_eq!(
            on_disk, contents,
            "each file still holds its own run's frame"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
