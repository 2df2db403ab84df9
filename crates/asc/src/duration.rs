//! Durations written as `90s`, `15m`, `24h` or `7d` in configuration.

use std::time::Duration;

/// Parses `N` followed by `ms`, `s`, `m`, `h` or `d`.
///
/// # Errors
/// A message naming what is wrong with `text`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit (ms, s, m, h, d)"))?;
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` does not start with a number"))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (ms, s, m, h, d)")),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse(" 2m "), Ok(Duration::from_secs(120)));
        assert!(parse("5").is_err());
        assert!(parse("h").is_err());
        assert!(parse("5y").is_err());
    }
}
