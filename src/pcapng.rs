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
        let err = |message: String| PcapNgError {
            path: path.to_owned(),
            message,
        };
        let file = File::create(path).map_err(|e| err(e.to_string()))?;
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
/// `ndprelay-NNNNNN.pcapng`, each at most `max_file_bytes` of packets, the oldest removed
/// once there are more than `max_files`. Every file repeats the interface descriptions,
/// so any one of them replays on its own.
pub struct RotatingDump {
    dir: PathBuf,
    interfaces: Vec<(String, Option<Mac>)>,
    max_file_bytes: u64,
    max_files: usize,
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
        Ok(Self {
            dir: dir.to_owned(),
            interfaces,
            max_file_bytes: max_file_bytes.max(1),
            max_files: max_files.max(1),
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
            let path = self
                .dir
                .join(format!("ndprelay-{:06}.pcapng", self.sequence));
            self.sequence += 1;
            self.current = Some(PcapNgFile::create(&path, &self.interfaces)?);
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
            name.trim_start_matches("ndprelay-")
                .trim_end_matches(".pcapng")
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
}
