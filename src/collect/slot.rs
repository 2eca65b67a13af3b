//! The state rules of one (tenant, collector) slot: what a refresh leaves
//! behind ([`next_state`], [`failed_in_part`]), when the next one runs
//! ([`next_wait`]), and the `m365_collector_*` lines a state shows a scrape
//! ([`StateLines`]). Pure, so the rules are tested directly; the run loop
//! (`schedule`) applies them and the scrape walk (`store`) reads them.

use super::{CollectError, Collector, CollectorKind, Outcome};
use crate::metrics::text::{content_hash, write_sample};
use crate::metrics::Family;
use crate::timefmt::now_unix;
use arc_swap::ArcSwap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The last refresh of one collector, as a scrape and the status page see it.
#[derive(Debug, Default)]
pub struct CollectorState {
    pub attempted: bool,
    pub success: bool,
    pub last_success_unix: Option<f64>,
    pub last_success_at: Option<Instant>,
    pub duration_seconds: f64,
    pub last_error: Option<String>,
    /// The latest good outcome; kept through failures for at most 3 intervals.
    pub outcome: Option<Arc<Outcome>>,
    /// This state's `m365_collector_*` lines, rendered by the first scrape
    /// that reads the state (a scrape then copies them).
    pub lines: OnceLock<StateLines>,
}

/// The `m365_collector_*` sample lines of one collector state, each with
/// its [`content_hash`].
#[derive(Debug)]
pub struct StateLines {
    text: String,
    /// (end in `text`, hash) per family of [`StateLines::FAMILIES`]; an
    /// empty range when the state has no such sample.
    parts: [(usize, u64); 5],
}

impl StateLines {
    const FAMILIES: [Family; 5] = [
        Family::CollectorSuccess,
        Family::CollectorLastSuccess,
        Family::CollectorDuration,
        Family::CollectorInterval,
        Family::CollectorStart,
    ];

    /// The lines of `slot` (of `tenant`) in state `st`.
    pub(super) fn new(tenant: &str, slot: &CollectorSlot, st: &CollectorState) -> Self {
        let kind = slot.collector.kind();
        let labels = [("tenant", tenant), ("collector", kind.as_str())];
        let mut text = String::with_capacity(500);
        let mut parts = [(0, 0); 5];
        for (part, fam) in parts.iter_mut().zip(Self::FAMILIES) {
            let start = text.len();
            let v = match fam {
                Family::CollectorInterval => Some(slot.collector.interval().as_secs_f64()),
                Family::CollectorStart => Some(slot.started_unix),
                _ if !st.attempted => None,
                Family::CollectorSuccess => Some(if st.success { 1.0 } else { 0.0 }),
                Family::CollectorLastSuccess => st.last_success_unix,
                _ => Some(st.duration_seconds),
            };
            if let Some(v) = v {
                write_sample(&mut text, fam.name(), &labels, v);
            }
            *part = (text.len(), content_hash(&text.as_bytes()[start..]));
        }
        StateLines { text, parts }
    }

    /// The line of `fam` (empty without a sample), and its hash.
    pub(super) fn get(&self, fam: Family) -> (&str, u64) {
        let i = Self::FAMILIES.iter().position(|f| *f == fam).unwrap_or(0);
        let start = if i == 0 { 0 } else { self.parts[i - 1].0 };
        let (end, hash) = self.parts[i];
        (&self.text[start..end], hash)
    }
}

/// One collector of a tenant and its last state: the run loop writes the
/// state, a scrape and the status page read it.
pub struct CollectorSlot {
    pub collector: Arc<dyn Collector>,
    pub state: ArcSwap<CollectorState>,
    /// Unix time the slot was made (its tenant started).
    pub started_unix: f64,
    /// When set, the run loop refreshes as soon as this changes instead
    /// of waiting for the interval (see [`Wake`]).
    pub wake: Option<Wake>,
}

/// The channel a pushing source publishes on: the audit feed's status.
/// It is the only one today; the run loop needs only `changed()`, so
/// another source's channel would make this an enum, not a trait method.
pub type Wake = tokio::sync::watch::Receiver<crate::activity::status::FeedStatus>;

impl CollectorSlot {
    /// A collector starting now, not refreshed yet.
    pub fn new(collector: Arc<dyn Collector>) -> CollectorSlot {
        CollectorSlot::with_state(collector, CollectorState::default())
    }

    /// A collector starting now in state `state` (tests and benches set
    /// states by hand).
    pub fn with_state(collector: Arc<dyn Collector>, state: CollectorState) -> CollectorSlot {
        CollectorSlot {
            collector,
            state: ArcSwap::from_pointee(state),
            started_unix: now_unix(),
            wake: None,
        }
    }

    /// The slot, woken by `wake` (see [`CollectorSlot::wake`]).
    pub fn woken_by(mut self, wake: Option<Wake>) -> CollectorSlot {
        self.wake = wake;
        self
    }
}

/// A collector that never refreshes (every refresh fails): a slot whose
/// state is set by hand, in tests and benches.
#[doc(hidden)]
pub struct Idle(pub CollectorKind);

