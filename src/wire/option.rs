//! ND options (RFC 4861 §4.6): a walker over borrowed bytes and a writer for owned ones.

use std::net::Ipv6Addr;

use super::Mac;

/// Option type numbers.
pub mod kind {
    /// Source Link-Layer Address.
    pub const SOURCE_LLA: u8 = 1;
    /// Target Link-Layer Address.
    pub const TARGET_LLA: u8 = 2;
    /// Prefix Information.
    pub const PREFIX_INFO: u8 = 3;
    /// Redirected Header.
    pub const REDIRECTED_HEADER: u8 = 4;
    /// MTU.
    pub const MTU: u8 = 5;
    /// Route Information (RFC 4191).
    pub const ROUTE_INFO: u8 = 24;
    /// Recursive DNS Server (RFC 8106).
    pub const RDNSS: u8 = 25;
    /// DNS Search List (RFC 8106).
    pub const DNSSL: u8 = 31;
}

/// Prefix Information option fields (RFC 4861 §4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrefixInfo {
    /// Prefix length in bits.
    pub prefix_len: u8,
    /// L: on-link.
    pub on_link: bool,
    /// A: autonomous address configuration.
    pub autonomous: bool,
    /// Valid lifetime, seconds.
    pub valid_lifetime: u32,
    /// Preferred lifetime, seconds.
    pub preferred_lifetime: u32,
    /// The prefix.
    pub prefix: Ipv6Addr,
}

/// One option seen while walking a validated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdOption<'a> {
    /// Source link-layer address.
    SourceLla(Mac),
    /// Target link-layer address.
    TargetLla(Mac),
    /// Prefix information.
    PrefixInfo(PrefixInfo),
    /// MTU value.
    Mtu(u32),
    /// Any other option: its type and all of its bytes (type and length included).
    Other {
        /// Option type.
        kind: u8,
        /// The whole option, header included.
        bytes: &'a [u8],
    },
}

/// Walks the options of an already validated message; stops at the first malformed one.
#[derive(Debug, Clone)]
pub struct NdOptionIter<'a> {
    rest: &'a [u8],
}

impl<'a> NdOptionIter<'a> {
    /// Walks `bytes`, which start at the first option.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
}

impl<'a> Iterator for NdOptionIter<'a> {
    type Item = NdOption<'a>;

    /// Known options of an unexpected length come out as [`NdOption::Other`]; a zero
    /// length or an overrun ends the walk (validation has rejected those already).
    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, &units) = match self.rest {
            [kind, units, ..] => (kind, units),
            _ => {
                self.rest = &[];
                return None;
            }
        };
        let len = usize::from(units) * 8;
        if len == 0 || len > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(NdOption::decode(kind, bytes))
    }
}

/// RFC 4861 §4.6: option bodies at fixed offsets from the type/length header.
impl<'a> NdOption<'a> {
    /// Decodes one whole option (`bytes.len()` is its length field times 8).
    fn decode(kind: u8, bytes: &'a [u8]) -> Self {
        match (kind, bytes) {
            (kind::SOURCE_LLA, [_, _, a, b, c, d, e, f]) => {
                Self::SourceLla(Mac([*a, *b, *c, *d, *e, *f]))
            }
            (kind::TARGET_LLA, [_, _, a, b, c, d, e, f]) => {
                Self::TargetLla(Mac([*a, *b, *c, *d, *e, *f]))
            }
            (kind::MTU, [_, _, _, _, a, b, c, d]) => {
                Self::Mtu(u32::from_be_bytes([*a, *b, *c, *d]))
            }
            (kind::PREFIX_INFO, b) if b.len() == 32 => Self::PrefixInfo(PrefixInfo {
                prefix_len: b[2],
                on_link: b[3] & PrefixInfo::FLAG_ON_LINK != 0,
                autonomous: b[3] & PrefixInfo::FLAG_AUTONOMOUS != 0,
                valid_lifetime: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                preferred_lifetime: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
                prefix: Ipv6Addr::from(read16(&b[16..32])),
            }),
            _ => Self::Other { kind, bytes },
        }
    }
}

/// Copies 16 bytes into an array; `b` must be at least 16 bytes long.
pub(crate) fn read16(b: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&b[..16]);
    out
}

impl PrefixInfo {
    /// L flag bit in the flags byte.
    pub const FLAG_ON_LINK: u8 = 0x80;
    /// A flag bit in the flags byte.
    pub const FLAG_AUTONOMOUS: u8 = 0x40;
}

impl From<NdOption<'_>> for OptionRepr {
    fn from(opt: NdOption<'_>) -> Self {
        match opt {
            NdOption::SourceLla(m) => Self::SourceLla(m),
            NdOption::TargetLla(m) => Self::TargetLla(m),
            NdOption::PrefixInfo(p) => Self::PrefixInfo(p),
            NdOption::Mtu(m) => Self::Mtu(m),
            NdOption::Other { bytes, .. } => Self::Raw(bytes.to_vec()),
        }
    }
}

/// An owned option for building messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionRepr {
    /// Source link-layer address.
    SourceLla(Mac),
    /// Target link-layer address.
    TargetLla(Mac),
    /// Prefix information.
    PrefixInfo(PrefixInfo),
    /// MTU value.
    Mtu(u32),
    /// Raw option bytes, copied verbatim (type, length and body; length a multiple of 8).
    Raw(Vec<u8>),
}

impl OptionRepr {
    /// Length on the wire in bytes.
    pub fn buffer_len(&self) -> usize {
        match self {
            Self::SourceLla(_) | Self::TargetLla(_) | Self::Mtu(_) => 8,
            Self::PrefixInfo(_) => 32,
            Self::Raw(b) => b.len(),
        }
    }

    /// Appends the option's bytes to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        match self {
            Self::SourceLla(m) => emit_lla(out, kind::SOURCE_LLA, *m),
            Self::TargetLla(m) => emit_lla(out, kind::TARGET_LLA, *m),
            Self::Mtu(mtu) => {
                out.extend_from_slice(&[kind::MTU, 1, 0, 0]);
                out.extend_from_slice(&mtu.to_be_bytes());
            }
            Self::PrefixInfo(p) => {
                let mut flags = 0;
                if p.on_link {
                    flags |= PrefixInfo::FLAG_ON_LINK;
                }
                if p.autonomous {
                    flags |= PrefixInfo::FLAG_AUTONOMOUS;
                }
                out.extend_from_slice(&[kind::PREFIX_INFO, 4, p.prefix_len, flags]);
                out.extend_from_slice(&p.valid_lifetime.to_be_bytes());
                out.extend_from_slice(&p.preferred_lifetime.to_be_bytes());
                out.extend_from_slice(&[0; 4]);
                out.extend_from_slice(&p.prefix.octets());
            }
            Self::Raw(b) => out.extend_from_slice(b),
        }
    }
}

/// Appends an 8-octet SLLA/TLLA option (Ethernet, RFC 2464 §6).
pub(crate) fn emit_lla(out: &mut Vec<u8>, kind: u8, mac: Mac) {
    out.extend_from_slice(&[kind, 1]);
    out.extend_from_slice(&mac.0);
}
