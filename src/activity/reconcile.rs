//! The reconciler: a stage of the feed that proves it complete against an
//! independent reference, Microsoft Purview's Audit Log Query API
//! ([`super::auditquery`]), and repairs what is missing.
//!
//! Window by window, oldest first: the first starts where the feed's
//! `lookback` starts (never before Microsoft's 7 days), the others are
//! aligned on multiples of `activity.reconcile.window`. A window is due once
//! it ended `settle` ago and the feed has finished with it (every configured
//! type listed past its end, nothing created before its end still pending).
//! Then, one query at a time:
//!
//! 1. **query**: create an audit-log query over the window, read its status
//!    with backoff while Microsoft works on it (`failed`, `cancelled` or
//!    no answer within [`QUERY_DEADLINE_SECS`]: the window failed and is
//!    tried again later); a truncated answer (`isRecordCountLimitExceeded`)
//!    is never a complete reference: the window is queried again in halves;
//! 2. **compare**: its records, page by page, each mapped to a content type
//!    ([`super::record_types`], unconfigured types ignored) and looked up
//!    by the unified audit log's `Id` in the record ids the feed delivered;
//!    only the ids of missing records are kept;
//! 3. **repair** (`repair: true`): re-list the window from the Management
//!    API (content found now is fetched as usual and counted as a listing
//!    gap), wait for the feed to finish with it, then read the records again
//!    and hand those still missing, as their `auditData` bytes, to the feed,
//!    which writes them through the checkpoint like a blob's records (their
//!    ids remembered, so a late blob adds no duplicate).
//!
//! The stage runs inside the feed's task, a bounded slice of work per poll,
//! and says what happened through [`ReconcileEvents`]; its cursor (and the
//! query in flight) is saved in the feed's state file, so a restart resumes
//! the same query. Its failures are its own: logged once per change and
//! shown in its status, never failing the feed.

use super::auditquery::{record_bytes, AuditQueryClient, QueryStatus, RecordsPage};
use super::events::{ReconcileEvents, RecordTally, WindowResult};
use super::status::ReconcileStatus;
use super::{earliest_start, Changed};
use crate::api::ApiError;
use crate::config::ActivityConfig;
use crate::metrics::Live;
use crate::timefmt::now_unix;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Query submissions per tenant in any 24 h: half of the 200 Microsoft
/// allocates at least, so other tools of the tenant keep theirs.
pub const MAX_SUBMISSIONS_PER_DAY: usize = 100;
/// A query not done this long after it was submitted counts as failed.
pub const QUERY_DEADLINE_SECS: i64 = 12 * 3_600;
/// The first status read after a submission, doubling up to [`MAX_CHECK_SECS`].
const FIRST_CHECK_SECS: i64 = 1;
const MAX_CHECK_SECS: i64 = 300;
/// A truncated answer is queried again in halves down to this span; a
/// window this short that is still truncated counts as incomplete.
pub const MIN_SPAN_SECS: i64 = 60;
/// Ids of missing records kept at most for one window (about 40 MB); more
/// missing than this and the window is queried in halves, or incomplete.
pub const MAX_MISSING: usize = 1_000_000;
/// A records page failing this many times in a row fails the window.
const MAX_PAGE_FAILURES: u32 = 5;
/// A failed window is tried again after `interval`, this at most.
const RETRY_FAILED_SECS: i64 = 900;

/// What the state file keeps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// Everything before this is reconciled (or could no longer be).
    pub until: i64,
    /// End of the newest window reconciled without failure; the start of
    /// the first window before any.
    #[serde(default)]
    pub proven: i64,
    /// The span being queried since an answer was truncated (halved until
    /// it fits; back to `window` at the next window); None: `window`.
    #[serde(default)]
    pub span: Option<i64>,
    /// The query in flight.
    #[serde(default)]
    pub query: Option<PendingQuery>,
    /// Unix times of the query submissions of the last 24 h.
    #[serde(default)]
    pub submitted: Vec<i64>,
    /// Per content type: still missing after repair in the last window.
    #[serde(default)]
    pub missing: BTreeMap<String, u64>,
}

/// A query submitted and not yet done with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingQuery {
    pub id: String,
    pub start: i64,
    pub end: i64,
    pub submitted: i64,
}

