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
    fn next(&mut self) -> Option<Self::Item> {
        let _ = &self.rest;
        todo!("wire::NdOptionIter::next")
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
