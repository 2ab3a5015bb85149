//! Durations as users write them (`90s`, `30m`, `1h30m`, `1h 30m`, or a bare
//! number of seconds), for flags and ferry.toml alike.
//!
//! Data layer. Parsing is humantime's; ferry adds the bare-seconds form its
//! docs have always shown and an upper bound, so no later `Instant + d`
//! can overflow: a deadline of more than [`MAX`] is a typo, not a plan.

use std::time::Duration;

/// The longest duration ferry accepts anywhere: 30 days.
pub const MAX: Duration = Duration::from_secs(30 * 24 * 3600);

/// Parses a duration; zero is allowed (`0`, `0s`), more than [`MAX`] is not.
pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let d = match s.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        // humantime rejects overflow itself ("number is too large").
        Err(_) => humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration like 90s, 30m or 1h30m ({e})"))?,
    };
    if d > MAX {
        return Err(format!("`{s}` is longer than ferry allows ({}); give at most 30d", humantime::format_duration(MAX)));
    }
    Ok(d)
}

/// Like [`parse`], but zero is refused: for timeouts and grace periods, where
/// zero would end the command before it starts.
pub fn parse_nonzero(s: &str) -> Result<Duration, String> {
    let d = parse(s)?;
    if d.is_zero() {
        return Err(format!("`{}` is zero; give a duration like 90s, 30m or 1h30m", s.trim()));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_the_documented_forms() {
        assert_eq!(parse("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("45").unwrap(), Duration::from_secs(45));
    }

    #[test]
    fn zero_is_zero_in_every_form() {
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse("0s").unwrap(), Duration::ZERO);
        assert!(parse_nonzero("0").is_err());
        assert!(parse_nonzero("0s").is_err());
    }

    #[test]
    fn garbage_is_refused() {
        for bad in ["", "m", "10x", "1h30", "-5s", "1.5.3h"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn huge_durations_are_refused_not_wrapped() {
        for huge in ["99999999999999h", "18446744073709551615s", "18446744073709551615", "31d", "99999999999999999999999s"] {
            let e = parse(huge).unwrap_err();
            assert!(e.contains(huge.trim_end_matches('s')) || e.contains(huge), "{huge}: {e}");
        }
        assert_eq!(parse("30d").unwrap(), MAX);
    }
}
