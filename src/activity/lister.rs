//! The polling source of the backlog: lists each content type from its
//! cursor (minus the overlap) to now in ≤ 24 h windows, page by page along
//! `NextPageUri`, and once every [`SWEEP_EVERY_POLLS`] listing rounds the
//! day before the overlap again (content found only there is a counted
//! gap). A type lists every `interval`, or every `poll_interval` while its
//! webhook notifications arrive (the listing is then the safety net).
//!
//! Each page's items go to the backlog as soon as the page arrives. A page
//! that still fails after the API client's own retries is asked for again
//! ([`PAGE_ROUNDS`] more times, with backoff, each through the request
//! budget); if it keeps failing, the window is kept where it stopped and
//! the next poll resumes it from that page, so every poll makes progress
//! however many of a long listing's pages fail. The cursor still advances
//! only over windows listed completely.
//!
//! It owns the cursors (the end of the last window listed completely per
//! type), the newest content seen, when each type was last listed and the
//! windows left unfinished (in memory: a restart lists such a window from
//! its first page again, its items deduplicated by the backlog, since how
//! long a `NextPageUri` stays valid is not documented); how each listing
//! went goes on the problem board.

use super::backlog::Backlog;
use super::board::Board;
use super::client::{ContentPage, ManagementClient, MAX_PAGES};
use super::events::{Events, TypeEvents};
use super::problem::{classify, Problem};
use super::subscriptions::Subscriptions;
use super::webhook::Inbox;
use super::{earliest_start, plan_windows, Changed, Content, MAX_WINDOW_SECS};
use crate::api::ApiError;
use crate::config::ActivityConfig;
use crate::timefmt::{now_unix, rfc3339};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Every this many listing rounds, the day before the overlap is listed
/// once more: content indexed later than the overlap is then still found
/// (and counted as a gap) instead of being missed silently.
pub const SWEEP_EVERY_POLLS: u64 = 12;

/// A page that failed after the API client's own attempts is asked for
/// this many more times in the same poll before the window waits for the
/// next poll.
pub const PAGE_ROUNDS: u32 = 2;

