//! Addresses and numbers pushed straight into a byte buffer, exactly as their `Display`
//! writes them: replay formats several per frame, a million frames a second, and
//! `core::fmt` machinery was most of its time.

use std::io::Write as _;
use std::net::Ipv6Addr;

use crate::wire::Mac;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Pushes ASCII bytes.
fn push_ascii(s: &mut Vec<u8>, bytes: &[u8]) {
    s.extend_from_slice(bytes);
}

/// `mac` as `Mac`'s `Display`: `02:00:5e:10:00:01`.
pub(crate) fn push_mac(s: &mut Vec<u8>, mac: Mac) {
    let mut buf = [b':'; 17];
    for (i, b) in mac.0.iter().enumerate() {
        buf[i * 3] = HEX[usize::from(b >> 4)];
        buf[i * 3 + 1] = HEX[usize::from(b & 0xf)];
    }
    push_ascii(s, &buf);
}

/// `n` in decimal.
pub(crate) fn push_u64(s: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        // n % 10 < 10 fits a u8.
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    push_ascii(s, &buf[i..]);
}

/// `n` in decimal, right-aligned in `width` (spaces) or zero-padded to it.
pub(crate) fn push_u64_width(s: &mut Vec<u8>, n: u64, width: usize, zero: bool) {
    let digits = n.checked_ilog10().map_or(1, |d| d as usize + 1);
    let fill = if zero { b'0' } else { b' ' };
    s.resize(s.len() + width.saturating_sub(digits), fill);
    push_u64(s, n);
}

/// Addresses formatted lately: a listing line names the same address several times
/// (target in the decode, in "relayed", in "binding"), and routers recur across lines.
struct Recent {
    entries: [(Ipv6Addr, u8, [u8; 39]); RECENT],
    next: usize,
}

const RECENT: usize = 8;

thread_local! {
    static RECENT_IPV6: std::cell::RefCell<Recent> = const {
        std::cell::RefCell::new(Recent {
            // Length 0 marks an empty slot (no address formats as nothing).
            entries: [(Ipv6Addr::UNSPECIFIED, 0, [0; 39]); RECENT],
            next: 0,
        })
    };
}

/// `addr` as `Ipv6Addr`'s `Display` (RFC 5952: the first longest run of two or more
/// zero groups becomes `::`; IPv4-mapped addresses end in dotted decimal).
pub(crate) fn push_ipv6(s: &mut Vec<u8>, addr: Ipv6Addr) {
    RECENT_IPV6.with(|recent| {
        let Ok(mut recent) = recent.try_borrow_mut() else {
            return format_ipv6(s, addr);
        };
        if let Some((_, len, text)) = recent
            .entries
            .iter()
            .find(|(a, len, _)| *len > 0 && *a == addr)
        {
            s.extend_from_slice(&text[..usize::from(*len)]);
            return;
        }
        let start = s.len();
        format_ipv6(s, addr);
        let text = &s[start..];
        if let (Ok(len), true) = (u8::try_from(text.len()), text.len() <= 39) {
            let slot = recent.next;
            recent.next = (slot + 1) % RECENT;
            let entry = &mut recent.entries[slot];
            entry.0 = addr;
            entry.1 = len;
            entry.2[..text.len()].copy_from_slice(text);
        }
    });
}

fn format_ipv6(s: &mut Vec<u8>, addr: Ipv6Addr) {
    if addr.to_ipv4_mapped().is_some() {
        // Rare in ND; the standard formatting covers its special form.
        let _ = write!(s, "{addr}");
        return;
    }
    let seg = addr.segments();
    let (mut run_start, mut run_len, mut cur_start, mut cur_len) = (0, 0, 0, 0);
    for (i, g) in seg.iter().enumerate() {
        if *g == 0 {
            if cur_len == 0 {
                cur_start = i;
            }
            cur_len += 1;
            if cur_len > run_len {
                (run_start, run_len) = (cur_start, cur_len);
            }
        } else {
            cur_len = 0;
        }
    }
    if run_len < 2 {
        run_start = usize::MAX;
    }
    let run_end = run_start.saturating_add(run_len);
    // 8 groups of 4 digits and 7 colons at most, and room for a whole group's 4 bytes
    // stored at the last position.
    let mut buf = [0u8; 42];
    let mut n = 0;
    for (i, &g) in seg.iter().enumerate() {
        if i == run_start {
            buf[n..n + 2].copy_from_slice(b"::");
            n += 2;
            continue;
        }
        if i > run_start && i < run_end {
            continue;
        }
        if i > 0 && i != run_end {
            buf[n] = b':';
            n += 1;
        }
        // All four digits at once (one nibble per byte, then to ASCII), shifted so the
        // significant ones come first; one 4-byte store.
        let digits = (16 - g.leading_zeros()).div_ceil(4).max(1);
        let x = u32::from(g);
        let nibbles = ((x & 0xf000) << 12) | ((x & 0x0f00) << 8) | ((x & 0x00f0) << 4) | (x & 0xf);
        let letters = ((nibbles + 0x0606_0606) >> 4) & 0x0101_0101;
        let hex = (nibbles + 0x3030_3030 + letters * 0x27) << (8 * (4 - digits));
        buf[n..n + 4].copy_from_slice(&hex.to_be_bytes());
        n += digits as usize;
    }
    push_ascii(s, &buf[..n]);
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn addresses_read_as_display_writes_them() {
        let mut rng = 0x1234_5678_9abc_def1u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        // Every pattern of zero groups, with values of every width in the others.
        for mask in 0u32..256 {
            for _ in 0..8 {
                let mut seg = [0u16; 8];
                for (i, g) in seg.iter_mut().enumerate() {
                    if mask & (1 << i) != 0 {
                        let bits = next();
                        *g = (bits as u16) >> (bits >> 60);
                    }
                }
                let addr = Ipv6Addr::from(seg);
                let mut s = Vec::new();
                push_ipv6(&mut s, addr);
                assert_eq!(
                    String::from_utf8(s.clone()).unwrap(),
                    addr.to_string(),
                    "{seg:x?}"
                );
            }
        }
        for a in [
            "::",
            "::1",
            "::ffff:192.0.2.1",
            "fe80::1",
            "2001:db8::1:0:0:1",
        ] {
            let addr: Ipv6Addr = a.parse().unwrap();
            let mut s = Vec::new();
            push_ipv6(&mut s, addr);
            assert_eq!(String::from_utf8(s.clone()).unwrap(), addr.to_string());
        }
    }

    #[test]
    fn macs_and_numbers_read_as_display_writes_them() {
        let mac = Mac([0x02, 0x00, 0x5e, 0xab, 0xcd, 0xef]);
        let mut s = Vec::new();
        push_mac(&mut s, mac);
        assert_eq!(String::from_utf8(s.clone()).unwrap(), mac.to_string());
        for n in [0, 7, 10, 99, 100, 123_456, 1_000_000, u64::MAX] {
            let mut s = Vec::new();
            push_u64(&mut s, n);
            assert_eq!(String::from_utf8(s.clone()).unwrap(), n.to_string());
            let mut s = Vec::new();
            push_u64_width(&mut s, n, 7, false);
            assert_eq!(String::from_utf8(s.clone()).unwrap(), format!("{n:>7}"));
            let mut s = Vec::new();
            push_u64_width(&mut s, n, 6, true);
            assert_eq!(String::from_utf8(s.clone()).unwrap(), format!("{n:06}"));
        }
    }
}
