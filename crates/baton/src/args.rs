//! Argument parsers and normalizers shared by several commands.

/// `--limit`: a page or hit count of at least 1.
pub fn parse_limit(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a whole number of at least 1".to_string()),
    }
}

/// An absolute, `/`-trimmed directory for `--cwd` filters.
pub fn absolute_dir(dir: &std::path::Path) -> String {
    std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

/// `--since`: a date, an RFC 3339 time, or a duration back from now.
pub fn parse_since(text: &str) -> anyhow::Result<String> {
    let t = text.trim();
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return Ok(canonical(ts));
    }
    if let Ok(date) = t.parse::<jiff::civil::Date>() {
        let ts = date.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp();
        return Ok(canonical(ts));
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let secs_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => 0,
    };
    match num.parse::<i64>() {
        Ok(n) if secs_per > 0 => {
            let span = jiff::SignedDuration::from_secs(n.saturating_mul(secs_per));
            let ts = jiff::Timestamp::now()
                .checked_sub(span)
                .unwrap_or(jiff::Timestamp::MIN);
            Ok(canonical(ts))
        }
        _ => anyhow::bail!(
            "use a date (2026-11-21), an RFC 3339 time, or a duration such as 30m, 12h, 7d, 2w"
        ),
    }
}

/// `ts` as RFC 3339 UTC with milliseconds.
pub fn canonical(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_dates_times_and_durations() {
        assert_eq!(
            parse_since("2026-11-21").unwrap(),
            "2026-11-21T00:00:00.000Z"
        );
        assert_eq!(
            parse_since("2026-11-21T10:00:00+02:00").unwrap(),
            "2026-11-21T08:00:00.000Z"
        );
        let week = parse_since("7d").unwrap();
        assert!(week < canonical(jiff::Timestamp::now()));
        assert!(parse_since("soon").is_err());
        assert!(parse_since("7y").is_err());
    }
}
