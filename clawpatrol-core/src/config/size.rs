//! Byte sizes of `gateway.limits` (reference §1.4.1): `512`, `64KiB`, `1M`, `2 GiB`.

/// Why a size string does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// No number.
    #[error("`{0}` is not a size (use e.g. `4096`, `64KiB`, `1MiB`)")]
    Invalid(String),
    /// Zero or negative.
    #[error("must be positive, got `{0}`")]
    NotPositive(String),
    /// An unknown unit.
    #[error("unknown unit `{0}` (use B, KiB, MiB, or GiB)")]
    UnknownUnit(String),
}

/// Parses a size into bytes (all units binary).
pub fn parse(input: &str) -> Result<u64, SizeError> {
    let s = input.trim();
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => (-1i128, r),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    if digits == 0 {
        return Err(SizeError::Invalid(input.to_string()));
    }
    let n: i128 = rest[..digits]
        .parse()
        .map_err(|_| SizeError::Invalid(input.to_string()))?;
    let unit = rest[digits..].trim();
    let scale: i128 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => return Err(SizeError::UnknownUnit(unit.to_string())),
    };
    let v = sign * n * scale;
    if v <= 0 {
        return Err(SizeError::NotPositive(input.to_string()));
    }
    u64::try_from(v).map_err(|_| SizeError::Invalid(input.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("4096").unwrap(), 4096);
        assert_eq!(parse(" 64KiB ").unwrap(), 65536);
        assert_eq!(parse("1m").unwrap(), 1 << 20);
        assert_eq!(parse("2 GiB").unwrap(), 2 << 30);
        assert_eq!(parse("10B").unwrap(), 10);
        assert!(matches!(parse("0"), Err(SizeError::NotPositive(_))));
        assert!(matches!(parse("-1K"), Err(SizeError::NotPositive(_))));
        assert!(matches!(parse("1TB"), Err(SizeError::UnknownUnit(_))));
        assert!(matches!(parse("KiB"), Err(SizeError::Invalid(_))));
    }
}