/// What the reconciler needs of the rest of the feed: read its progress and
/// its record ids, and ask it to re-list a window and to take repaired
/// records (the feed implements this over its stages).
// Used only inside the feed's own task (never boxed, never sent on its own).
#[allow(async_fn_in_trait)]
pub trait FeedAccess {
    /// Every configured type listed past `end`, and nothing created before
    /// `end` still pending in the backlog.
    fn finished_with(&self, end: i64) -> bool;
    /// The feed delivered the record with this id key.
    fn delivered(&self, key: u128) -> bool;
    /// The oldest Unix time from which the feed remembers every record id
    /// it delivered (None: the whole retention).
    fn remembered_from(&self) -> Option<i64>;
    /// Re-list `[start, end)` of `content_type` into the backlog; how many
    /// items were new.
    async fn relist(&mut self, content_type: &str, start: i64, end: i64) -> Result<usize, String>;
    /// Take `records` (a JSON array of audit records) of `content_type` as
    /// the feed takes a blob's: deduplicated, counted, written, remembered.
    /// How many were new.
    async fn repair(&mut self, content_type: &str, records: Bytes, at: i64) -> Result<u64, String>;
}

/// One reading of a query's records (compare, then repair).
#[derive(Debug)]
struct Pass {
    /// The page to read next (None: the first).
    next: Option<String>,
    /// Consecutive failures of the current page.
    failures: u32,
    /// Per configured type (by index).
    tally: Vec<RecordTally>,
    /// Missing record id key → type index.
    missing: HashMap<u128, u8>,
    /// Records without any id (they cannot be compared).
    skipped: usize,
    /// More missing than [`MAX_MISSING`] in a window that cannot be halved.
    overflow: bool,
    /// The reference holds only part of the window (smallest span).
    truncated: bool,
}

impl Pass {
    fn new(types: usize, truncated: bool) -> Box<Pass> {
        Box::new(Pass {
            next: None,
            failures: 0,
            tally: vec![RecordTally::default(); types],
            missing: HashMap::new(),
            skipped: 0,
            overflow: false,
            truncated,
        })
    }
}

#[derive(Debug)]
enum Phase {
    /// No query in flight.
    Idle,
    /// Waiting for Microsoft to run the query.
    Waiting {
        next_check: i64,
        wait: i64,
    },
    Comparing(Box<Pass>),
    /// The window was re-listed; waiting for the feed to fetch what it found.
    Relisting(Box<Pass>),
    Repairing(Box<Pass>),
}

/// Whether a step leaves time for another one in this poll.
enum Flow {
    Continue,
    Yield,
}

pub struct Reconciler {
    client: Arc<AuditQueryClient>,
    tenant: String,
    types: Vec<String>,
    interval: i64,
    settle: i64,
    window: i64,
    repair: bool,
    cursor: Cursor,
    phase: Phase,
    /// When the next run starts (a run goes on while windows are due).
    next_run: i64,
    events: ReconcileEvents,
    /// Why the last attempt failed (logged once per change).
    problem: Option<String>,
}

impl Reconciler {
    /// A reconciler resuming from `saved` (None: from the feed's lookback).
    pub fn new(
        client: Arc<AuditQueryClient>,
        tenant: &str,
        cfg: &ActivityConfig,
        saved: Option<Cursor>,
        live: &Live,
        now: i64,
    ) -> Reconciler {
        let r = &cfg.reconcile;
        let cursor = saved.unwrap_or_else(|| {
            let start = (now - cfg.lookback.as_secs() as i64).max(earliest_start(now));
            Cursor {
                until: start,
                proven: start,
                ..Cursor::default()
            }
        });
        let phase = match &cursor.query {
            // Resumed: the same query, not a new submission.
            Some(_) => Phase::Waiting {
                next_check: now,
                wait: FIRST_CHECK_SECS,
            },
            None => Phase::Idle,
        };
        Reconciler {
            client,
            tenant: tenant.to_string(),
            types: cfg.content_types.clone(),
            interval: r.interval.as_secs() as i64,
            settle: r.settle.as_secs() as i64,
            window: r.window.as_secs() as i64,
            repair: r.repair,
            events: ReconcileEvents::new(live, tenant, &cfg.content_types),
            cursor,
            phase,
            next_run: now,
            problem: None,
        }
    }

