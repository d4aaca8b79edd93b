//! Durations written the way an operator types them: `100ms`, `1s`, `1.5s`, `2m`, `1h`.
//!
//! Integer arithmetic only (no float rounding): the value is parsed to whole milliseconds, and a
//! finer fraction (`1.0005s`) is an error rather than silently rounded.

use std::time::Duration;

/// Why a duration text was refused; the `Display` text is the "what is wrong" part of a
/// diagnostic, [`DurationError::hint`] the "how to fix" part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was written.
    #[error("empty duration")]
    Empty,
    /// A number without a unit (`1`): ambiguous between keepalived's seconds and our milliseconds.
    #[error("duration `{0}` has no unit")]
    NoUnit(String),
    /// The unit is not one of ms, s, m, h.
    #[error("duration `{0}` has an unknown unit")]
    BadUnit(String),
    /// The number part is not a decimal number.
    #[error("duration `{0}` is not a number followed by a unit")]
    BadNumber(String),
    /// The value does not fall on a whole millisecond, or does not fit.
    #[error("duration `{0}` is finer than a millisecond or too large")]
    OutOfRange(String),
}

impl DurationError {
    /// How to fix it, for the `(...)` part of a diagnostic.
    pub fn hint(&self) -> &'static str {
        match self {
            DurationError::Empty | DurationError::BadNumber(_) => {
                "write a number and a unit, e.g. 100ms, 1s, 1.5s, 2m"
            }
            DurationError::NoUnit(_) => "add a unit: ms, s, m or h, e.g. 1s",
            DurationError::BadUnit(_) => "use one of the units ms, s, m, h",
            DurationError::OutOfRange(_) => "use whole milliseconds, at most a few days",
        }
    }
}

/// Parses `100ms`, `1s`, `1.5s`, `2m`, `1h` (also `0s`) into a [`Duration`] of whole milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(DurationError::Empty);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| DurationError::NoUnit(t.to_string()))?;
    let (num, unit) = t.split_at(split);
    let unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return Err(DurationError::BadUnit(t.to_string())),
    };
    let (int_part, frac_part) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
        || num.ends_with('.')
    {
        return Err(DurationError::BadNumber(t.to_string()));
    }
    let range = || DurationError::OutOfRange(t.to_string());
    // At most 30 days: a config duration beyond that is a typo.
    const MAX_MS: u64 = 30 * 24 * 3_600_000;
    let int: u64 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().map_err(|_| range())?
    };
    let mut ms = int.checked_mul(unit_ms).ok_or_else(range)?;
    // The fraction: digits d1 d2 ... scaled by unit_ms / 10^k must be a whole number of ms.
    let mut scale = unit_ms;
    for d in frac_part.bytes() {
        let digit = u64::from(d - b'0');
        if scale % 10 != 0 {
            if digit != 0 {
                return Err(range());
            }
            continue;
        }
        scale /= 10;
        ms = ms.checked_add(digit * scale).ok_or_else(range)?;
    }
    if ms > MAX_MS {
        return Err(range());
    }
    Ok(Duration::from_millis(ms))
}

/// Formats a duration the way [`parse_duration`] reads it back (`100ms`, `1s`, `1.5s`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else if ms > 1000 {
        let s = format!("{}.{:03}", ms / 1000, ms % 1000);
        format!("{}s", s.trim_end_matches('0'))
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_operator_durations() {
        let cases = [
            ("100ms", 100),
            ("1s", 1000),
            ("1.5s", 1500),
            ("0.25s", 250),
            (".5s", 500),
            ("40.95s", 40_950),
            ("2m", 120_000),
            ("1h", 3_600_000),
            ("0s", 0),
            (" 10ms ", 10),
            ("1.500s", 1500),
        ];
        for (text, ms) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_bad_durations_with_a_reason() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("1"), Err(DurationError::NoUnit("1".into())));
        assert_eq!(
            parse_duration("1sec"),
            Err(DurationError::BadUnit("1sec".into()))
        );
        assert_eq!(
            parse_duration("1..5s"),
            Err(DurationError::BadNumber("1..5s".into()))
        );
        assert_eq!(
            parse_duration("1.s"),
            Err(DurationError::BadNumber("1.s".into()))
        );
        assert_eq!(
            parse_duration("s"),
            Err(DurationError::BadNumber("s".into()))
        );
        assert_eq!(
            parse_duration("-1s"),
            Err(DurationError::BadUnit("-1s".into()))
        );
        assert_eq!(
            parse_duration("1.0005s"),
            Err(DurationError::OutOfRange("1.0005s".into()))
        );
        assert_eq!(
            parse_duration("0.5ms"),
            Err(DurationError::OutOfRange("0.5ms".into()))
        );
        assert!(matches!(
            parse_duration("99999999999999999999999s"),
            Err(DurationError::OutOfRange(_))
        ));
        assert!(matches!(
            parse_duration("31d"),
            Err(DurationError::BadUnit(_))
        ));
        assert!(matches!(
            parse_duration("800h"),
            Err(DurationError::OutOfRange(_))
        ));
    }

    #[test]
    fn formats_round_trip() {
        for ms in [0u64, 10, 100, 999, 1000, 1500, 40_950, 120_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{ms}");
        }
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_millis(100)), "100ms");
    }
}
