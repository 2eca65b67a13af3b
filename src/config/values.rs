//! The value types every section shares: durations (parsed, bounded and
//! written back), GUIDs and domain names.

use super::error::{ConfigError, ErrFn};
use std::time::Duration;

/// Longest refresh interval: a collector refreshed less than daily is not
/// monitoring. Bounded so no schedule arithmetic can overflow.
pub const MAX_INTERVAL: Duration = Duration::from_secs(86_400);

/// Longest `activity.webhook.expiration`.
pub const MAX_WEBHOOK_EXPIRATION: Duration = Duration::from_secs(365 * 86_400);

pub(super) fn duration(key: &str, v: &str, err: &ErrFn) -> Result<Duration, ConfigError> {
    let d = parse_duration(v).map_err(|r| err(key, r))?;
    if d.is_zero() {
        return Err(err(key, "must be greater than zero".into()));
    }
    // Every duration in the file has an upper bound: intervals a day, a
    // webhook's lifetime a year (Microsoft sets none; the example is
    // 30d), the rest Microsoft's 7-day retention (their own checks may be
    // tighter).
    let (max, words) = if key.ends_with("interval") {
        (MAX_INTERVAL, "24h")
    } else if key.ends_with("webhook.expiration") {
        (MAX_WEBHOOK_EXPIRATION, "365d")
    } else {
        (crate::activity::RETENTION, "7d")
    };
    if d > max {
        return Err(err(key, format!("must be at most {words}")));
    }
    Ok(d)
}

/// Shortest and longest track-record window (`service_health.history_window`,
/// `report --window`): at least a day, at most a quarter.
pub const MIN_HISTORY_WINDOW: Duration = Duration::from_secs(86_400);
pub const MAX_HISTORY_WINDOW: Duration = Duration::from_secs(90 * 86_400);

/// The track record's window: 1d to 90d. Its own bounds (not the 7 days of
/// the audit feed's retention): Graph lists resolved issues for longer, and
/// service reviews look at a month or a quarter.
pub(super) fn history_window(key: &str, v: &str, err: &ErrFn) -> Result<Duration, ConfigError> {
    parse_history_window(v).map_err(|r| err(key, r))
}

/// [`history_window`] without a key, for the `report --window` flag.
pub fn parse_history_window(v: &str) -> Result<Duration, String> {
    let d = parse_duration(v)?;
    match (MIN_HISTORY_WINDOW..=MAX_HISTORY_WINDOW).contains(&d) {
        true => Ok(d),
        false => Err(format!("{v:?} must be between 1d and 90d")),
    }
}

/// `30s`, `5m`, `1h`, `7d`, `1h30m`.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    humantime::parse_duration(v.trim())
        .map_err(|e| format!("{v:?} is not a duration like 30s, 5m, 1h, 7d ({e})"))
}

/// `90s` → `1m30s`; whole units only, as a human would write them back.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let mut out = String::new();
    for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= n {
            out.push_str(&format!("{}{}", secs / n, unit));
            secs %= n;
        }
    }
    out
}

/// `#[serde(serialize_with = …)]`: a duration written back as a human would.
pub(super) fn serialize_duration<S: serde::Serializer>(
    d: &Duration,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

/// [`serialize_duration`] of an optional duration.
pub(super) fn serialize_option_duration<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => serialize_duration(d, s),
        None => s.serialize_none(),
    }
}

pub fn is_guid(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok() && s.len() == 36
}

pub(super) fn is_domain(s: &str) -> bool {
    s.contains('.')
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
        })
}
