//! The keys and values of the in-kernel programs' hash maps, as `#[repr(C)]` structs: the
//! loaders (`kernel_answer.rs`, `kernel_relay.rs`) write them, the programs read them at
//! the offsets `offset_of!` gives, and the daemon reads back `handled`, the kernel's
//! word on which frames a program answered or relayed with an entry.
//!
//! Every number is in native byte order (the programs load and store them as they are);
//! addresses and MACs are wire bytes. Each struct's doc gives the C it stands for.

use std::mem::{offset_of, size_of};
use std::net::Ipv6Addr;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::wire::Mac;

/// The key of the fast-path map and of the NS relay map: the port a frame arrived on
/// and the target it asks for.
///
/// ```c
/// struct port_target { __s32 ifindex; struct in6_addr target; };
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoBytes, Immutable)]
pub struct PortTarget {
    /// The ingress port (`__sk_buff->ifindex`).
    pub ifindex: i32,
    /// The ND target address.
    pub target: [u8; 16],
}

impl PortTarget {
    /// Its size in the map.
    pub const SIZE: usize = size_of::<Self>();

    /// The key for `target` arriving on `ifindex`.
    pub fn new(ifindex: i32, target: Ipv6Addr) -> Self {
        Self {
            ifindex,
            target: target.octets(),
        }
    }

    /// The bytes the map stores.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        zerocopy::transmute!(self)
    }
}

/// The key of the NA relay map: the guest's port, the target, and the solicitor the NA
/// is for (its IPv6 destination).
///
/// ```c
/// struct na_key { struct port_target ingress; struct in6_addr solicitor; };
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoBytes, Immutable)]
pub struct NaKey {
    /// The NA's ingress port and target.
    pub ingress: PortTarget,
    /// The NA's IPv6 destination.
    pub solicitor: [u8; 16],
}

impl NaKey {
    /// Its size in the map.
    pub const SIZE: usize = size_of::<Self>();

    /// The bytes the map stores.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        zerocopy::transmute!(self)
    }
}

/// A MAC padded to 8 bytes, so what follows is aligned.
///
/// ```c
/// struct mac { __u8 addr[6]; __u8 pad[2]; };
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, IntoBytes, Immutable)]
pub struct PaddedMac {
    /// The address.
    pub addr: [u8; 6],
    /// Zero.
    pub pad: [u8; 2],
}

impl From<Mac> for PaddedMac {
    fn from(mac: Mac) -> Self {
        Self {
            addr: mac.0,
            pad: [0; 2],
        }
    }
}

/// How many of the frames a program handled with one entry the entry remembers.
pub const HANDLED_RING: usize = 8;

/// The receive timestamps (`__sk_buff->tstamp`) of the last [`HANDLED_RING`] frames a
/// program answered or relayed with an entry, 0 in slots not yet used: the engine asks
/// about a frame after the program acted on it, and meanwhile the program may have
/// handled later frames for the same target (a backed-up capture queue, an asker that
/// repeats itself). One slot would forget the earlier frame and the engine would do its
/// work again; a ring remembers the last few.
///
/// ```c
/// struct handled {
///     __u32 next;                    /* the slot the next frame's stamp goes to, mod 8 */
///     __u32 pad;
///     __u64 tstamp[HANDLED_RING];
/// };
/// ```
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
pub struct Handled {
    /// Where the next stamp goes (taken modulo [`HANDLED_RING`]).
    pub next: u32,
    /// Zero.
    pub pad: u32,
    /// The stamps.
    pub tstamp: [u64; HANDLED_RING],
}

impl Handled {
    /// Whether the frame received at `rx_tstamp_ns` is one of them (never for 0, which
    /// marks an unused slot and a frame without a timestamp).
    pub fn contains(&self, rx_tstamp_ns: u64) -> bool {
        rx_tstamp_ns != 0 && self.tstamp.contains(&rx_tstamp_ns)
    }

