//! The polling source of the backlog: lists each content type from its
//! cursor (minus the overlap) to now in ≤ 24 h windows, following
//! `NextPageUri`, and once every [`SWEEP_EVERY_POLLS`] listing rounds the
//! day before the overlap again (content found only there is a counted
//! gap). A type lists every `interval`, or every `poll_interval` while its
//! webhook notifications arrive (the listing is then the safety net).
//!
//! It owns the cursors (the end of the last window listed completely per
//! type), the newest content seen, and when each type was last listed;
//! how each listing went goes on the problem board.

use super::backlog::Backlog;
use super::board::Board;
use super::client::ManagementClient;
use super::events::{Events, TypeEvents};
use super::problem::{classify, Problem};
use super::subscriptions::Subscriptions;
use super::webhook::Inbox;
use super::{earliest_start, plan_windows, Changed, Content, MAX_WINDOW_SECS};
use crate::config::ActivityConfig;
use crate::timefmt::now_unix;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Every this many listing rounds, the day before the overlap is listed
/// once more: content indexed later than the overlap is then still found
/// (and counted as a gap) instead of being missed silently.
pub const SWEEP_EVERY_POLLS: u64 = 12;

pub struct Lister {
    client: Arc<ManagementClient>,
    tenant: String,
    types: Vec<String>,
    interval: Duration,
    lookback: i64,
    overlap: i64,
    /// With `activity.webhook`: when notifications last came, per type.
    inbox: Option<Arc<Inbox>>,
    /// content type → end of the last window listed completely.
    pub cursors: BTreeMap<String, i64>,
    /// content type → newest contentCreated seen.
    pub newest: BTreeMap<String, i64>,
    /// content type → start of the poll that last listed it.
    last_listed: BTreeMap<String, Instant>,
    /// Polls that listed at least one type (the sweep counts these).
    rounds: u64,
}

impl Lister {
    /// A lister resuming from saved `cursors` and `newest`.
    pub fn new(
        client: Arc<ManagementClient>,
        tenant: &str,
        cfg: &ActivityConfig,
        inbox: Option<Arc<Inbox>>,
        cursors: BTreeMap<String, i64>,
        newest: BTreeMap<String, i64>,
    ) -> Self {
        Lister {
            client,
            tenant: tenant.to_string(),
            types: cfg.content_types.clone(),
            interval: cfg.interval,
            lookback: cfg.lookback.as_secs() as i64,
            overlap: cfg.overlap.as_secs() as i64,
            inbox,
            cursors,
            newest,
            last_listed: BTreeMap::new(),
            rounds: 0,
        }
    }

    /// The types due at the poll that began at `started`.
    fn due(&self, started: Instant, now: i64) -> Vec<String> {
        self.types
            .iter()
            .filter(|ct| {
                let every = match &self.inbox {
                    Some(i) => i.listing_interval(ct, self.interval, now),
                    None => self.interval,
                };
                self.last_listed
                    .get(*ct)
                    .is_none_or(|t| started.duration_since(*t) >= every)
            })
            .cloned()
            .collect()
    }

    /// List every due type whose subscription is enabled into the backlog
    /// (stopping between types when asked to). A listing that says the
    /// subscription is gone tells `subs`, so it is checked again.
    pub async fn poll(
        &mut self,
        started: Instant,
        subs: &mut Subscriptions,
        backlog: &mut Backlog,
        events: &mut Events,
        board: &mut Board,
        stop: &watch::Receiver<bool>,
    ) -> Changed {
        let now = now_unix() as i64;
        let due = self.due(started, now);
        if !due.is_empty() {
            self.rounds += 1;
        }
        let sweep = self.rounds.is_multiple_of(SWEEP_EVERY_POLLS);
        let mut changed = Changed::default();
        for ct in due {
            if *stop.borrow() {
                break;
            }
            self.last_listed.insert(ct.clone(), started);
            if subs.get(&ct).enabled != Some(true) {
                board.not_listed(&ct);
                continue;
            }
            let before = self.cursors.get(&ct).copied();
            let mut offer = Offer {
                backlog: &mut *backlog,
                ev: events.of(&ct),
                accepted: false,
            };
            let result = self.list(&ct, now, sweep, &mut offer).await;
            changed |= Changed(offer.accepted || before != self.cursors.get(&ct).copied());
            if let Err(p @ (Problem::NotSubscribed | Problem::DisabledByAdmin)) = &result {
                subs.lost(&ct, p.clone());
            }
            board.listed(&ct, result, now);
        }
        changed
    }