    /// What the state file saves.
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    pub fn status(&self) -> ReconcileStatus {
        ReconcileStatus {
            until: self.cursor.proven,
            missing: self
                .types
                .iter()
                .map(|ct| {
                    (
                        ct.clone(),
                        self.cursor.missing.get(ct).copied().unwrap_or(0),
                    )
                })
                .collect(),
            stalled_after: self.settle + self.window + 2 * self.interval,
            problem: self.problem.clone(),
        }
    }

    /// Work for up to `budget` (at least one step): submit, check, compare,
    /// re-list or repair, as the window in hand needs. Changed when the
    /// cursor moved or records were repaired.
    pub async fn poll<F: FeedAccess>(&mut self, feed: &mut F, budget: Duration) -> Changed {
        let started = Instant::now();
        let mut changed = Changed::default();
        loop {
            let now = now_unix() as i64;
            let flow = match std::mem::replace(&mut self.phase, Phase::Idle) {
                Phase::Idle => self.idle(feed, now, &mut changed).await,
                Phase::Waiting { next_check, wait } => {
                    self.waiting(now, next_check, wait, &mut changed).await
                }
                Phase::Comparing(pass) => self.compare(feed, pass, now, &mut changed).await,
                Phase::Relisting(pass) => self.relisted(feed, pass, now, &mut changed),
                Phase::Repairing(pass) => self.repair_page(feed, pass, now, &mut changed).await,
            };
            if matches!(flow, Flow::Yield) || started.elapsed() >= budget {
                return changed;
            }
        }
    }

    /// Submit the next due window's query, if a run is on and one is due.
    async fn idle<F: FeedAccess>(&mut self, feed: &F, now: i64, changed: &mut Changed) -> Flow {
        if now < self.next_run {
            return Flow::Yield;
        }
        let lo = earliest_start(now);
        if self.cursor.until < lo {
            // Out of Microsoft's 7 days: it can no longer be re-listed.
            self.cursor.until = lo;
            self.cursor.span = None;
            *changed = Changed(true);
        }
        let Some((start, end)) = next_window(&self.cursor, self.window, self.settle, now)
            .filter(|(_, end)| feed.finished_with(*end))
        else {
            // Nothing due: this run is over.
            self.next_run = now + self.interval;
            return Flow::Yield;
        };
        if let Some(from) = feed.remembered_from().filter(|from| start < *from) {
            self.set_problem(Some(format!(
                "the feed no longer remembers every record id before {} (the 1,000,000-id cap of its 7-day duplicate memory): windows before it cannot be compared and are skipped; consider a shorter activity.reconcile.settle",
                crate::timefmt::rfc3339(from)
            )));
            self.events
                .window(start, end, WindowResult::Failed, &BTreeMap::new());
            self.advance(end);
            *changed = Changed(true);
            return Flow::Continue;
        }
        self.cursor.submitted.retain(|t| *t > now - 86_400);
        if self.cursor.submitted.len() >= MAX_SUBMISSIONS_PER_DAY {
            self.set_problem(Some(format!(
                "{MAX_SUBMISSIONS_PER_DAY} audit-log queries submitted in the last 24 h, this exporter's share of the tenant's allocation: waiting"
            )));
            self.next_run = self.cursor.submitted.iter().min().copied().unwrap_or(now) + 86_400;
            return Flow::Yield;
        }
        let name = format!(
            "m365-exporter reconcile {} {}",
            self.tenant,
            crate::timefmt::rfc3339(start)
        );
        match self.client.create(start, end, &name).await {
            Ok(q) => {
                self.cursor.submitted.push(now);
                self.cursor.query = Some(PendingQuery {
                    id: q.id,
                    start,
                    end,
                    submitted: now,
                });
                self.phase = Phase::Waiting {
                    next_check: now + FIRST_CHECK_SECS,
                    wait: FIRST_CHECK_SECS,
                };
                *changed = Changed(true);
                Flow::Yield
            }
            Err(e) => {
                self.failed(start, end, &e, now, changed);
                Flow::Yield
            }
        }
    }

