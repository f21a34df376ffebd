//! Human durations in the config file: `"500ms"`, `"1s"`, `"1.5s"`, `"10min"`, `"1h30min"`.
//!
//! Units are spelled out (`us`, `ms`, `s`, `min`, `h`) because a bare `m` is ambiguous
//! between minutes and milliseconds, and a bare number is ambiguous between all of them.

use std::fmt;

use crate::time::Duration;

/// Why a duration string was rejected; the message is shown after the file position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// Nothing (or only blanks) between the quotes.
    Empty,
    /// A number with no unit, such as `"5"`.
    MissingUnit(String),
    /// A unit we do not know, such as `"5sec"` or `"5m"`.
    UnknownUnit(String),
    /// Something that is not a number where a number must be.
    BadNumber(String),
    /// More than `u64::MAX` microseconds.
    Overflow,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty duration"),
            Self::MissingUnit(n) => write!(f, "number {n} has no unit"),
            Self::UnknownUnit(u) if u == "m" => {
                f.write_str("unit `m` is ambiguous (minutes or milliseconds?)")
            }
            Self::UnknownUnit(u) => write!(f, "unknown unit `{u}`"),
            Self::BadNumber(n) => write!(f, "`{n}` is not a number"),
            Self::Overflow => f.write_str("duration too large"),
        }
    }
}

/// The hint printed under every duration error.
pub const DURATION_HINT: &str = "write a number and a unit (us, ms, s, min, h), e.g. \"500ms\", \"1s\", \"1.5s\", \"60min\", \"1h30min\"";

/// Microseconds per unit; longest spellings first so `ms` is not read as `m` + `s`.
const UNITS: &[(&str, u64)] = &[
    ("min", 60_000_000),
    ("ms", 1_000),
    ("us", 1),
    ("µs", 1),
    ("h", 3_600_000_000),
    ("s", 1_000_000),
];

/// Parses `"1s"`, `"500ms"`, `"1.5s"`, `"60min"`, `"1h30min"` (components add up).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut rest = s;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(num_len);
        if number.is_empty() {
            return Err(DurationError::BadNumber(
                tail.split(|c: char| c.is_ascii_digit())
                    .next()
                    .unwrap_or(tail)
                    .to_owned(),
            ));
        }
        let tail = tail.trim_start();
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
            .unwrap_or(tail.len());
        let (unit, after) = tail.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(number.to_owned()));
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(DurationError::UnknownUnit(unit.to_owned()));
        };
        let micros = scaled(number, scale)?;
        total = total.checked_add(micros).ok_or(DurationError::Overflow)?;
        rest = after.trim_start();
    }
    Ok(Duration::from_micros(total))
}

/// `number` (digits with at most one `.`) times `scale`, exactly, rounding below 1 µs down.
fn scaled(number: &str, scale: u64) -> Result<u64, DurationError> {
    let bad = || DurationError::BadNumber(number.to_owned());
    let (whole, frac) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| DurationError::Overflow)?
    };
    let mut micros = whole.checked_mul(scale).ok_or(DurationError::Overflow)?;
    // Each fractional digit contributes digit * scale / 10^k; stop once below 1 µs.
    let mut place = scale;
    for digit in frac.chars() {
        let d = u64::from(digit.to_digit(10).ok_or_else(bad)?);
        place /= 10;
        micros = micros
            .checked_add(d * place)
            .ok_or(DurationError::Overflow)?;
    }
    Ok(micros)
}

/// The shortest exact spelling of `d` that [`parse_duration`] reads back, e.g. `"1h30min"`.
pub fn format_duration(d: Duration) -> String {
    let mut micros = d.total_micros();
    if micros == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (name, scale) in [
        ("h", 3_600_000_000u64),
        ("min", 60_000_000),
        ("s", 1_000_000),
        ("ms", 1_000),
        ("us", 1),
    ] {
        let n = micros / scale;
        if n > 0 {
            out.push_str(&format!("{n}{name}"));
            micros %= scale;
        }
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn reads_every_unit() {
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("60min"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
    }

    #[test]
    fn reads_fractions_and_compounds() {
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(".25s"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h30min"), Ok(Duration::from_secs(5400)));
        assert_eq!(
            parse_duration(" 1 s 200 ms "),
            Ok(Duration::from_millis(1200))
        );
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_ambiguous_or_broken_input() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(
            parse_duration("5"),
            Err(DurationError::MissingUnit("5".into()))
        );
        assert_eq!(
            parse_duration("5m"),
            Err(DurationError::UnknownUnit("m".into()))
        );
        assert_eq!(
            parse_duration("5sec"),
            Err(DurationError::UnknownUnit("sec".into()))
        );
        assert_eq!(
            parse_duration("-1s"),
            Err(DurationError::BadNumber("-".into()))
        );
        assert_eq!(
            parse_duration("1.2.3s"),
            Err(DurationError::BadNumber("1.2.3".into()))
        );
        assert_eq!(
            parse_duration("99999999999999999999h"),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse_duration("9999999999999h"),
            Err(DurationError::Overflow)
        );
    }

    #[test]
    fn formats_what_it_parses() {
        for text in ["1s", "500ms", "1h30min", "3s", "1min1ms", "0s", "7us"] {
            let d = parse_duration(text).unwrap_or_default();
            assert_eq!(format_duration(d), text);
        }
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
    }
}
