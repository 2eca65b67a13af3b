//! Collectors and the fleet of tenants that runs them.
//!
//! Each (tenant, collector) pair runs in its own task at its interval. A run
//! builds a complete [`Outcome`] (rendered metric text plus what the status
//! page shows) and swaps it in atomically; a scrape only reads those.
//!
//! By job: [`fleet`] starts and stops tenants (and their audit feeds);
//! [`build`] assembles a tenant from its configuration (the collector
//! table); [`schedule`] runs and supervises each collector's refresh loop;
//! [`slot`] holds the state rules of one refresh; [`store`] is what a scrape
//! walks. One file per collector beside them, and [`history`], the track
//! record's computation (pure; `service_health` and `report` use it).

pub mod activity;
pub mod app_credentials;
pub mod build;
pub mod fleet;
pub mod history;
pub mod messages;
pub mod page;
pub mod schedule;
pub mod service_health;
pub mod services;
pub mod slot;
pub mod store;

pub use build::RuntimeOptions;
pub use slot::{CollectorSlot, CollectorState, TenantRuntime};
pub use store::Store;

use crate::metrics::text::Rendered;
use futures::future::BoxFuture;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CollectorKind {
    ServiceHealth,
    Messages,
    Activity,
    AppCredentials,
}

impl CollectorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CollectorKind::ServiceHealth => "service_health",
            CollectorKind::Messages => "messages",
            CollectorKind::Activity => "activity",
            CollectorKind::AppCredentials => "app_credentials",
        }
    }
}

pub use page::{ActionRow, CompletenessRow, FeedRow, IssueRow, ServiceRow, ServiceTrack};

/// What one successful refresh produced.
#[derive(Debug, Default)]
pub struct Outcome {
    pub rendered: Rendered,
    pub services: Vec<ServiceRow>,
    /// Unresolved service issues (status page).
    pub issues: Vec<IssueRow>,
    /// Message-center posts with a deadline ahead (status page).
    pub actions: Vec<ActionRow>,
    /// The audit feed per content type (status page).
    pub feed: Vec<FeedRow>,
    /// With `activity.reconcile`: how far the feed is proven complete.
    pub completeness: Option<CompletenessRow>,
    /// Current, but failed in part (the audit feed with one content type
    /// down while the others flow): the run loop publishes the outcome, sets
    /// `m365_collector_success` 0 and logs this once per change. Keep the
    /// text stable across runs.
    pub failing: Option<String>,
    /// Current, but not a success yet, and not a failure either (the audit
    /// feed before its first complete listing round): `success` 0, no
    /// error, nothing logged.
    pub warming_up: bool,
}

impl Outcome {
    /// Drop the rows' growth slack: an outcome is kept until the next
    /// refresh, once per tenant and collector (BENCHMARKS.md, "Per tenant").
    pub fn shrink_to_fit(&mut self) {
        self.services.shrink_to_fit();
        self.issues.shrink_to_fit();
        self.actions.shrink_to_fit();
        self.feed.shrink_to_fit();
    }
}

/// A refresh failure: what went wrong, in one log-friendly line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectError(pub String);

impl std::fmt::Display for CollectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<crate::api::ApiError> for CollectError {
    fn from(e: crate::api::ApiError) -> Self {
        CollectError(e.to_string())
    }
}

/// A source of metrics for one tenant.
pub trait Collector: Send + Sync {
    fn kind(&self) -> CollectorKind;
    fn interval(&self) -> Duration;
    fn collect(&self) -> BoxFuture<'_, Result<Outcome, CollectError>>;

    /// A refresh still running after this is abandoned and counts as
    /// failed: four intervals, at least two minutes.
    fn deadline(&self) -> Duration {
        self.interval()
            .saturating_mul(4)
            .max(Duration::from_secs(120))
    }
}