impl Collector for Idle {
    fn kind(&self) -> CollectorKind {
        self.0
    }
    fn interval(&self) -> Duration {
        Duration::from_secs(60)
    }
    fn collect(&self) -> futures::future::BoxFuture<'_, Result<Outcome, CollectError>> {
        Box::pin(async { Err(CollectError("idle".into())) })
    }
}

/// One running tenant as a scrape sees it: its slots, in the order of the
/// collector table (`build`).
pub struct TenantRuntime {
    pub name: String,
    pub slots: Vec<Arc<CollectorSlot>>,
}

/// How long the last good snapshot outlives failures, in intervals.
const STALE_INTERVALS: u32 = 3;

/// First retry of a failed refresh; doubles per consecutive failure.
const FAILURE_RETRY: Duration = Duration::from_secs(5);

/// Time to the next refresh: the interval, or sooner after a failure
/// (5 s, 10 s, 20 s, … up to the interval), so a blip does not leave a
/// 5-minute collector failed for 5 minutes, while an outage is not hammered.
pub fn next_wait(interval: Duration, consecutive_failures: u32) -> Duration {
    match consecutive_failures {
        0 => interval,
        n => FAILURE_RETRY
            .saturating_mul(1 << (n - 1).min(16))
            .min(interval),
    }
}

/// The state after a refresh (pure, so its rules are tested directly).
pub fn next_state(
    prev: &CollectorState,
    result: Result<Outcome, CollectError>,
    took: Duration,
    interval: Duration,
) -> CollectorState {
    match result {
        Ok(mut outcome) => CollectorState {
            attempted: true,
            success: true,
            last_success_unix: Some(now_unix()),
            last_success_at: Some(Instant::now()),
            duration_seconds: took.as_secs_f64(),
            last_error: None,
            outcome: Some(Arc::new({
                outcome.shrink_to_fit();
                outcome
            })),
            lines: OnceLock::new(),
        },
        Err(e) => {
            let fresh_enough = prev
                .last_success_at
                .is_some_and(|t| t.elapsed() <= interval * STALE_INTERVALS);
            CollectorState {
                attempted: true,
                success: false,
                last_success_unix: prev.last_success_unix,
                last_success_at: prev.last_success_at,
                duration_seconds: took.as_secs_f64(),
                last_error: Some(e.0),
                outcome: if fresh_enough {
                    prev.outcome.clone()
                } else {
                    None
                },
                lines: OnceLock::new(),
            }
        }
    }
}

/// An `Ok` refresh that is not done yet ([`Outcome::warming_up`]): its
/// outcome is current, but it is no success (success 0, last success
/// unchanged) and no failure (no error).
pub fn warming_up(prev: &CollectorState, next: &mut CollectorState) {
    next.success = false;
    next.last_success_unix = prev.last_success_unix;
    next.last_success_at = prev.last_success_at;
    next.last_error = None;
}

/// An `Ok` refresh that failed in part ([`Outcome::failing`]): its outcome
/// is current, but it is not a success (success 0, last success unchanged,
/// the reason logged).
pub fn failed_in_part(prev: &CollectorState, next: &mut CollectorState, reason: String) {
    next.success = false;
    next.last_success_unix = prev.last_success_unix;
    next.last_success_at = prev.last_success_at;
    next.last_error = Some(reason);
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_refreshes_retry_sooner_with_backoff() {
        let i = Duration::from_secs(300);
        let waits: Vec<u64> = (0..8).map(|n| next_wait(i, n).as_secs()).collect();
        assert_eq!(waits, [300, 5, 10, 20, 40, 80, 160, 300]);
        assert_eq!(next_wait(Duration::from_secs(2), 1), Duration::from_secs(2));
        assert_eq!(next_wait(i, 40), i);
    }

    #[test]
    fn keeps_last_good_snapshot_for_three_intervals() {
        let ok = next_state(
            &CollectorState::default(),
            Ok(Outcome::default()),
            Duration::ZERO,
            Duration::from_secs(60),
        );
        assert!(ok.success && ok.outcome.is_some());
        let failed = next_state(
            &ok,
            Err(CollectError("boom".into())),
            Duration::ZERO,
            Duration::from_secs(60),
        );
        assert!(!failed.success);
        assert!(failed.outcome.is_some(), "kept within 3 intervals");
        assert_eq!(failed.last_error.as_deref(), Some("boom"));
        assert_eq!(failed.last_success_unix, ok.last_success_unix);
        let mut old = ok;
        old.last_success_at = Instant::now().checked_sub(Duration::from_secs(181));
        let dropped = next_state(
            &old,
            Err(CollectError("boom".into())),
            Duration::ZERO,
            Duration::from_secs(60),
        );
        assert!(dropped.outcome.is_none(), "dropped after 3 intervals");
    }

    #[test]
    fn partial_failure_keeps_the_fresh_outcome_but_is_no_success() {
        let prev = CollectorState::default();
        let mut next = next_state(
            &prev,
            Ok(Outcome::default()),
            Duration::ZERO,
            Duration::from_secs(60),
        );
        failed_in_part(&prev, &mut next, "Audit.Exchange: no subscription".into());
        assert!(next.attempted && !next.success);
        assert!(next.outcome.is_some());
        assert!(next.last_success_unix.is_none());
        assert_eq!(
            next.last_error.as_deref(),
            Some("Audit.Exchange: no subscription")
        );
    }
}
