//! Comparing a window's records, page by page, with the record ids the feed
//! delivered: a [`Pass`] tallies matched and missing per content type, and
//! [`Reconciler::finish`] counts the window and moves on.

use super::{
    describe, lasting, FeedAccess, Flow, PendingQuery, Phase, Reconciler, MAX_MISSING,
    MAX_PAGE_FAILURES,
};
use crate::activity::auditquery::RecordsPage;
use crate::activity::events::{RecordTally, WindowResult};
use crate::activity::Changed;
use crate::api::ApiError;
use std::collections::{BTreeMap, HashMap};

/// One reading of a query's records (compare, then repair).
#[derive(Debug)]
pub(super) struct Pass {
    /// The page to read next (None: the first).
    pub(super) next: Option<String>,
    /// Consecutive failures of the current page.
    pub(super) failures: u32,
    /// Per configured type (by index).
    pub(super) tally: Vec<RecordTally>,
    /// Missing record id key → type index.
    pub(super) missing: HashMap<u128, u8>,
    /// Records without any id (they cannot be compared).
    pub(super) skipped: usize,
    /// More missing than [`MAX_MISSING`] in a window that cannot be halved.
    pub(super) overflow: bool,
    /// The reference holds only part of the window (smallest span).
    pub(super) truncated: bool,
}

impl Pass {
    pub(super) fn new(types: usize, truncated: bool) -> Box<Pass> {
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

impl Reconciler {
    /// The query in hand, and `pass`, once the feed has finished with the
    /// query's window; until then `pass` waits in the phase `wait` makes
    /// (`Err`: the flow to return; no query in hand: nothing to do).
    pub(super) fn once_finished<F: FeedAccess>(
        &mut self,
        feed: &F,
        pass: Box<Pass>,
        wait: fn(Box<Pass>) -> Phase,
    ) -> Result<(PendingQuery, Box<Pass>), Flow> {
        let Some(q) = self.cursor.query.clone() else {
            return Err(Flow::Continue);
        };
        if !feed.finished_with(q.end) {
            self.phase = wait(pass);
            return Err(Flow::Yield);
        }
        Ok((q, pass))
    }

    /// Read the pass's next page of records and hand it, parsed, to
    /// `take` (comparing or repairing); the pass then points at the page
    /// after it. A page that cannot be read or parsed goes to
    /// [`Self::page_failed`], whose flow is the `Err`.
    pub(super) async fn read_page<T>(
        &mut self,
        q: &PendingQuery,
        mut pass: Box<Pass>,
        repairing: bool,
        now: i64,
        changed: &mut Changed,
        take: impl FnOnce(&Self, &RecordsPage<'_>, &mut Pass) -> T,
    ) -> Result<(Box<Pass>, T), Flow> {
        let url = pass
            .next
            .clone()
            .unwrap_or_else(|| self.client.records_url(&q.id));
        let read = match self.client.records(&url).await {
            Ok(body) => self.client.parse(&body).map(|page| {
                pass.failures = 0;
                let taken = take(self, &page, &mut pass);
                pass.next = page.next;
                taken
            }),
            Err(e) => Err(e),
        };
        match read {
            Ok(taken) => Ok((pass, taken)),
            Err(e) => Err(self.page_failed(q, pass, &e, repairing, now, changed)),
        }
    }

    /// A page could not be read or parsed: tried again at the next poll,
    /// unless asking again will not help (then the window failed).
    pub(super) fn page_failed(
        &mut self,
        q: &PendingQuery,
        mut pass: Box<Pass>,
        e: &ApiError,
        repairing: bool,
        now: i64,
        changed: &mut Changed,
    ) -> Flow {
        let again = |pass| match repairing {
            true => Phase::Repairing(pass),
            false => Phase::Comparing(pass),
        };
        if e.is_stopped() {
            // Ended by the feed's stop: no failure; the page is asked for again.
            self.phase = again(pass);
            return Flow::Yield;
        }
        pass.failures += 1;
        if lasting(e) || pass.failures >= MAX_PAGE_FAILURES {
            self.failed(q.start, q.end, e, now, changed);
        } else {
            self.set_problem(Some(describe(e)));
            self.phase = again(pass);
        }
        Flow::Yield
    }

    /// Compare one page of records with what the feed delivered.
    pub(super) async fn compare<F: FeedAccess>(
        &mut self,
        feed: &mut F,
        pass: Box<Pass>,
        now: i64,
        changed: &mut Changed,
    ) -> Flow {
        // Content of the window still arriving: compare once it is in.
        let (q, pass) = match self.once_finished(feed, pass, Phase::Comparing) {
            Ok(ready) => ready,
            Err(flow) => return flow,
        };
        let seen: &F = feed;
        let tally =
            |me: &Self, page: &RecordsPage<'_>, pass: &mut Pass| me.tally_page(seen, page, pass);
        let mut pass = match self.read_page(&q, pass, false, now, changed, tally).await {
            Ok((pass, ())) => pass,
            Err(flow) => return flow,
        };
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

    pub(super) fn tally_page<F: FeedAccess>(
        &self,
        feed: &F,
        page: &RecordsPage<'_>,
        pass: &mut Pass,
    ) {
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
    /// The window is reconciled: count, remember, move on.
    pub(super) fn finish(&mut self, q: &PendingQuery, mut pass: Box<Pass>, changed: &mut Changed) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
