//! Parsing the human durations of the command line: `300ms`, `5s`, `5m`, `1h`,
//! `2d`, or `never`.

use std::time::Duration;

/// A parsed `--ttl`/`--lease` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// `never`.
    Never,
    /// A positive or zero span.
    After(Duration),
}

/// Why a duration does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{input}`: {reason} (expected e.g. 300ms, 5s, 5m, 1h, 2d or never)")]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

/// Parses `<digits><unit>` with unit `ms`, `s`, `m`, `h` or `d`, or `never`.
///
/// # Errors
/// A [`DurationError`] for anything else, including values that overflow.
pub fn parse_ttl(input: &str) -> Result<Ttl, DurationError> {
    let fail = |reason| DurationError {
        input: input.to_owned(),
        reason,
    };
    if input == "never" {
        return Ok(Ttl::Never);
    }
    let split = input
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| fail("a unit is required"))?;
    let (digits, unit) = input.split_at(split);
    if digits.is_empty() {
        return Err(fail("it must start with a number"));
    }
    let count: u64 = digits
        .parse()
        .map_err(|_| fail("the number is too large"))?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(fail("unknown unit")),
    };
    let ms = count
        .checked_mul(unit_ms)
        .ok_or_else(|| fail("the duration is too large"))?;
    Ok(Ttl::After(Duration::from_millis(ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(
            parse_ttl("300ms"),
            Ok(Ttl::After(Duration::from_millis(300)))
        );
        assert_eq!(parse_ttl("5m"), Ok(Ttl::After(Duration::from_secs(300))));
        assert_eq!(parse_ttl("1h"), Ok(Ttl::After(Duration::from_secs(3600))));
        assert_eq!(parse_ttl("never"), Ok(Ttl::Never));
        for bad in [
            "",
            "5",
            "ms",
            "5x",
            "-5s",
            "5 s",
            "99999999999999999999s",
            "18446744073709551615d",
        ] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