    async fn waiting(
        &mut self,
        now: i64,
        next_check: i64,
        wait: i64,
        changed: &mut Changed,
    ) -> Flow {
        let Some(q) = self.cursor.query.clone() else {
            return Flow::Continue;
        };
        if now - q.submitted > QUERY_DEADLINE_SECS {
            self.failed_because(
                &q,
                format!(
                    "audit-log query not done {} h after it was submitted",
                    QUERY_DEADLINE_SECS / 3_600
                ),
                now,
                changed,
            );
            return Flow::Yield;
        }
        if now < next_check {
            self.phase = Phase::Waiting { next_check, wait };
            return Flow::Yield;
        }
        let again = |wait: i64| {
            let wait = (wait * 2).min(MAX_CHECK_SECS);
            Phase::Waiting {
                next_check: now + wait,
                wait,
            }
        };
        match self.client.get(&q.id).await {
            Ok(info) if info.status.pending() => {
                self.phase = again(wait);
                Flow::Yield
            }
            Ok(info) if info.status == QueryStatus::Succeeded => {
                if !info.truncated {
                    self.phase = Phase::Comparing(Pass::new(self.types.len(), false));
                    return Flow::Continue;
                }
                // Microsoft: a query can succeed after exceeding its
                // record-count limit. Never a complete reference.
                if self.split(&q, changed) {
                    tracing::info!(tenant = %self.tenant, from = %crate::timefmt::rfc3339(q.start),
                        to = %crate::timefmt::rfc3339(q.end),
                        "audit-log query exceeded its record-count limit; querying the window in halves");
                    return Flow::Continue;
                }
                self.phase = Phase::Comparing(Pass::new(self.types.len(), true));
                Flow::Continue
            }
            Ok(info) => {
                let why = match info.status {
                    QueryStatus::Failed => "audit-log query failed (status failed)".to_string(),
                    QueryStatus::Cancelled => {
                        "audit-log query was cancelled (status cancelled)".to_string()
                    }
                    other => format!("audit-log query ended with status {other:?}"),
                };
                self.failed_because(&q, why, now, changed);
                Flow::Yield
            }
            Err(e) if lasting(&e) => {
                self.failed(q.start, q.end, &e, now, changed);
                Flow::Yield
            }
            Err(e) => {
                // The query is Microsoft's to finish: ask again later.
                self.set_problem(Some(describe(&e)));
                self.phase = again(wait);
                Flow::Yield
            }
        }
    }

    /// The next page of records (`Err`: why it could not be read).
    async fn fetch(&self, q: &PendingQuery, pass: &Pass) -> Result<Bytes, ApiError> {
        let url = pass
            .next
            .clone()
            .unwrap_or_else(|| self.client.records_url(&q.id));
        self.client.records(&url).await
    }

    /// A page could not be read or parsed: tried again at the next poll,
    /// unless asking again will not help (then the window failed).
    fn page_failed(
        &mut self,
        q: &PendingQuery,
        mut pass: Box<Pass>,
        e: &ApiError,
        repairing: bool,
        now: i64,
        changed: &mut Changed,
    ) -> Flow {
        pass.failures += 1;
        if lasting(e) || pass.failures >= MAX_PAGE_FAILURES {
            self.failed(q.start, q.end, e, now, changed);
        } else {
            self.set_problem(Some(describe(e)));
            self.phase = match repairing {
                true => Phase::Repairing(pass),
                false => Phase::Comparing(pass),
            };
        }
        Flow::Yield
    }

