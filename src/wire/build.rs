//! Building frames: relayed copies of validated ND messages, and originated messages.

use std::net::Ipv6Addr;

use super::Mac;
use super::ndp::{NdMessage, NdPacket};
use super::option::OptionRepr;

/// What to do with one kind of link-layer address option when relaying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LlaRewrite {
    /// Leave every copy as it is.
    #[default]
    Keep,
    /// Replace every copy with this MAC (RFC 4389 §4.1.2).
    Replace(Mac),
    /// Remove every copy (Redirect TLLA, RFC 4389 §4.1.3.4); Payload Length shrinks.
    Remove,
}

/// How [`rewrite`] turns a received ND message into the frame sent on an egress port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite {
    /// Ethernet source (the egress port's MAC).
    pub eth_src: Mac,
    /// Ethernet destination.
    pub eth_dst: Mac,
    /// New IPv6 source, or `None` to keep it.
    pub src_addr: Option<Ipv6Addr>,
    /// New IPv6 destination, or `None` to keep it.
    pub dst_addr: Option<Ipv6Addr>,
    /// Source link-layer address options.
    pub slla: LlaRewrite,
    /// Target link-layer address options.
    pub tlla: LlaRewrite,
    /// Set the RA Proxy (P) bit.
    pub set_proxy_flag: bool,
    /// Clear the L (on-link) flag of every Prefix Information option (needed when the
    /// RA source is replaced by the relay's link-local).
    pub clear_pio_on_link: bool,
    /// Clamp an RA MTU option to at most this value; below 1280 the option is removed.
    pub max_mtu: Option<u32>,
}

/// Writes the relayed frame for `packet` into `out` (cleared first).
///
/// Unknown options are copied byte for byte; Payload Length and the ICMPv6 checksum are
/// recomputed; Hop Limit stays 255.
pub fn rewrite(packet: &NdPacket<'_>, rw: &Rewrite, out: &mut Vec<u8>) {
    let _ = (packet, rw, out);
    todo!("wire::rewrite")
}

/// Builds a complete Ethernet frame carrying an ND message with Hop Limit 255.
pub fn emit_nd(
    eth_src: Mac,
    eth_dst: Mac,
    src_addr: Ipv6Addr,
    dst_addr: Ipv6Addr,
    message: &NdMessage,
    options: &[OptionRepr],
) -> Vec<u8> {
    let _ = (eth_src, eth_dst, src_addr, dst_addr, message, options);
    todo!("wire::emit_nd")
}

/// Builds an Ethernet frame carrying an IPv6 packet with the given next header and payload.
pub fn emit_ipv6(
    eth_src: Mac,
    eth_dst: Mac,
    src_addr: Ipv6Addr,
    dst_addr: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload: &[u8],
) -> Vec<u8> {
    let _ = (
        eth_src,
        eth_dst,
        src_addr,
        dst_addr,
        next_header,
        hop_limit,
        payload,
    );
    todo!("wire::emit_ipv6")
}

/// Builds an ICMPv6 Echo Request (`reply == false`) or Echo Reply frame, hop limit 64.
#[allow(clippy::too_many_arguments)]
pub fn emit_icmpv6_echo(
    eth_src: Mac,
    eth_dst: Mac,
    src_addr: Ipv6Addr,
    dst_addr: Ipv6Addr,
    reply: bool,
    ident: u16,
    seq: u16,
    data: &[u8],
) -> Vec<u8> {
    let _ = (
        eth_src, eth_dst, src_addr, dst_addr, reply, ident, seq, data,
    );
    todo!("wire::emit_icmpv6_echo")
}

/// Builds an ICMPv6 Packet Too Big (RFC 4443 §3.2) quoting as much of `offending` (an
/// IPv6 packet) as fits in 1280 bytes.
pub fn emit_packet_too_big(
    eth_src: Mac,
    eth_dst: Mac,
    src_addr: Ipv6Addr,
    mtu: u32,
    offending: &[u8],
) -> Vec<u8> {
    let _ = (eth_src, eth_dst, src_addr, mtu, offending);
    todo!("wire::emit_packet_too_big")
}
