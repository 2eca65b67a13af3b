//! What the feed publishes as it goes (on a `tokio::sync::watch`), and
//! all the `activity` collector reads: per content type, the subscription,
//! the cursor, the last error, the backlog and its oldest blob. Times are
//! Unix seconds; ages are left to the reader, so that a lag computed from
//! them keeps growing while the feed is stuck.

use super::problem::Problem;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypeStatus {
    /// `subscriptions/list` (or `/start`) says enabled; None until known.
    pub subscribed: Option<bool>,
    /// End of the last window listed completely (the cursor).
    pub listed_until: Option<i64>,
    /// Whether the last poll listed this type completely.
    pub listed_ok: bool,
    /// Unix time of the last failed call for this type.
    pub last_error: Option<i64>,
    /// Why it is not flowing, if it is not.
    pub problem: Option<Problem>,
    /// Blobs listed, not yet fetched.
    pub backlog_blobs: usize,
    /// contentCreated of the oldest of them.
    pub oldest_pending: Option<i64>,
    /// Newest contentCreated seen.
    pub newest_content: Option<i64>,
    /// With `activity.webhook`: whether `subscriptions/list` shows our
    /// webhook enabled on this type's subscription; None without a webhook.
    pub webhook_enabled: Option<bool>,
    /// Unix time of the last notification naming this type.
    pub last_notification: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedStatus {
    /// Polls finished since start (0: none yet).
    pub polls: u64,
    /// Unix time the last successful poll ended: it listed every
    /// configured type completely with the checkpoint being written
    /// ([`FeedStatus::healthy`]), and its downloads finished (nothing left
    /// pending) or moved at least one blob. None before this feed's first
    /// (a feed stuck in hanging downloads lists every poll, moves nothing,
    /// and keeps this where it was: the collector's staleness shows it).
    pub last_success: Option<f64>,
    pub types: BTreeMap<String, TypeStatus>,
    /// Problems of the feed as a whole (`download`, `state_file`,
    /// `<content type> webhook`), from the problem board.
    pub feed_problems: BTreeMap<String, Problem>,
    /// With `activity.reconcile`: how far the feed is proven complete.
    pub reconcile: Option<ReconcileStatus>,
}

/// The reconciler's findings (a failing reconciler never fails the feed:
/// it shows here, in its own metrics and on the status page).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReconcileStatus {
    /// End of the newest window reconciled without failure (before any:
    /// the start of the first window).
    pub until: i64,
    /// Per configured content type: records still missing after repair in
    /// the last reconciled window.
    pub missing: BTreeMap<String, u64>,
    /// settle + window + 2 × interval, in seconds: how far `until` may
    /// trail now before reconciliation counts as stalled.
    pub stalled_after: i64,
    /// Why the last attempt failed, if it did (one stable line).
    pub problem: Option<String>,
}

impl FeedStatus {
    /// Before the feed has run: every configured type, nothing known yet,
    /// so that its series are served from the first scrape.
    pub fn configured(types: &[String]) -> FeedStatus {
        FeedStatus {
            types: types
                .iter()
                .map(|ct| (ct.clone(), TypeStatus::default()))
                .collect(),
            ..FeedStatus::default()
        }
    }

    /// Nothing has gone wrong yet, but the first poll has not completed
    /// (its listings or downloads still running): not a success, not a
    /// failure either.
    /// Problems that do not touch health (a webhook not registered) do not
    /// count here either.
    pub fn warming_up(&self) -> bool {
        self.polls == 0
            && self.types.values().all(|t| t.problem.is_none())
            && !self
                .feed_problems
                .contains_key(super::problem::CHECKPOINT_SCOPE)
    }

    /// `m365_collector_success{collector="activity"}`: a poll has completed,
    /// every configured type listed completely in the last one, and the
    /// checkpoint is being written. 0 while the first poll runs, so that a
    /// feed stuck from its start never counts as a success.
    pub fn healthy(&self) -> bool {
        self.polls > 0
            && self.types.values().all(|t| t.listed_ok)
            && !self
                .feed_problems
                .contains_key(super::problem::CHECKPOINT_SCOPE)
    }

    /// Every problem, by content type or scope.
    pub fn problems(&self) -> BTreeMap<String, Problem> {
        let mut out: BTreeMap<String, Problem> = self
            .types
            .iter()
            .filter_map(|(ct, t)| t.problem.clone().map(|p| (ct.clone(), p)))
            .collect();
        out.extend(self.feed_problems.clone());
        out
    }

    /// The failing part in one stable line, for the collector's error.
    pub fn summary(&self) -> Option<String> {
        let lines: Vec<String> = self
            .problems()
            .iter()
            .map(|(k, p)| format!("{k}: {}", p.short()))
            .collect();
        (!lines.is_empty()).then(|| lines.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_means_every_type_listed() {
        let mut s = FeedStatus {
            polls: 1,
            ..FeedStatus::default()
        };
        s.types.insert(
            "Audit.Exchange".into(),
            TypeStatus {
                listed_ok: true,
                ..Default::default()
            },
        );
        assert!(s.healthy() && s.summary().is_none());
        s.types.insert(
            "DLP.All".into(),
            TypeStatus {
                problem: Some(Problem::MissingPermission),
                ..Default::default()
            },
        );
        assert!(!s.healthy());
        assert_eq!(
            s.summary().as_deref(),
            Some("DLP.All: missing permission (AF10001)")
        );
        s.types.get_mut("DLP.All").unwrap().listed_ok = true;
        s.feed_problems.insert(
            "download".into(),
            Problem::Failed("blob downloads failing".into()),
        );
        assert!(s.healthy(), "download trouble shows in the lag, not here");
        s.feed_problems.insert(
            crate::activity::problem::CHECKPOINT_SCOPE.into(),
            Problem::Failed("cannot write".into()),
        );
        assert!(!s.healthy());
    }
}
