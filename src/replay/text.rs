//! Addresses and numbers pushed straight into a `String`, exactly as their `Display`
//! writes them: replay formats several per frame, a million frames a second, and
//! `core::fmt` machinery was most of its time.

use std::fmt::Write as _;
use std::net::Ipv6Addr;

use crate::wire::Mac;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Pushes ASCII bytes (every caller builds them from `HEX`, digits and `:`).
fn push_ascii(s: &mut String, bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        s.push_str(text);
    }
}

/// `mac` as `Mac`'s `Display`: `02:00:5e:10:00:01`.
pub(crate) fn push_mac(s: &mut String, mac: Mac) {
    let mut buf = [b':'; 17];
    for (i, b) in mac.0.iter().enumerate() {
        buf[i * 3] = HEX[usize::from(b >> 4)];
        buf[i * 3 + 1] = HEX[usize::from(b & 0xf)];
    }
    push_ascii(s, &buf);
}

/// `n` in decimal.
pub(crate) fn push_u64(s: &mut String, n: u64) {
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
pub(crate) fn push_u64_width(s: &mut String, n: u64, width: usize, zero: bool) {
    let digits = n.checked_ilog10().map_or(1, |d| d as usize + 1);
    let fill = if zero { '0' } else { ' ' };
    for _ in digits..width {
        s.push(fill);
    }
    push_u64(s, n);
}

/// Appends `v` in hex without leading zeros to `buf` at `n`; returns the new end.
fn put_hex16(buf: &mut [u8; 39], mut n: usize, v: u16) -> usize {
    let digits = (16 - v.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        buf[n] = HEX[usize::from((v >> (4 * i)) & 0xf)];
        n += 1;
    }
    n
}

/// `addr` as `Ipv6Addr`'s `Display` (RFC 5952: the first longest run of two or more
/// zero groups becomes `::`; IPv4-mapped addresses end in dotted decimal).
pub(crate) fn push_ipv6(s: &mut String, addr: Ipv6Addr) {
    if addr.to_ipv4_mapped().is_some() {
        // Rare in ND; the standard formatting covers its special form.
        let _ = write!(s, "{addr}");
        return;
    }
    let seg = addr.segments();
    let (mut run_start, mut run_len) = (0, 0);
    let mut i = 0;
    while i < seg.len() {
        if seg[i] == 0 {
            let start = i;
            while i < seg.len() && seg[i] == 0 {
                i += 1;
            }
            if i - start > run_len {
                (run_start, run_len) = (start, i - start);
            }
        } else {
            i += 1;
        }
    }
    // 8 groups of 4 digits and 7 colons at most.
    let mut buf = [0u8; 39];
    let groups = |buf: &mut [u8; 39], mut n: usize, part: &[u16]| {
        for (i, g) in part.iter().enumerate() {
            if i > 0 {
                buf[n] = b':';
                n += 1;
            }
            n = put_hex16(buf, n, *g);
        }
        n
    };
    let n = if run_len < 2 {
        groups(&mut buf, 0, &seg)
    } else {
        let n = groups(&mut buf, 0, &seg[..run_start]);
        buf[n..n + 2].copy_from_slice(b"::");
        groups(&mut buf, n + 2, &seg[run_start + run_len..])
    };
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
                let mut s = String::new();
                push_ipv6(&mut s, addr);
                assert_eq!(s, addr.to_string(), "{seg:x?}");
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
            let mut s = String::new();
            push_ipv6(&mut s, addr);
            assert_eq!(s, addr.to_string());
        }
    }

    #[test]
    fn macs_and_numbers_read_as_display_writes_them() {
        let mac = Mac([0x02, 0x00, 0x5e, 0xab, 0xcd, 0xef]);
        let mut s = String::new();
        push_mac(&mut s, mac);
        assert_eq!(s, mac.to_string());
        for n in [0, 7, 10, 99, 100, 123_456, 1_000_000, u64::MAX] {
            let mut s = String::new();
            push_u64(&mut s, n);
            assert_eq!(s, n.to_string());
            let mut s = String::new();
            push_u64_width(&mut s, n, 7, false);
            assert_eq!(s, format!("{n:>7}"));
            let mut s = String::new();
            push_u64_width(&mut s, n, 6, true);
            assert_eq!(s, format!("{n:06}"));
        }
    }
}