    /// Compare one page of records with what the feed delivered.
    async fn compare<F: FeedAccess>(
        &mut self,
        feed: &mut F,
        pass: Box<Pass>,
        now: i64,
        changed: &mut Changed,
    ) -> Flow {
        let Some(q) = self.cursor.query.clone() else {
            return Flow::Continue;
        };
        if !feed.finished_with(q.end) {
            // Content of the window still arriving: compare once it is in.
            self.phase = Phase::Comparing(pass);
            return Flow::Yield;
        }
        let body = match self.fetch(&q, &pass).await {
            Ok(b) => b,
            Err(e) => return self.page_failed(&q, pass, &e, false, now, changed),
        };
        let page = match self.client.parse(&body) {
            Ok(p) => p,
            Err(e) => return self.page_failed(&q, pass, &e, false, now, changed),
        };
        let mut pass = pass;
        pass.failures = 0;
        self.tally_page(feed, &page, &mut pass);
        pass.next = page.next;
        if pass.missing.len() >= MAX_MISSING && !pass.overflow {
            if self.split(&q, changed) {
                tracing::warn!(tenant = %self.tenant, "more than {MAX_MISSING} records missing in one window; querying it in halves");
                return Flow::Continue;
            }
            pass.overflow = true;
        }
        if pass.next.is_some() {
            self.phase = Phase::Comparing(pass);
            return Flow::Continue;
        }
        if pass.missing.is_empty() || !self.repair || pass.overflow {
            self.finish(&q, pass, changed);
            return Flow::Continue;
        }
        // Repair, first step: the Management API may list it now.
        let mut types: Vec<u8> = pass.missing.values().copied().collect();
        types.sort_unstable();
        types.dedup();
        for ix in types {
            let ct = self.types[ix as usize].clone();
            if let Err(why) = feed.relist(&ct, q.start, q.end).await {
                tracing::warn!(tenant = %self.tenant, content_type = %ct, error = %why,
                    "re-listing a window with missing records failed; repairing from the audit-log query");
            }
        }
        self.phase = Phase::Relisting(pass);
        Flow::Yield
    }

    fn tally_page<F: FeedAccess>(&self, feed: &F, page: &RecordsPage<'_>, pass: &mut Pass) {
        pass.skipped += page.skipped;
        for r in &page.records {
            let Some(ix) = self.types.iter().position(|t| t == r.content_type) else {
                continue;
            };
            if feed.delivered(r.key) {
                pass.tally[ix].matched += 1;
            } else if !pass.missing.contains_key(&r.key) {
                pass.tally[ix].missing += 1;
                if pass.missing.len() < MAX_MISSING {
                    pass.missing.insert(r.key, ix as u8);
                }
            }
        }
    }

    /// After the re-list: what the feed fetched is no longer missing.
    fn relisted<F: FeedAccess>(
        &mut self,
        feed: &F,
        mut pass: Box<Pass>,
        _now: i64,
        changed: &mut Changed,
    ) -> Flow {
        let Some(q) = self.cursor.query.clone() else {
            return Flow::Continue;
        };
        if !feed.finished_with(q.end) {
            self.phase = Phase::Relisting(pass);
            return Flow::Yield;
        }
        pass.missing.retain(|k, _| !feed.delivered(*k));
        if pass.missing.is_empty() {
            self.finish(&q, pass, changed);
        } else {
            pass.next = None;
            self.phase = Phase::Repairing(pass);
        }
        Flow::Continue
    }

    /// Hand one page's still-missing records to the feed.
    async fn repair_page<F: FeedAccess>(
        &mut self,
        feed: &mut F,
        pass: Box<Pass>,
        now: i64,
        changed: &mut Changed,
    ) -> Flow {
        let Some(q) = self.cursor.query.clone() else {
            return Flow::Continue;
        };
        let body = match self.fetch(&q, &pass).await {
            Ok(b) => b,
            Err(e) => return self.page_failed(&q, pass, &e, true, now, changed),
        };
        let page = match self.client.parse(&body) {
            Ok(p) => p,
            Err(e) => return self.page_failed(&q, pass, &e, true, now, changed),
        };
        let mut pass = pass;
        pass.failures = 0;
        // One JSON array per content type: the records' own bytes.
        let mut arrays: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
        for r in &page.records {
            let (Some(ix), Some(raw)) = (pass.missing.get(&r.key), r.audit_data) else {
                continue;
            };
            if feed.delivered(r.key) {
                continue;
            }
            let a = arrays.entry(*ix).or_insert_with(|| b"[".to_vec());
            if a.len() > 1 {
                a.push(b',');
            }
            let (head, tail) = record_bytes(raw);
            a.extend_from_slice(head.as_bytes());
            a.extend_from_slice(tail.as_bytes());
        }
        for (ix, mut array) in arrays {
            array.push(b']');
            let ct = self.types[ix as usize].clone();
            match feed.repair(&ct, Bytes::from(array), q.start).await {
                Ok(n) => pass.tally[ix as usize].repaired += n,
                Err(why) => {
                    tracing::warn!(tenant = %self.tenant, content_type = %ct, error = %why,
                        "records from the audit-log query could not be repaired")
                }
            }
            *changed = Changed(true);
        }
        pass.missing.retain(|k, _| !feed.delivered(*k));
        pass.next = page.next;
        if pass.next.is_some() && !pass.missing.is_empty() {
            self.phase = Phase::Repairing(pass);
        } else {
            self.finish(&q, pass, changed);
        }
        Flow::Continue
    }

