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
//!
//! The rooms: this file, the stage's state machine (what a poll does next,
//! failures and their logging); [`windows`], which window is due and the
//! cursor; [`query`], submitting a window's query and waiting for it;
//! [`compare`], reading its records against the feed's; [`repair`], handing
//! the feed what it is missing.

mod compare;
mod query;
mod repair;
mod windows;

pub use windows::{next_window, Cursor, PendingQuery};

use crate::activity::auditquery::AuditQueryClient;
use crate::activity::events::{ReconcileEvents, WindowResult};
use crate::activity::status::ReconcileStatus;
use crate::activity::{earliest_start, Changed};
use crate::api::ApiError;
use crate::config::ActivityConfig;
use crate::metrics::Live;
use crate::timefmt::now_unix;
use bytes::Bytes;
use compare::Pass;
use std::collections::BTreeMap;
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
}
