//! Timestamps for the `audit` command: RFC 3339 rendering of `ts_ns`, and `--since` parsing
//! (RFC 3339 time or a duration meaning "that long ago").

use clawpatrol_core::config::duration::parse_nanos;

const NS_PER_SEC: i64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// Why a `--since` value does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is neither an RFC 3339 time (`2025-01-31T12:00:00Z`) nor a duration (`90m`, `1h`, `7d`)"
)]
pub struct SinceError(pub String);

/// `ts_ns` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn format_ts(ts_ns: i64) -> String {
    let secs = ts_ns.div_euclid(NS_PER_SEC);
    let millis = ts_ns.rem_euclid(NS_PER_SEC) / 1_000_000;
    let days = secs.div_euclid(SECS_PER_DAY);
    let sod = secs.rem_euclid(SECS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// The instant `--since` names, in ns since the epoch: an RFC 3339 time, a date
/// (`2025-01-31`, midnight UTC), or a duration before `now_ns` (Go syntax, plus `Nd` for days).
pub fn parse_since(input: &str, now_ns: i64) -> Result<i64, SinceError> {
    let err = || SinceError(input.to_string());
    let s = input.trim();
    if s.len() >= 10 && s.as_bytes().get(4) == Some(&b'-') {
        return parse_rfc3339(s).ok_or_else(err);
    }
    let ago: i128 = match s.strip_suffix('d') {
        Some(days) if !days.is_empty() && days.bytes().all(|b| b.is_ascii_digit()) => {
            let days: i128 = days.parse().map_err(|_| err())?;
            days * i128::from(SECS_PER_DAY) * i128::from(NS_PER_SEC)
        }
        _ => parse_nanos(s).map_err(|_| err())?,
    };
    if ago < 0 {
        return Err(err());
    }
    let at = i128::from(now_ns) - ago;
    Ok(i64::try_from(at).unwrap_or(i64::MIN))
}

/// `YYYY-MM-DD[(T|t| )HH:MM:SS[.fraction](Z|z|±HH:MM)]`.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, m, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(7) != Some(&b'-') || !(1..=12).contains(&m) || !(1..=days_in_month(y, m)).contains(&d)
    {
        return None;
    }
    let day_ns = |days: i64| days.checked_mul(SECS_PER_DAY)?.checked_mul(NS_PER_SEC);
    if b.len() == 10 {
        return day_ns(days_from_civil(y, m, d));
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') {
        return None;
    }
    if b.get(16) != Some(&b':') {
        return None;
    }
    let (hh, mm, ss) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let mut at = 19;
    let mut frac_ns: i64 = 0;
    if b.get(at) == Some(&b'.') {
        let digits = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        for (i, c) in b[at + 1..at + 1 + digits].iter().enumerate().take(9) {
            frac_ns += i64::from(c - b'0') * 10i64.pow(8 - i as u32);
        }
        at += 1 + digits;
    }
    let offset_secs = match b.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (num(at + 1, 2)?, num(at + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, m, d)
        .checked_mul(SECS_PER_DAY)?
        .checked_add(hh * 3600 + mm * 60 + ss)?
        .checked_sub(offset_secs)?;
    secs.checked_mul(NS_PER_SEC)?.checked_add(frac_ns)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_millis() {
        assert_eq!(format_ts(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_ts(1_735_689_600_123_456_789),
            "2025-01-01T00:00:00.123Z"
        );
        assert_eq!(
            format_ts(951_825_600 * NS_PER_SEC),
            "2000-02-29T12:00:00.000Z"
        );
        assert_eq!(format_ts(-NS_PER_SEC), "1969-12-31T23:59:59.000Z");
    }

    #[test]
    fn parses_rfc3339_and_dates() {
        let now = 0;
        assert_eq!(
            parse_since("2025-01-01T00:00:00Z", now),
            Ok(1_735_689_600 * NS_PER_SEC)
        );
        assert_eq!(
            parse_since("2025-01-01T02:00:00.5+02:00", now),
            Ok(1_735_689_600 * NS_PER_SEC + 500_000_000)
        );
        assert_eq!(
            parse_since("2024-12-31t19:00:00-05:00", now),
            Ok(1_735_689_600 * NS_PER_SEC)
        );
        assert_eq!(
            parse_since("2025-01-01", now),
            Ok(1_735_689_600 * NS_PER_SEC)
        );
        for bad in [
            "2025-13-01",
            "2025-02-30",
            "2025-01-01T25:00:00Z",
            "2025-01-01T00:00:00",
            "2025-01-01T00:00Z",
            "2025-01-01T00:00:00.Z",
            "2025-01-01T00:00:00+0200",
        ] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
        for t in [0, 1_735_689_600_123_000_000, 4_102_444_800 * NS_PER_SEC] {
            assert_eq!(parse_since(&format_ts(t), 0), Ok(t), "{}", format_ts(t));
        }
    }

    #[test]
    fn parses_durations_as_ago() {
        let now = 10_000 * NS_PER_SEC * 100;
        assert_eq!(parse_since("1h", now), Ok(now - 3600 * NS_PER_SEC));
        assert_eq!(parse_since("1h30m", now), Ok(now - 5400 * NS_PER_SEC));
        assert_eq!(
            parse_since("2d", now),
            Ok(now - 2 * SECS_PER_DAY * NS_PER_SEC)
        );
        assert_eq!(parse_since("0", now), Ok(now));
        for bad in ["", "1", "-1h", "d", "1x", "yesterday"] {
            let e = parse_since(bad, now).unwrap_err();
            assert!(e.to_string().contains(&format!("`{bad}`")), "{e}");
        }
    }
}