    /// The window is reconciled: count, remember, move on.
    fn finish(&mut self, q: &PendingQuery, mut pass: Box<Pass>, changed: &mut Changed) {
        for ix in pass.missing.values() {
            pass.tally[*ix as usize].still_missing += 1;
        }
        let result = outcome(&pass);
        let tally: BTreeMap<String, RecordTally> = self
            .types
            .iter()
            .cloned()
            .zip(pass.tally.iter().copied())
            .collect();
        if pass.skipped > 0 {
            tracing::warn!(tenant = %self.tenant, skipped = pass.skipped,
                "audit-log query records without any id cannot be compared");
        }
        self.events.window(q.start, q.end, result, &tally);
        self.cursor.missing = tally
            .iter()
            .filter(|(_, t)| t.still_missing > 0)
            .map(|(ct, t)| (ct.clone(), t.still_missing))
            .collect();
        self.cursor.proven = self.cursor.proven.max(q.end);
        self.advance(q.end);
        self.set_problem(None);
        *changed = Changed(true);
    }

    /// The cursor moves past `end` (the query in flight, if any, is done).
    fn advance(&mut self, end: i64) {
        self.cursor.until = end;
        self.cursor.query = None;
        if end.rem_euclid(self.window) == 0 {
            self.cursor.span = None;
        }
        self.phase = Phase::Idle;
    }

    /// Query the window in halves from now on; false when it cannot be
    /// halved further.
    fn split(&mut self, q: &PendingQuery, changed: &mut Changed) -> bool {
        let half = (q.end - q.start) / 2;
        if half < MIN_SPAN_SECS {
            return false;
        }
        self.cursor.span = Some(half);
        self.cursor.query = None;
        self.phase = Phase::Idle;
        *changed = Changed(true);
        true
    }

    fn failed(&mut self, start: i64, end: i64, e: &ApiError, now: i64, changed: &mut Changed) {
        let q = PendingQuery {
            id: String::new(),
            start,
            end,
            submitted: now,
        };
        self.failed_because(&q, describe(e), now, changed);
    }

    /// The window failed: counted, tried again after a while.
    fn failed_because(&mut self, q: &PendingQuery, why: String, now: i64, changed: &mut Changed) {
        self.events
            .window(q.start, q.end, WindowResult::Failed, &BTreeMap::new());
        self.set_problem(Some(why));
        if self.cursor.query.take().is_some() {
            *changed = Changed(true);
        }
        self.phase = Phase::Idle;
        self.next_run = now + self.interval.min(RETRY_FAILED_SECS);
    }

    /// Log a change of problem once (an error, or the recovery).
    fn set_problem(&mut self, p: Option<String>) {
        if p == self.problem {
            return;
        }
        match &p {
            Some(why) => {
                tracing::error!(tenant = %self.tenant, collector = "activity", stage = "reconcile", error = %why,
                    "audit feed reconciliation is failing (the feed itself is unaffected)")
            }
            None => {
                tracing::info!(tenant = %self.tenant, collector = "activity", stage = "reconcile",
                    "audit feed reconciliation recovered")
            }
        }
        self.problem = p;
    }
}

/// The next window to reconcile after `cursor`, if it ended `settle` ago:
/// from the cursor to the next multiple of `window` (or less, while a
/// truncated answer has the window queried in parts).
pub fn next_window(cursor: &Cursor, window: i64, settle: i64, now: i64) -> Option<(i64, i64)> {
    let start = cursor.until;
    let grid_end = (start.div_euclid(window) + 1) * window;
    let span = cursor.span.unwrap_or(window).max(1);
    let end = (start + span).min(grid_end);
    (end <= now - settle).then_some((start, end))
}

