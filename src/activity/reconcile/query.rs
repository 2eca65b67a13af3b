//! A due window's query: submitted (within the tenant's daily share), then
//! its status read with backoff until Microsoft has run it; a truncated
//! answer has the window queried in halves.

use super::compare::Pass;
use super::{
    describe, lasting, next_window, FeedAccess, Flow, PendingQuery, Phase, Reconciler,
    FIRST_CHECK_SECS, MAX_CHECK_SECS, MAX_SUBMISSIONS_PER_DAY, QUERY_DEADLINE_SECS,
};
use crate::activity::auditquery::QueryStatus;
use crate::activity::events::WindowResult;
use crate::activity::{earliest_start, Changed};
use std::collections::BTreeMap;

impl Reconciler {
    /// Submit the next due window's query, if a run is on and one is due.
    pub(super) async fn idle<F: FeedAccess>(
        &mut self,
        feed: &F,
        now: i64,
        changed: &mut Changed,
    ) -> Flow {
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
            // The feed is stopping: nothing submitted, nothing failed.
            Err(e) if e.is_stopped() => Flow::Yield,
            Err(e) => {
                self.failed(start, end, &e, now, changed);
                Flow::Yield
            }
        }
    }

    pub(super) async fn waiting(
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
            Err(e) if e.is_stopped() => {
                self.phase = Phase::Waiting { next_check, wait };
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
}