/// A window being listed, and where its listing continues.
#[derive(Debug, Clone)]
struct Window {
    start: i64,
    end: i64,
    /// The sweep's window: items created before this are listing gaps.
    gap_before: Option<i64>,
    /// The first page's URL.
    first: String,
    /// The page to ask for next.
    next: String,
    /// Pages listed so far.
    pages: usize,
    /// Polls that stopped at a failed page of it.
    polls: u32,
}

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
    /// content type → the window its last listing stopped in, resumed by
    /// the next one from the page that failed.
    unfinished: BTreeMap<String, Window>,
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
            unfinished: BTreeMap::new(),
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

    /// Start a listing round at the poll that began at `started`: the
    /// types due, and whether this round sweeps.
    pub fn round(&mut self, started: Instant) -> (Vec<String>, bool) {
        let due = self.due(started, now_unix() as i64);
        if !due.is_empty() {
            self.rounds += 1;
        }
        (due, self.rounds.is_multiple_of(SWEEP_EVERY_POLLS))
    }

    /// List one due type into the backlog, if its subscription is enabled.
    /// A listing that says the subscription is gone tells `subs`, so it is
    /// checked again.
    #[allow(clippy::too_many_arguments)]
    pub async fn list_type(
        &mut self,
        ct: &str,
        started: Instant,
        sweep: bool,
        subs: &mut Subscriptions,
        backlog: &mut Backlog,
        events: &mut Events,
        board: &mut Board,
    ) -> Changed {
        let now = now_unix() as i64;
        self.last_listed.insert(ct.to_string(), started);
        if subs.get(ct).enabled != Some(true) {
            board.not_listed(ct);
            return Changed(false);
        }
        let before = self.cursors.get(ct).copied();
        let mut offer = Offer {
            backlog,
            ev: events.of(ct),
            accepted: false,
        };
        let result = self.list(ct, now, sweep, &mut offer).await;
        let changed = Changed(offer.accepted || before != self.cursors.get(ct).copied());
        if let Err(p @ (Problem::NotSubscribed | Problem::DisabledByAdmin)) = &result {
            subs.lost(ct, p.clone());
        }
        board.listed(ct, result, now);
        changed
    }

    /// List `ct` up to `now` into `offer`: a window left unfinished by the
    /// last listing first (a sweep's after the regular windows), from the
    /// page where it stopped. The cursor advances window by window, so a
    /// failure half-way keeps what was listed.
    async fn list(
        &mut self,
        ct: &str,
        now: i64,
        sweep: bool,
        offer: &mut Offer<'_>,
    ) -> Result<(), Problem> {
        let previous = self.cursors.get(ct).copied();
        // Past Microsoft's 7 days it can no longer be asked for; the plan
        // below starts inside them.
        let resumed = self
            .unfinished
            .remove(ct)
            .filter(|w| w.start >= earliest_start(now));
        let (resumed_sweep, resumed) = match resumed {
            Some(w) if w.gap_before.is_some() => (Some(w), None),
            w => (None, w),
        };
        if let Some(w) = resumed {
            let end = w.end;
            self.window(ct, w, offer).await?;
            self.advance(ct, end);
        }
        let from = match self.cursors.get(ct) {
            Some(c) => c - self.overlap,
            None => now - self.lookback,
        };
        for (start, end) in plan_windows(from, now) {
            let w = self.new_window(ct, start, end, None).await?;
            self.window(ct, w, offer).await?;
            self.advance(ct, end);
        }
        if let Some(w) = resumed_sweep {
            return self.window(ct, w, offer).await;
        }
        if let Some(prev) = previous.filter(|_| sweep) {
            let hi = prev - self.overlap;
            let lo = (hi - MAX_WINDOW_SECS).max(earliest_start(now));
            if lo < hi {
                let w = self.new_window(ct, lo, hi, Some(hi)).await?;
                self.window(ct, w, offer).await?;
            }
        }
        Ok(())
    }

    /// The cursor of `ct` moves to `end` (never back).
    fn advance(&mut self, ct: &str, end: i64) {
        let cursor = self.cursors.entry(ct.to_string()).or_insert(end);
        *cursor = (*cursor).max(end);
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
            let w = self.new_window(ct, from, to, Some(to)).await?;
            self.window(ct, w, &mut offer).await?;
            from = to;
        }
        Ok(offer.backlog.pending_len().saturating_sub(before))
    }

    async fn new_window(
        &self,
        ct: &str,
        start: i64,
        end: i64,
        gap_before: Option<i64>,
    ) -> Result<Window, Problem> {
        let first = self
            .client
            .content_url(ct, start, end)
            .await
            .map_err(|e| classify(&e))?;
        Ok(Window {
            start,
            end,
            gap_before,
            next: first.clone(),
            first,
            pages: 0,
            polls: 0,
        })
    }

    /// List one window to its last page, each page's items offered as it
    /// arrives; items created before `gap_before` are listing gaps. A page
    /// that keeps failing leaves the window in `unfinished`, at that page.
    async fn window(
        &mut self,
        ct: &str,
        mut w: Window,
        offer: &mut Offer<'_>,
    ) -> Result<(), Problem> {
        let mut restarted = false;
        while w.pages < MAX_PAGES {
            let page = match self.page(&w.next).await {
                Ok(page) => page,
                // A continuation Microsoft no longer accepts (its token
                // expired): the window from its first page, once.
                Err(e) if w.pages > 0 && !restarted && refused(&e) => {
                    restarted = true;
                    w.next = w.first.clone();
                    w.pages = 0;
                    continue;
                }
                Err(e) => {
                    w.polls += 1;
                    self.unfinished.insert(ct.to_string(), w);
                    return Err(classify(&e));
                }
            };
            if page.skipped > 0 {
                tracing::warn!(tenant = %self.tenant, content_type = %ct, skipped = page.skipped, "content listing items without contentId, contentUri or contentCreated were skipped");
            }
            for mut c in page.items {
                // Label by what we asked for: the label set stays the configured one.
                c.content_type = ct.to_string();
                let newest = self.newest.entry(ct.to_string()).or_insert(c.created);
                *newest = (*newest).max(c.created);
                let gap = w.gap_before.is_some_and(|b| c.created < b);
                offer.offer(c, gap);
            }
            w.pages += 1;
            match page.next {
                Some(next) => w.next = next,
                None => {
                    if w.polls > 0 {
                        tracing::info!(tenant = %self.tenant, content_type = %ct,
                            window_start = %rfc3339(w.start), window_end = %rfc3339(w.end),
                            polls = w.polls + 1, pages = w.pages,
                            "content window listed over several polls: its failed pages were resumed where they stopped");
                    }
                    return Ok(());
                }
            }
        }
        Err(Problem::Failed(format!(
            "content_list: more than {MAX_PAGES} pages (next-page loop?)"
        )))
    }

    /// One page, asked for again after a backoff while it fails in a way
    /// that may pass ([`PAGE_ROUNDS`] times, beyond the client's attempts).
    async fn page(&self, url: &str) -> Result<ContentPage, ApiError> {
        let mut round = 0;
        loop {
            match self.client.content_page(url).await {
                Err(e) if round < PAGE_ROUNDS && passing(&e) => {
                    round += 1;
                    let wait = self.client.page_backoff(round + 2);
                    let backoff = async {
                        tokio::time::sleep(wait).await;
                        Ok::<(), ApiError>(())
                    };
                    // A stop ends the wait: the window stays unfinished.
                    self.client
                        .api()
                        .unless_stopped("content_list", backoff)
                        .await?;
                }
                other => return other,
            }
        }
    }
}

/// A failure that asking again later may cure: throttling, a 5xx, a broken
/// connection or a truncated body.
fn passing(e: &ApiError) -> bool {
    match e {
        ApiError::Transport { .. } | ApiError::Malformed { .. } => true,
        ApiError::Status { status, .. } => {
            *status == 429 || *status >= 500 || matches!(e.code(), Some("AF429" | "AF50000"))
        }
        _ => false,
    }
}

/// Microsoft refused the request itself (a 4xx other than throttling and
/// the subscription's or permission's problems).
fn refused(e: &ApiError) -> bool {
    matches!(e.status(), Some(400..=499)) && !passing(e) && !classify(e).lasting()
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
