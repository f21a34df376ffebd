//! One pcapng file per segment, for tshark and Wireshark.
//!
//! `pcap-file` 2 writes Enhanced Packet timestamps in nanoseconds, so every interface
//! declares `if_tsresol = 9`; without it readers assume microseconds.

use std::borrow::Cow;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};

use super::SimError;
use super::link::Segment;

/// Writes `DIR/<segment>.pcapng` for every segment that has a capture; returns the paths.
pub fn write_all(dir: &Path, segments: &[Segment]) -> Result<Vec<PathBuf>, SimError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SimError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    for seg in segments {
        let Some(frames) = &seg.capture else {
            continue;
        };
        let path = dir.join(format!("{}.pcapng", seg.name));
        let pcap = |e: pcap_file::PcapError| SimError::Capture {
            path: path.clone(),
            message: e.to_string(),
        };
        let file = File::create(&path).map_err(io(&path))?;
        let mut w = PcapNgWriter::new(BufWriter::new(file)).map_err(pcap)?;
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0xffff,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Borrowed(&seg.name)),
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        })
        .map_err(pcap)?;
        for (at, frame) in frames {
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: std::time::Duration::from_micros(at.total_micros()),
                original_len: u32::try_from(frame.len()).unwrap_or(u32::MAX),
                data: Cow::Borrowed(frame),
                options: vec![],
            })
            .map_err(pcap)?;
        }
        let mut inner = w.into_inner();
        std::io::Write::flush(&mut inner).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}
