//! Why a frame was dropped: one enum, one counter (`drop_<name>`) per variant.
//!
//! The wire layer rejects frames that break RFC 4861/6980/7113 rules; the engine drops
//! valid frames that policy or state forbids relaying. Both use this one enum, like the
//! kernel's `SKB_DROP_REASON_IPV6_NDISC_*`, so every counter name is listed here.

use std::fmt;

macro_rules! drop_reasons {
    ($( $(#[doc = $doc:literal])* $variant:ident => $name:literal, )+) => {
        /// A named reason for dropping a frame; `name()` is the counter suffix.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum DropReason {
            $( $(#[doc = $doc])* $variant, )+
        }

        impl DropReason {
            /// Every reason, in declaration order (counter tables index by this).
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)+];

            /// The counter name without the `drop_` prefix, e.g. `hop_limit`.
            pub const fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)+ }
            }
        }
    };
}

drop_reasons! {
    // --- wire: framing and IPv6 ---
    /// Frame shorter than its headers claim, or IPv6 Payload Length beyond the frame.
    Truncated => "truncated",
    /// IPv6 version field is not 6.
    BadIpVersion => "bad_ip_version",
    /// The frame carries an 802.1Q/802.1ad VLAN tag: no port serves a VLAN (a VLAN is
    /// relayed by making its VLAN sub-interface the port), so tagged ND is never relayed.
    VlanTagged => "vlan_tagged",
    /// ND inside a packet with a Fragment header (RFC 6980 §5).
    FragNd => "frag_nd",
    /// ND behind extension headers, or an unknown Next Header in the chain (RFC 7113).
    ExtHdrNd => "ext_hdr_nd",
    /// Source address is multicast (never valid).
    McastSource => "mcast_source",
    /// Source or destination is the loopback address `::1` (RFC 4291 §2.5.3).
    LoopbackAddr => "loopback_addr",
    /// Multicast destination of reserved (0) or interface-local (1) scope (RFC 4291 §2.7
    /// and its erratum 3480): never valid from another node.
    McastDstScope => "mcast_dst_scope",
    // --- wire: ICMPv6 / RFC 4861 validity ---
    /// IPv6 Hop Limit is not 255 (RFC 4861 §6.1, §7.1, §8.1).
    HopLimit => "hop_limit",
    /// ICMPv6 checksum does not verify.
    BadCsum => "bad_csum",
    /// ICMP Code is not 0.
    BadCode => "bad_code",
    /// ICMP length below the message minimum (RS 8, RA 16, NS/NA 24, Redirect 40).
    TooShort => "too_short",
    /// NS/NA target (or Redirect destination) is multicast.
    McastTarget => "mcast_target",
    /// DAD NS (source ::) not sent to a solicited-node multicast address.
    DadBadDst => "dad_bad_dst",
    /// Unspecified source with a source link-layer address option (NS or RS).
    DadSlla => "dad_slla",
    /// NA with the Solicited flag sent to a multicast destination.
    McastSolicited => "mcast_solicited",
    /// An option with length 0.
    OptLen0 => "opt_len0",
    /// An option that runs past the end of the message.
    OptOverrun => "opt_overrun",
    /// Bytes after the last option that do not form an option.
    OptTrailing => "opt_trailing",
    /// SLLA/TLLA option whose length is not one unit (8 octets) on Ethernet.
    BadLlaLen => "bad_lla_len",
    /// Two link-layer address options of the same type that disagree.
    DupLla => "dup_lla",
    /// Link-layer address option carrying a multicast/broadcast MAC.
    McastLla => "mcast_lla",
    /// RA options with a length their type forbids (PIO, MTU, RIO, RDNSS, DNSSL).
    BadOptLen => "bad_opt_len",
    /// RA source is not link-local.
    RaSrcNotLl => "ra_src_not_ll",
    /// Redirect source is not link-local.
    RedirectSrcNotLl => "redirect_src_not_ll",
    /// Redirect Destination Address is multicast.
    RedirectMcastDst => "redirect_mcast_dst",
    /// Redirect target is neither link-local nor equal to the Destination.
    RedirectBadTarget => "redirect_bad_target",
    // --- engine: policy and state ---
    /// Source MAC or a link-layer option is one of the relay's own MACs.
    LoopSuspect => "loop_suspect",
    /// An NA on the uplink claims an address bound on a downstream port.
    UplinkClaimsGuest => "uplink_claims_guest",
    /// A Router Advertisement arrived on a downstream port.
    RogueRa => "rogue_ra",
    /// An RA with the Proxy (P) bit set: another proxy is on that link.
    RaPBit => "ra_p_bit",
    /// A Redirect arrived on a downstream port (hosts never send Redirects).
    RedirectFromDownstream => "redirect_from_downstream",
    /// A Redirect from a source that is not a router seen on the uplink.
    RedirectUnknownRouter => "redirect_unknown_router",
    /// From a sender quarantined on this port: it sent an RA with the P bit, so it is
    /// another proxy (or poses as one), and relaying its frames could close a loop.
    Quarantined => "quarantined",
    /// Target not covered by any configured prefix rule.
    NotProxied => "not_proxied",
    /// The ingress or egress port is down or has proxying disabled (RFC 4389 §4.1.3.3).
    PortDisabled => "port_disabled",
    /// A per-port or global token bucket refused the relay.
    RateLimited => "rate_limited",
    /// The binding or pending table is full of entries that may not be evicted.
    TableFull => "table_full",
    /// After rewriting, the frame would exceed the egress MTU (never fragmented).
    MtuExceeded => "mtu_exceeded",
    /// The only egress would be the ingress port.
    IngressPort => "ingress_port",
    /// An NA that no relayed solicitation is waiting for and that updates nothing.
    Unsolicited => "unsolicited",
    /// Unicast data for an address with no usable binding (userspace forwarding).
    NoBinding => "no_binding",
    /// NS for a target that recently failed to answer (short negative cache).
    NegativeCache => "negative_cache",
    /// Data held for an unresolved destination that never answered (userspace forwarding).
    ResolutionFailed => "resolution_failed",
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_snake_case() {
        let mut seen = HashSet::new();
        for r in DropReason::ALL {
            assert!(seen.insert(r.name()), "duplicate counter name {}", r.name());
            assert!(
                r.name()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
            );
        }
    }
}
