//! Capture files in: pcap or pcapng, one per port or one pcapng whose interface names are
//! the port names, merged into one stream ordered by timestamp.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{
    Block, PcapNgReader, blocks::interface_description::InterfaceDescriptionOption,
};

use crate::engine::PortId;
use crate::pcapng::timestamp_from_units;
use crate::wire::Mac;

/// A pcapng interface: which port it is and how to read its timestamps.
#[derive(Debug, Clone, Copy)]
struct Interface {
    port: Option<PortId>,
    tsresol: Option<u8>,
    mac: Option<Mac>,
}

/// One frame read from a capture.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CapturedFrame {
    /// Capture timestamp (since the Unix epoch).
    pub timestamp: StdDuration,
    /// Port it was captured on.
    pub port: PortId,
    /// The Ethernet frame.
    pub data: Vec<u8>,
    /// Which input file (index into the inputs).
    pub input: usize,
    /// 1-based frame number within that file, as Wireshark counts.
    pub number: u64,
}

/// A problem with one input; replay reports it and goes on with the other frames.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file cannot be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not a pcap or pcapng file.
    #[error(
        "{path}: not a pcap or pcapng file (magic {magic:02x?}); capture with `tcpdump -w FILE`"
    )]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// Its first bytes.
        magic: Vec<u8>,
    },
    /// The capture's link type is not Ethernet.
    #[error(
        "{path}: link type {linktype:?} is not Ethernet; capture on the port itself \
         (`tcpdump -i br0 -w FILE`), not on `any`"
    )]
    LinkType {
        /// The file.
        path: PathBuf,
        /// Its link type.
        linktype: DataLink,
    },
    /// A corrupt or truncated record; the rest of that file is skipped.
    #[error("{path}: frame {number}: {message}; the rest of this file is skipped")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The frame number where reading failed.
        number: u64,
        /// What was wrong.
        message: String,
    },
    /// A pcapng interface whose name is not a configured port; its frames are skipped.
    #[error(
        "{path}: interface {name:?} is not a port in the config (ports: {ports}); its frames are skipped"
    )]
    UnknownInterface {
        /// The file.
        path: PathBuf,
        /// The interface name.
        name: String,
        /// The configured port names.
        ports: String,
    },
}

enum Reader {
    Pcap(PcapReader<BufReader<File>>),
    PcapNg(PcapNgReader<BufReader<File>>),
}

/// Frames of one input file, in file order.
pub struct Source {
    path: PathBuf,
    input: usize,
    reader: Option<Reader>,
    /// The port for a per-port file; `None` for a pcapng carrying interface names.
    port: Option<PortId>,
    /// Each pcapng interface seen so far.
    interfaces: Vec<Interface>,
    number: u64,
    /// A frame buffer handed back with [`Source::recycle`], reused for the next frame.
    spare: Vec<u8>,
}