    /// The last frame's stamp, if any (for tests and logs).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn last(&self) -> Option<u64> {
        let i = (self.next as usize + HANDLED_RING - 1) % HANDLED_RING;
        Some(self.tstamp[i]).filter(|&t| t != 0)
    }

    /// Records a frame as the programs do (for tests of the ring's users).
    #[cfg(test)]
    pub fn push(&mut self, rx_tstamp_ns: u64) {
        self.tstamp[self.next as usize % HANDLED_RING] = rx_tstamp_ns;
        self.next = self.next.wrapping_add(1);
    }
}

/// A fast-path entry: answer an NS for the key's target with this MAC until `expiry_ns`.
///
/// ```c
/// struct answer_value {
///     struct mac mac;        /* Ethernet source and TLLA of the NA */
///     __u64 expiry_ns;       /* bpf_ktime_get_ns() up to which it answers */
///     struct handled handled; /* the last NS it answered */
/// };
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, IntoBytes, Immutable)]
pub struct AnswerValue {
    /// The MAC to answer with.
    pub mac: PaddedMac,
    /// `CLOCK_MONOTONIC` nanoseconds after which the entry is not used.
    pub expiry_ns: u64,
    /// The last frames the program answered with this entry.
    pub handled: Handled,
}

/// An NS relay entry: relay an NS for the key's target to `guest_mac` out of `egress`.
///
/// ```c
/// struct ns_relay_value {
///     struct mac our_mac;    /* Ethernet source and SLLA of the relayed NS */
///     struct mac guest_mac;  /* its Ethernet destination */
///     __s32 egress;          /* bpf_redirect() here */
///     __u32 pad;
///     __u64 expiry_ns;
///     struct handled handled;  /* the last NS it relayed */
/// };
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, IntoBytes, Immutable)]
pub struct NsRelayValue {
    /// Our MAC on the egress port.
    pub our_mac: PaddedMac,
    /// The guest's MAC.
    pub guest_mac: PaddedMac,
    /// The guest's port.
    pub egress: i32,
    /// Zero.
    pub pad: u32,
    /// As in [`AnswerValue`].
    pub expiry_ns: u64,
    /// As in [`AnswerValue`], for the NS relayed.
    pub handled: Handled,
}

/// An NA relay entry: relay the guest's NA for the key's target and solicitor back to
/// `solicitor_mac` out of `egress`, if it comes from `guest_mac`.
///
/// ```c
/// struct na_relay_value {
///     struct mac our_mac;        /* Ethernet source and TLLA of the relayed NA */
///     struct mac solicitor_mac;  /* its Ethernet destination */
///     struct mac guest_mac;      /* the NA's Ethernet source and TLLA must be this */
///     __s32 egress;
///     __u32 pad;
///     __u64 expiry_ns;
///     struct handled handled;    /* the last NA it relayed */
/// };
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, IntoBytes, Immutable)]
pub struct NaRelayValue {
    /// Our MAC on the egress port.
    pub our_mac: PaddedMac,
    /// The solicitor's MAC.
    pub solicitor_mac: PaddedMac,
    /// The guest's MAC.
    pub guest_mac: PaddedMac,
    /// The solicitor's port.
    pub egress: i32,
    /// Zero.
    pub pad: u32,
    /// As in [`AnswerValue`].
    pub expiry_ns: u64,
    /// As in [`AnswerValue`], for the NA relayed.
    pub handled: Handled,
}

/// A map value: its bytes, and where in them the expiry and the handled ring are.
pub trait MapValue: IntoBytes + Immutable {
    /// Its size in the map.
    const SIZE: usize;
    /// Offset of `expiry_ns`.
    const EXPIRY_AT: usize;
    /// Offset of `handled` ([`Handled`]).
    const HANDLED_AT: usize;

