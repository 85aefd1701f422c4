//! Go `time.ParseDuration` grammar (`300ms`, `1.5h`, `1h30m`).

use std::time::Duration;

/// Why a duration string does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not of the form `<number><unit>…`.
    #[error("`{0}` is not a duration (use e.g. `300ms`, `30s`, `5m`, `1h30m`)")]
    Invalid(String),
    /// A number without a unit.
    #[error("`{0}` is missing a unit (ns, us, ms, s, m, h)")]
    MissingUnit(String),
    /// An unknown unit.
    #[error("unknown unit `{unit}` in duration `{input}` (use ns, us, ms, s, m, h)")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole input.
        input: String,
    },
    /// A negative duration where only positive ones make sense.
    #[error("duration `{0}` is negative")]
    Negative(String),
}

/// Parses a Go duration; returns the signed length in nanoseconds.
pub fn parse_nanos(input: &str) -> Result<i128, DurationError> {
    let invalid = || DurationError::Invalid(input.to_string());
    let mut s = input;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !s.is_empty() {
        let num_len = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let num = &s[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = num.parse().map_err(|_| invalid())?;
        s = &s[num_len..];
        let unit_len = s
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(s.len());
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let scale: f64 = match unit {
            "" => return Err(DurationError::MissingUnit(input.to_string())),
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            other => {
                return Err(DurationError::UnknownUnit {
                    unit: other.to_string(),
                    input: input.to_string(),
                })
            }
        };
        total += value * scale;
    }
    if !total.is_finite() || total > 9.3e18 {
        return Err(invalid());
    }
    let nanos = total.round() as i128;
    Ok(if neg { -nanos } else { nanos })
}

/// Parses a non-negative Go duration.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let n = parse_nanos(input)?;
    if n < 0 {
        return Err(DurationError::Negative(input.to_string()));
    }
    let n = u64::try_from(n).map_err(|_| DurationError::Invalid(input.to_string()))?;
    Ok(Duration::from_nanos(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_grammar() {
        assert_eq!(parse("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("2µs").unwrap(), Duration::from_micros(2));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_nanos("-1s").unwrap(), -1_000_000_000);
        assert!(matches!(parse("5"), Err(DurationError::MissingUnit(_))));
        assert!(matches!(
            parse("5d"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(parse("").is_err());
        assert!(parse("abc").is_err());
        assert!(matches!(parse("-5m"), Err(DurationError::Negative(_))));
    }
}
