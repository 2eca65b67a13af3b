//! The Office 365 Management Activity API feed: one supervised task per
//! tenant ([`feed`]) that runs the stages below, each owning its state, and
//! publishes a [`status::FeedStatus`]; the `activity` collector only
//! renders that.
//!
//! - [`subscriptions`]: `subscriptions/list` and `/start`, per content type;
//! - [`lister`]: content listing in ≤ 24 h windows, overlap, daily sweep,
//!   `NextPageUri` → items offered to the backlog (it owns the cursors);
//! - [`webhook`]: the second source, notifications pushed by Microsoft
//!   into an [`webhook::Inbox`] and drained into the backlog;
//! - [`backlog`]: the one queue between the sources and the downloader,
//!   deduplicated by `contentId`;
//! - [`downloader`]: backlog → blob GETs (concurrency, in-flight byte cap,
//!   expiry, poison-blob quarantine);
//! - [`apply`]: a blob's new records, deduplicated against [`recent`] (the
//!   record `Id`s of the last 7 days), counted and handed to the sink;
//!   [`records`] parses blobs, [`workloads`] bounds the `workload` label;
//! - [`checkpoint`]: the only writer of files, on its own thread, on a
//!   timer, writing only what changed: [`state`], [`idlog`], [`sink`] and
//!   [`quarantine`] are its formats, [`fileops`] how each file is created
//!   (mode, synced directory); [`lock`] keeps them to one exporter.
//!
//! The two API clients, [`client`] (Management Activity API) and
//! [`auditquery`] (Audit Log Query API, the reconciler's reference), send
//! through [`paced`]: the tenant's request budget, then its `ApiClient`.
//!
//! Stages report what happened through [`events`] (one pre-labelled handle
//! per content type: counters and log lines) and what is wrong on the
//! problem [`board`] (logged once per change); they return [`Changed`] when
//! they changed what the checkpoint saves.
//!
//! Parsers here are plain functions over bytes so that they can be fuzzed.
//! Nothing here imports `crate::collect`: counters are passed down as the
//! shared [`crate::metrics::Live`], everything else flows up as status.

pub mod apply;
pub mod auditquery;
pub mod backlog;
pub mod board;
pub mod checkpoint;
pub mod client;
pub mod downloader;
pub mod events;
pub mod feed;
pub mod fileops;
pub mod idlog;
pub mod lister;
pub mod lock;
pub mod paced;
pub mod problem;
pub mod quarantine;
pub mod recent;
pub mod reconcile;
pub mod record_types;
pub mod records;
pub mod sink;
pub mod state;
pub mod status;
pub mod subscriptions;
pub mod webhook;
pub mod workloads;

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Whether a stage changed what the checkpoint saves (cursors, backlog,
/// remembered ids): the feed saves only then.
#[must_use = "the feed saves only what its stages say changed"]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changed(pub bool);

impl std::ops::BitOrAssign for Changed {
    fn bitor_assign(&mut self, other: Changed) {
        self.0 |= other.0;
    }
}

/// Microsoft keeps content for 7 days; nothing older can be listed or fetched.
pub const RETENTION: Duration = Duration::from_secs(7 * 86_400);

/// One content blob as the listing announced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub content_type: String,
    pub content_id: String,
    pub content_uri: String,
    /// `contentCreated`, Unix seconds.
    pub created: i64,
    /// `contentExpiration`, Unix seconds.
    pub expiration: i64,
}

/// Microsoft rejects a content window longer than this (AF20030).
pub const MAX_WINDOW_SECS: i64 = 86_400;

/// The oldest `startTime` we send is this much younger than the 7-day limit,
/// so that a request planned now still qualifies when Microsoft receives it
/// (after queueing behind the request budget and retries).
pub const START_MARGIN_SECS: i64 = 900;

/// The earliest `startTime` Microsoft accepts at `now`, with our margin.
pub fn earliest_start(now: i64) -> i64 {
    now - RETENTION.as_secs() as i64 + START_MARGIN_SECS
}

/// Split `[from, now)` into the windows we list, oldest first: each at most
/// 24 h, none starting before [`earliest_start`], none empty. `startTime` is
/// inclusive and `endTime` exclusive, so consecutive windows neither overlap
/// nor leave a gap.
pub fn plan_windows(from: i64, now: i64) -> Vec<(i64, i64)> {
    let mut start = from.max(earliest_start(now));
    let mut out = Vec::new();
    while start < now {
        let end = (start + MAX_WINDOW_SECS).min(now);
        out.push((start, end));
        start = end;
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC: the form the Management API documents for
/// `startTime`/`endTime` (no zone suffix, no fraction).
pub fn wire_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_contiguous_bounded_and_inside_retention() {
        let now = 1_800_000_000;
        // 3 days of downtime: 3 full windows and a short one, no gaps.
        let w = plan_windows(now - 3 * 86_400 - 100, now);
        assert_eq!(w.len(), 4);
        assert_eq!(w[0].0, now - 3 * 86_400 - 100);
        assert_eq!(w.last().unwrap().1, now);
        for pair in w.windows(2) {
            assert_eq!(pair[0].1, pair[1].0);
        }
        assert!(w.iter().all(|(s, e)| s < e && e - s <= MAX_WINDOW_SECS));
        // Ten days back is clamped inside the 7-day limit.
        let w = plan_windows(now - 10 * 86_400, now);
        assert_eq!(w[0].0, earliest_start(now));
        assert!(w[0].0 > now - 7 * 86_400);
        // Nothing to list when the cursor is at (or past) now.
        assert!(plan_windows(now, now).is_empty());
        assert!(plan_windows(now + 5, now).is_empty());
    }

    #[test]
    fn wire_time_format() {
        assert_eq!(wire_time(0), "1970-01-01T00:00:00");
        assert_eq!(wire_time(1_764_239_400), "2025-11-27T10:30:00");
    }
}
