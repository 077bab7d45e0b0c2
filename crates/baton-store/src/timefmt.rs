//! Timestamps are stored and returned as RFC 3339 UTC with millisecond
//! precision (`2026-11-21T19:20:28.123Z`), so string order is time order.

use jiff::Timestamp;

/// Normalize any RFC 3339 timestamp to `YYYY-MM-DDTHH:MM:SS.mmmZ`; `None` if unparsable.
pub(crate) fn normalize(ts: &str) -> Option<String> {
    ts.parse::<Timestamp>().ok().map(format)
}

/// Format a timestamp in the catalog's canonical form.
pub(crate) fn format(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Nanoseconds since the epoch to the canonical form.
pub(crate) fn from_nanos(ns: i64) -> String {
    Timestamp::from_nanosecond(ns as i128)
        .map(format)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn normalizes_offsets_and_precision() {
        assert_eq!(
            super::normalize("2026-11-21T20:20:28+01:00").as_deref(),
            Some("2026-11-21T19:20:28.000Z")
        );
        assert_eq!(
            super::normalize("2026-11-21T19:20:28.123456Z").as_deref(),
            Some("2026-11-21T19:20:28.123Z")
        );
        assert_eq!(super::normalize("yesterday"), None);
    }
}