impl Source {
    /// Opens `path`. With `port`, every frame belongs to that port; without, the file must
    /// be pcapng and its interface names are looked up in `ports` (name → id).
    pub fn open(path: &Path, input: usize, port: Option<PortId>) -> Result<Self, InputError> {
        let io = |source| InputError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let mut magic = [0u8; 4];
        let n = file.read(&mut magic).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let corrupt = |e: pcap_file::PcapError| InputError::Corrupt {
            path: path.to_owned(),
            number: 0,
            message: format!("bad file header: {e}"),
        };
        let reader = match magic {
            [0x0a, 0x0d, 0x0d, 0x0a] => {
                Reader::PcapNg(PcapNgReader::new(BufReader::new(file)).map_err(corrupt)?)
            }
            [0xa1, 0xb2, 0xc3, 0xd4]
            | [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
            | [0x4d, 0x3c, 0xb2, 0xa1] => {
                let reader = PcapReader::new(BufReader::new(file)).map_err(corrupt)?;
                let linktype = reader.header().datalink;
                if linktype != DataLink::ETHERNET {
                    return Err(InputError::LinkType {
                        path: path.to_owned(),
                        linktype,
                    });
                }
                if port.is_none() {
                    return Err(InputError::Corrupt {
                        path: path.to_owned(),
                        number: 0,
                        message: "a pcap file has no interface names: give it as PORT=FILE".into(),
                    });
                }
                Reader::Pcap(reader)
            }
            _ => {
                return Err(InputError::UnknownFormat {
                    path: path.to_owned(),
                    magic: magic[..n].to_vec(),
                });
            }
        };
        Ok(Self {
            path: path.to_owned(),
            input,
            reader: Some(reader),
            port,
            interfaces: Vec::new(),
            number: 0,
            spare: Vec::new(),
        })
    }

    /// The next frame, `Ok(None)` at the end; after an error the source is exhausted.
    pub fn next_frame(
        &mut self,
        ports: &HashMap<String, PortId>,
        warnings: &mut Vec<InputError>,
    ) -> Result<Option<CapturedFrame>, InputError> {
        loop {
            let number = self.number + 1;
            let item = match self.reader.as_mut() {
                None => return Ok(None),
                Some(Reader::Pcap(r)) => match r.next_packet() {
                    None => Item::End,
                    Some(Err(e)) => Item::Error(e),
                    Some(Ok(p)) => Item::Packet(p.timestamp, None, reuse(&mut self.spare, &p.data)),
                },
                Some(Reader::PcapNg(r)) => match r.next_block() {
                    None => Item::End,
                    Some(Err(e)) => Item::Error(e),
                    Some(Ok(Block::InterfaceDescription(idb))) => {
                        let (mut name, mut tsresol, mut mac) = (None, None, None);
                        for option in &idb.options {
                            match option {
                                InterfaceDescriptionOption::IfName(n) => name = Some(n.to_string()),
                                InterfaceDescriptionOption::IfTsResol(r) => tsresol = Some(*r),
                                InterfaceDescriptionOption::IfMacAddr(m) => {
                                    mac = <[u8; 6]>::try_from(m.as_ref()).ok().map(Mac);
                                }
                                _ => {}
                            }
                        }
                        Item::Interface {
                            linktype: idb.linktype,
                            name,
                            tsresol,
                            mac,
                        }
                    }
                    Some(Ok(Block::EnhancedPacket(epb))) => {
                        let data = reuse(&mut self.spare, &epb.data);
                        Item::Packet(epb.timestamp, Some(epb.interface_id), data)
                    }
                    Some(Ok(Block::SimplePacket(spb))) => Item::Packet(
                        StdDuration::ZERO,
                        Some(0),
                        reuse(&mut self.spare, &spb.data),
                    ),
                    Some(Ok(_)) => Item::Other,
                },
            };
            match item {
                Item::End => {
                    self.reader = None;
                    return Ok(None);
                }
                Item::Error(e) => {
                    self.reader = None;
                    return Err(InputError::Corrupt {
                        path: self.path.clone(),
                        number,
                        message: e.to_string(),
                    });
                }
                Item::Other => {}
                Item::Interface {
                    linktype,
                    name,
                    tsresol,
                    mac,
                } => {
                    if linktype != DataLink::ETHERNET {
                        self.reader = None;
                        return Err(InputError::LinkType {
                            path: self.path.clone(),
                            linktype,
                        });
                    }
                    let port = self.port.or_else(|| {
                        let name =
                            name.unwrap_or_else(|| format!("interface {}", self.interfaces.len()));
                        let port = ports.get(&name).copied();
                        if port.is_none() {
                            let mut names: Vec<_> = ports.keys().cloned().collect();
                            names.sort();
                            warnings.push(InputError::UnknownInterface {
                                path: self.path.clone(),
                                name,
                                ports: names.join(", "),
                            });
                        }
                        port
                    });
                    self.interfaces.push(Interface { port, tsresol, mac });
                }
                Item::Packet(timestamp, interface, data) => {
                    self.number = number;
                    let (port, timestamp) = match interface {
                        None => (self.port, timestamp),
                        Some(id) => match self.interfaces.get(id as usize) {
                            Some(i) => (i.port, timestamp_from_units(timestamp, i.tsresol)),
                            None => (None, timestamp),
                        },
                    };
                    if let Some(port) = port {
                        return Ok(Some(CapturedFrame {
                            timestamp,
                            port,
                            data,
                            input: self.input,
                            number,
                        }));
                    }
                }
            }
        }
    }

    /// Gives a frame's buffer back once the frame is done with, so the next frame
    /// needs no allocation.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        self.spare = buf;
    }

    /// MACs that the capture's interface descriptions (`if_MACaddr`) give for ports.
    pub fn interface_macs(&self) -> impl Iterator<Item = (PortId, Mac)> + '_ {
        self.interfaces
            .iter()
            .filter_map(|i| Some((i.port?, i.mac?)))
    }
}

/// `data` in the spare buffer (taken), or in a new one.
fn reuse(spare: &mut Vec<u8>, data: &[u8]) -> Vec<u8> {
    let mut buf = std::mem::take(spare);
    buf.clear();
    buf.extend_from_slice(data);
    buf
}

/// What the underlying reader produced, copied out so `self` is free again.
enum Item {
    End,
    Error(pcap_file::PcapError),
    Interface {
        linktype: DataLink,
        name: Option<String>,
        tsresol: Option<u8>,
        mac: Option<Mac>,
    },
    Packet(StdDuration, Option<u32>, Vec<u8>),
    Other,
}