/// How a window ended, from what its passes found.
fn outcome(pass: &Pass) -> WindowResult {
    let missing: u64 = pass.tally.iter().map(|t| t.missing).sum();
    let still: u64 = pass.tally.iter().map(|t| t.still_missing).sum();
    if pass.truncated || pass.overflow || pass.skipped > 0 || still > 0 {
        WindowResult::Incomplete
    } else if missing == 0 {
        WindowResult::Complete
    } else {
        WindowResult::Repaired
    }
}

/// Errors asking again will not fix: the query is dropped.
fn lasting(e: &ApiError) -> bool {
    matches!(e.status(), Some(400 | 401 | 403 | 404))
}

/// One stable line per cause (a 403 names the permission).
fn describe(e: &ApiError) -> String {
    match e {
        ApiError::Status { status: 403, .. } => "the Audit Log Query API refused the app (HTTP 403): grant the Microsoft Graph application permission AuditLogsQuery.Read.All with admin consent; the feed itself is unaffected".into(),
        other => super::problem::stable_line(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_and_wait_for_settle() {
        let h = 3_600;
        let mut c = Cursor {
            until: 10 * h + 600,
            ..Cursor::default()
        };
        // The first window runs from the lookback's start to the hour.
        assert_eq!(next_window(&c, h, 0, 11 * h), Some((10 * h + 600, 11 * h)));
        assert_eq!(next_window(&c, h, 0, 11 * h - 1), None);
        assert_eq!(next_window(&c, h, 24 * h, 34 * h), None);
        assert_eq!(
            next_window(&c, h, 24 * h, 35 * h),
            Some((10 * h + 600, 11 * h))
        );
        c.until = 11 * h;
        assert_eq!(next_window(&c, h, 0, 20 * h), Some((11 * h, 12 * h)));
        // Halved after a truncated answer, until the hour is done.
        c.span = Some(h / 2);
        assert_eq!(
            next_window(&c, h, 0, 20 * h),
            Some((11 * h, 11 * h + 1_800))
        );
        c.until = 11 * h + 1_800;
        assert_eq!(
            next_window(&c, h, 0, 20 * h),
            Some((11 * h + 1_800, 12 * h))
        );
        // A day's window.
        let c = Cursor {
            until: 5 * h,
            ..Cursor::default()
        };
        assert_eq!(next_window(&c, 24 * h, 0, 30 * h), Some((5 * h, 24 * h)));
    }

    fn pass(missing: u64, still: u64) -> Pass {
        let mut p = *Pass::new(1, false);
        p.tally[0] = RecordTally {
            matched: 10,
            missing,
            repaired: missing - still,
            still_missing: still,
        };
        p
    }

    #[test]
    fn outcomes() {
        assert_eq!(outcome(&pass(0, 0)), WindowResult::Complete);
        assert_eq!(outcome(&pass(3, 0)), WindowResult::Repaired);
        assert_eq!(outcome(&pass(3, 1)), WindowResult::Incomplete);
        let mut p = pass(0, 0);
        p.truncated = true;
        assert_eq!(
            outcome(&p),
            WindowResult::Incomplete,
            "a truncated reference never proves a window complete"
        );
        let mut p = pass(0, 0);
        p.skipped = 1;
        assert_eq!(outcome(&p), WindowResult::Incomplete);
    }

    #[test]
    fn a_403_names_the_permission() {
        let e = ApiError::Status {
            operation: "audit_query_create",
            status: 403,
            code: Some("Forbidden".into()),
            message: "no".into(),
        };
        assert!(describe(&e).contains("AuditLogsQuery.Read.All"));
        assert!(lasting(&e));
        let e = ApiError::Status {
            operation: "audit_query_get",
            status: 503,
            code: None,
            message: "busy at 12:00".into(),
        };
        assert_eq!(describe(&e), "audit_query_get: HTTP 503");
        assert!(!lasting(&e));
    }

    #[test]
    fn cursors_of_older_files_and_new_ones_load() {
        let c: Cursor = serde_json::from_str(r#"{"until":5}"#).unwrap();
        assert_eq!((c.until, c.proven, c.query), (5, 0, None));
        let c = Cursor {
            until: 7,
            proven: 7,
            query: Some(PendingQuery {
                id: "q".into(),
                start: 1,
                end: 7,
                submitted: 3,
            }),
            ..Cursor::default()
        };
        let back: Cursor = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