    /// The bytes the map stores.
    fn to_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }

    /// When it stops being used.
    fn expiry_ns(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.as_bytes()[Self::EXPIRY_AT..Self::EXPIRY_AT + 8]);
        u64::from_ne_bytes(b)
    }
}

/// The three offsets of a value type with `expiry_ns` and `handled` fields.
macro_rules! map_value {
    ($t:ty) => {
        impl MapValue for $t {
            const SIZE: usize = size_of::<Self>();
            const EXPIRY_AT: usize = offset_of!(Self, expiry_ns);
            const HANDLED_AT: usize = offset_of!(Self, handled);
        }
    };
}
map_value!(AnswerValue);
map_value!(NsRelayValue);
map_value!(NaRelayValue);

/// The offset of a field as the programs' `off` operand (checked when the constant is
/// evaluated: every struct here is far smaller than `i16::MAX`).
pub(super) const fn off(at: usize) -> i16 {
    assert!(
        at <= i16::MAX as usize,
        "an offset beyond the instruction's i16"
    );
    at as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_the_ones_the_programs_were_written_against() {
        assert_eq!(PortTarget::SIZE, 20);
        assert_eq!(NaKey::SIZE, 36);
        assert_eq!(size_of::<Handled>(), 8 + 8 * HANDLED_RING);
        assert_eq!(offset_of!(Handled, tstamp), 8);
        assert_eq!(<AnswerValue as MapValue>::SIZE, 16 + 72);
        assert_eq!(<NsRelayValue as MapValue>::SIZE, 32 + 72);
        assert_eq!(<NaRelayValue as MapValue>::SIZE, 40 + 72);
        assert_eq!(offset_of!(NsRelayValue, egress), 16);
        assert_eq!(offset_of!(NaRelayValue, egress), 24);
        assert_eq!(<NaRelayValue as MapValue>::HANDLED_AT, 40);
    }

    #[test]
    fn bytes_put_each_field_at_its_offset() {
        let key = NaKey {
            ingress: PortTarget::new(7, "2001:db8::1".parse().unwrap()),
            solicitor: "fe80::1".parse::<Ipv6Addr>().unwrap().octets(),
        };
        let b = key.to_bytes();
        assert_eq!(b[..4], 7i32.to_ne_bytes());
        assert_eq!(b[4..20], key.ingress.target);
        assert_eq!(b[20..], key.solicitor);
        let v = NsRelayValue {
            our_mac: Mac([1, 2, 3, 4, 5, 6]).into(),
            guest_mac: Mac([7, 8, 9, 10, 11, 12]).into(),
            egress: 9,
            pad: 0,
            expiry_ns: 0x0102_0304_0506_0708,
            handled: Handled {
                next: 1,
                tstamp: [42, 0, 0, 0, 0, 0, 0, 0],
                ..Handled::default()
            },
        };
        let b = v.to_bytes();
        assert_eq!(b[..8], [1, 2, 3, 4, 5, 6, 0, 0]);
        assert_eq!(b[8..16], [7, 8, 9, 10, 11, 12, 0, 0]);
        assert_eq!(b[16..20], 9i32.to_ne_bytes());
        assert_eq!(b[24..32], v.expiry_ns.to_ne_bytes());
        assert_eq!(b[32..36], 1u32.to_ne_bytes());
        assert_eq!(b[40..48], 42u64.to_ne_bytes());
        assert_eq!(b[48..], [0; 56]);
    }

    #[test]
    fn the_ring_remembers_the_last_eight_frames() {
        let mut h = Handled::default();
        assert_eq!(h.last(), None);
        assert!(!h.contains(0), "0 is an unused slot, never a frame");
        for t in 1..=10 {
            h.push(t);
        }
        assert_eq!(h.last(), Some(10));
        assert!((3..=10).all(|t| h.contains(t)), "{h:?}");
        assert!(!h.contains(2) && !h.contains(1), "pushed out");
        assert!(!h.contains(0));
    }
}
