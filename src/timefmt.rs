//! Timestamps as Microsoft writes them, parsed into Unix seconds.
//!
//! Graph uses RFC 3339 (`2026-11-27T18:00:00Z`, sometimes seven fractional
//! digits); the Management API writes `CreationTime` in UTC without a zone
//! (`2026-11-27T18:00:00`). Both forms are accepted everywhere.

use chrono::{DateTime, NaiveDateTime, Utc};

/// Latest timestamp believed: 9999-12-31T23:59:59Z. Years beyond it (or
/// before 1970) are broken input, read as "no timestamp", so that no
/// arithmetic on them (deadlines, ages, windows) can overflow.
pub const MAX_UNIX: f64 = 253_402_300_799.0;

pub fn parse_unix(s: &str) -> Option<f64> {
    let s = s.trim();
    let t = match DateTime::parse_from_rfc3339(s) {
        Ok(dt) => to_secs(dt.with_timezone(&Utc)),
        Err(_) => to_secs(
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()?
                .and_utc(),
        ),
    };
    (0.0..=MAX_UNIX).contains(&t).then_some(t)
}

fn to_secs(dt: DateTime<Utc>) -> f64 {
    dt.timestamp() as f64 + f64::from(dt.timestamp_subsec_millis()) / 1000.0
}

/// The seconds since the epoch, now.
pub fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `2026-11-27T18:00:00Z` for Graph-style output.
pub fn rfc3339(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms() {
        assert_eq!(parse_unix("1970-01-01T00:01:00Z"), Some(60.0));
        assert_eq!(parse_unix("1970-01-01T00:01:00.5000000Z"), Some(60.5));
        assert_eq!(parse_unix("1970-01-01T00:01:00"), Some(60.0));
        assert_eq!(parse_unix("+262142-01-01T00:00:00Z"), None);
        assert_eq!(parse_unix("1969-12-31T23:59:59Z"), None);
        assert_eq!(parse_unix("9999-12-31T23:59:59Z"), Some(MAX_UNIX));
        assert_eq!(
            parse_unix("2026-11-27T18:00:00+01:00"),
            parse_unix("2026-11-27T17:00:00Z")
        );
        assert_eq!(parse_unix("yesterday"), None);
        assert_eq!(rfc3339(60), "1970-01-01T00:01:00Z");
    }
}
