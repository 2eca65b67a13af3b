//! Repair of a window with missing records: once the feed fetched what the
//! re-list found, the records still missing are read again from the query
//! and handed to the feed as their `auditData` bytes.

use super::compare::Pass;
use super::{FeedAccess, Flow, Phase, Reconciler};
use crate::activity::auditquery::{push_record, RecordsPage};
use crate::activity::Changed;
use bytes::Bytes;
use std::collections::BTreeMap;

impl Reconciler {
    /// After the re-list: what the feed fetched is no longer missing.
    pub(super) fn relisted<F: FeedAccess>(
        &mut self,
        feed: &F,
        pass: Box<Pass>,
        _now: i64,
        changed: &mut Changed,
    ) -> Flow {
        let (q, mut pass) = match self.once_finished(feed, pass, Phase::Relisting) {
            Ok(ready) => ready,
            Err(flow) => return flow,
        };
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
    pub(super) async fn repair_page<F: FeedAccess>(
        &mut self,
        feed: &mut F,
        pass: Box<Pass>,
        now: i64,
        changed: &mut Changed,
    ) -> Flow {
        let Some(q) = self.cursor.query.clone() else {
            return Flow::Continue;
        };
        let seen: &F = feed;
        let missing = |_: &Self, page: &RecordsPage<'_>, pass: &mut Pass| arrays(seen, page, pass);
        let (mut pass, arrays) = match self.read_page(&q, pass, true, now, changed, missing).await {
            Ok(read) => read,
            Err(flow) => return flow,
        };
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
        if pass.next.is_some() && !pass.missing.is_empty() {
            self.phase = Phase::Repairing(pass);
        } else {
            self.finish(&q, pass, changed);
        }
        Flow::Continue
    }
}

/// A page's records still missing, one JSON array per content type (by
/// index) of the records' own bytes, as a blob holds them.
fn arrays<F: FeedAccess>(feed: &F, page: &RecordsPage<'_>, pass: &Pass) -> BTreeMap<u8, Vec<u8>> {
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
        push_record(raw, a);
    }
    arrays
}
