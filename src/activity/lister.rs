//! The polling source of the backlog: lists each content type from its
//! cursor (minus the overlap) to now in ≤ 24 h windows, following
//! `NextPageUri`, and once every [`SWEEP_EVERY_POLLS`] polls the day before
//! the overlap again (content found only there is a counted gap). It owns
//! the cursors: the end of the last window listed completely per type.

use super::client::ManagementClient;
use super::problem::{classify, Problem};
use super::{earliest_start, plan_windows, Content, MAX_WINDOW_SECS};
use std::collections::BTreeMap;

/// Every this many polls, the day before the overlap is listed once more:
/// content indexed later than the overlap is then still found (and counted
/// as a gap) instead of being missed silently.
pub const SWEEP_EVERY_POLLS: u64 = 12;

/// What a listing produced, for the backlog.
pub struct Listed {
    pub content: Content,
    /// Found only by the sweep, older than the overlap: a listing gap.
    pub gap: bool,
}

#[derive(Debug, Default)]
pub struct Lister {
    /// content type → end of the last window listed completely.
    pub cursors: BTreeMap<String, i64>,
    /// content type → newest contentCreated seen.
    pub newest: BTreeMap<String, i64>,
}

pub struct Window {
    pub lookback: i64,
    pub overlap: i64,
    /// The sweep runs at this poll.
    pub sweep: bool,
}

impl Lister {
    pub fn new(cursors: BTreeMap<String, i64>, newest: BTreeMap<String, i64>) -> Self {
        Lister { cursors, newest }
    }

    /// List `ct` up to `now`; every item goes to `offer` (which returns true
    /// when it was new). The cursor advances window by window, so a failure
    /// half-way keeps what was listed.
    pub async fn list(
        &mut self,
        client: &ManagementClient,
        tenant: &str,
        ct: &str,
        now: i64,
        w: &Window,
        offer: &mut (dyn FnMut(Listed) -> bool + Send),
    ) -> Result<(), Problem> {
        let previous = self.cursors.get(ct).copied();
        let from = match previous {
            Some(c) => c - w.overlap,
            None => now - w.lookback,
        };
        for (start, end) in plan_windows(from, now) {
            self.window(client, tenant, ct, start, end, None, offer)
                .await?;
            let cursor = self.cursors.entry(ct.to_string()).or_insert(end);
            *cursor = (*cursor).max(end);
        }
        if let Some(prev) = previous.filter(|_| w.sweep) {
            let hi = prev - w.overlap;
            let lo = (hi - MAX_WINDOW_SECS).max(earliest_start(now));
            if lo < hi {
                self.window(client, tenant, ct, lo, hi, Some(hi), offer)
                    .await?;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn window(
        &mut self,
        client: &ManagementClient,
        tenant: &str,
        ct: &str,
        start: i64,
        end: i64,
        gap_before: Option<i64>,
        offer: &mut (dyn FnMut(Listed) -> bool + Send),
    ) -> Result<(), Problem> {
        let (items, skipped) = client
            .list_content(ct, start, end)
            .await
            .map_err(|e| classify(&e))?;
        if skipped > 0 {
            tracing::warn!(tenant = %tenant, content_type = %ct, skipped, "content listing items without contentId, contentUri or contentCreated were skipped");
        }
        for mut c in items {
            // Label by what we asked for: the label set stays the configured one.
            c.content_type = ct.to_string();
            let newest = self.newest.entry(ct.to_string()).or_insert(c.created);
            *newest = (*newest).max(c.created);
            let gap = gap_before.is_some_and(|b| c.created < b);
            let (id, created) = (c.content_id.clone(), c.created);
            if offer(Listed { content: c, gap }) && gap {
                tracing::warn!(tenant = %tenant, content_type = %ct, content_id = %id,
                    content_created = %crate::timefmt::rfc3339(created),
                    "content listed later than the overlap window: a listing gap (fetched now; consider a longer activity.overlap)");
            }
        }
        Ok(())
    }
}
