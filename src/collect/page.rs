//! What the status page shows besides metrics: rows each collector fills in
//! alongside its rendered text, so `/` reads the same snapshot as `/metrics`.

/// One service as the status page lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRow {
    pub service_id: String,
    pub name: String,
    pub status: String,
    pub operational: bool,
    pub incidents: u32,
    pub advisories: u32,
    /// Its track record over `service_health.history_window`.
    pub track: Option<ServiceTrack>,
}

/// A service's track record as the status page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceTrack {
    pub window_seconds: f64,
    /// `m365_service_availability_ratio`.
    pub availability: f64,
    /// Incidents of the window (started in it, or before and still
    /// covering part of it).
    pub incidents: u32,
    /// Seconds of the window under an incident.
    pub incident_seconds: f64,
}

/// One unresolved service issue (incident or advisory).
#[derive(Debug, Clone, PartialEq)]
pub struct IssueRow {
    pub id: String,
    pub service_id: String,
    /// Graph's display name of the service.
    pub service: String,
    pub classification: String,
    pub status: String,
    pub title: String,
    pub start_unix: Option<f64>,
    pub last_update_unix: Option<f64>,
}

/// One message-center post whose action-required deadline is still ahead.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRow {
    pub id: String,
    pub title: String,
    pub category: String,
    pub severity: String,
    pub deadline_unix: f64,
}

/// The audit feed of one content type.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedRow {
    pub content_type: String,
    /// None until `subscriptions/list` has answered.
    pub subscribed: Option<bool>,
    /// Listed, not yet downloaded.
    pub backlog_blobs: u64,
    /// contentCreated of the oldest blob not yet downloaded (the blob lag
    /// is computed from it when the page is rendered).
    pub oldest_pending_unix: Option<i64>,
    /// Newest contentCreated seen.
    pub newest_content_unix: Option<i64>,
    /// Why this content type is not flowing, if it is not.
    pub problem: Option<String>,
}

/// How far one tenant's audit feed is proven complete (`activity.reconcile`).
#[derive(Debug, Clone, PartialEq)]
pub struct CompletenessRow {
    /// End of the newest window reconciled without failure.
    pub reconciled_until_unix: i64,
    /// Records still missing after repair in the last reconciled window.
    pub missing: u64,
    /// How far `reconciled_until_unix` may trail now before it is stalled.
    pub stalled_after_secs: i64,
    /// Why reconciling fails, if it does.
    pub problem: Option<String>,
}