    /// List `ct` up to `now` into `offer`. The cursor advances window by
    /// window, so a failure half-way keeps what was listed.
    async fn list(
        &mut self,
        ct: &str,
        now: i64,
        sweep: bool,
        offer: &mut Offer<'_>,
    ) -> Result<(), Problem> {
        let previous = self.cursors.get(ct).copied();
        let from = match previous {
            Some(c) => c - self.overlap,
            None => now - self.lookback,
        };
        for (start, end) in plan_windows(from, now) {
            self.window(ct, start, end, None, offer).await?;
            let cursor = self.cursors.entry(ct.to_string()).or_insert(end);
            *cursor = (*cursor).max(end);
        }
        if let Some(prev) = previous.filter(|_| sweep) {
            let hi = prev - self.overlap;
            let lo = (hi - MAX_WINDOW_SECS).max(earliest_start(now));
            if lo < hi {
                self.window(ct, lo, hi, Some(hi), offer).await?;
            }
        }
        Ok(())
    }

    /// Re-list `[start, end)` of `ct` on demand, whatever the schedule:
    /// the reconciler's repair (and any later source that asks for a time
    /// range again). Windows of at most 24 h inside Microsoft's 7 days;
    /// every item new to the backlog is a listing gap (logged, counted) and
    /// is fetched as usual. The cursors are left alone. Returns how many
    /// items were new.
    pub async fn relist(
        &mut self,
        ct: &str,
        start: i64,
        end: i64,
        backlog: &mut Backlog,
        events: &mut Events,
    ) -> Result<usize, Problem> {
        let before = backlog.pending_len();
        let mut offer = Offer {
            backlog,
            ev: events.of(ct),
            accepted: false,
        };
        let mut from = start.max(earliest_start(now_unix() as i64));
        while from < end {
            let to = (from + MAX_WINDOW_SECS).min(end);
            self.window(ct, from, to, Some(to), &mut offer).await?;
            from = to;
        }
        Ok(offer.backlog.pending_len().saturating_sub(before))
    }

    /// One window; items created before `gap_before` are listing gaps.
    async fn window(
        &mut self,
        ct: &str,
        start: i64,
        end: i64,
        gap_before: Option<i64>,
        offer: &mut Offer<'_>,
    ) -> Result<(), Problem> {
        let (items, skipped) = self
            .client
            .list_content(ct, start, end)
            .await
            .map_err(|e| classify(&e))?;
        if skipped > 0 {
            tracing::warn!(tenant = %self.tenant, content_type = %ct, skipped, "content listing items without contentId, contentUri or contentCreated were skipped");
        }
        for mut c in items {
            // Label by what we asked for: the label set stays the configured one.
            c.content_type = ct.to_string();
            let newest = self.newest.entry(ct.to_string()).or_insert(c.created);
            *newest = (*newest).max(c.created);
            let gap = gap_before.is_some_and(|b| c.created < b);
            offer.offer(c, gap);
        }
        Ok(())
    }
}

/// Where listed items go: the backlog, and the type's events.
struct Offer<'a> {
    backlog: &'a mut Backlog,
    ev: &'a mut TypeEvents,
    /// Some item was new to the backlog.
    accepted: bool,
}

impl Offer<'_> {
    fn offer(&mut self, c: Content, gap: bool) {
        // Kept for the gap's log line only (rare: the sweep's late finds).
        let gap = gap.then(|| c.clone());
        let fresh = self.backlog.offer(c);
        self.accepted |= fresh;
        self.ev.listed(fresh, gap.as_ref());
    }
}
