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

    /// Flushes and closes the file.
    pub fn finish(self) -> Result<(), PcapNgError> {
        let path = self.path;
        self.writer.into_inner().flush().map_err(|e| PcapNgError {
            path,
            message: e.to_string(),
        })
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
