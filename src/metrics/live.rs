//! Counters, histograms and the few gauges that change between refreshes.

use super::family::{Cell, Encode, Gauge, GaugeVec, HistogramVec, IntCounterVec, MetricVec};
use std::sync::Arc;

/// Seconds; from 50 ms to a minute, for one HTTP request to Microsoft.
const REQUEST_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// contentCreated − CreationTime, from 1 min to 7 d (SPEC).
pub const RECORD_DELAY_BUCKETS: &[f64] = &[
    60.0, 300.0, 900.0, 1_800.0, 3_600.0, 7_200.0, 14_400.0, 43_200.0, 86_400.0, 172_800.0,
    345_600.0, 604_800.0,
];

pub struct Live {
    /// Every family, in exposition order.
    registry: Registry,
    pub api_requests: Arc<IntCounterVec>,
    pub api_duration: Arc<HistogramVec>,
    pub api_throttled: Arc<IntCounterVec>,
    pub api_errors: Arc<IntCounterVec>,
    pub token_requests: Arc<IntCounterVec>,
    pub token_expiry: Arc<GaugeVec>,
    pub certificate_expiry: Arc<GaugeVec>,
    pub reload_successful: Arc<Gauge>,
    pub reload_success_timestamp: Arc<Gauge>,
    pub activity_listed: Arc<IntCounterVec>,
    pub activity_fetched: Arc<IntCounterVec>,
    pub activity_expired: Arc<IntCounterVec>,
    pub activity_records: Arc<IntCounterVec>,
    pub activity_duplicates: Arc<IntCounterVec>,
    pub activity_delay: Arc<HistogramVec>,
    pub activity_gaps: Arc<IntCounterVec>,
    pub collector_panics: Arc<IntCounterVec>,
    pub activity_quarantined: Arc<IntCounterVec>,
    pub webhook_notifications: Arc<IntCounterVec>,
    pub activity_discovered: Arc<IntCounterVec>,
}

/// The live families in exposition order (what a scrape writes).
#[derive(Default)]
struct Registry(Vec<Arc<dyn Encode>>);

fn register<C: Cell>(reg: &mut Registry, vec: MetricVec<C>) -> Arc<MetricVec<C>> {
    let vec = Arc::new(vec);
    reg.0.push(vec.clone());
    vec
}

fn counter(
    reg: &mut Registry,
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
) -> Arc<IntCounterVec> {
    register(reg, MetricVec::with_opts(name, help, labels, ()))
}

fn gauge(
    reg: &mut Registry,
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
) -> Arc<GaugeVec> {
    register(reg, MetricVec::with_opts(name, help, labels, ()))
}

/// A gauge without labels: always exposed (0 until set).
fn gauge0(reg: &mut Registry, name: &'static str, help: &'static str) -> Arc<Gauge> {
    gauge(reg, name, help, &[]).with_label_values(&[])
}

fn histogram(
    reg: &mut Registry,
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    buckets: &[f64],
) -> Arc<HistogramVec> {
    register(
        reg,
        MetricVec::with_opts(name, help, labels, Arc::from(buckets)),
    )
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

impl Live {
    pub fn new() -> Self {
        let mut r = Registry::default();
        let ct = &["tenant", "content_type"];
        Live {
            api_requests: counter(&mut r, "m365_api_requests_total", "HTTP requests to Microsoft APIs, by API, operation and HTTP status (or `error` for transport failures).", &["tenant", "api", "operation", "code"]),
            api_duration: histogram(&mut r, "m365_api_request_duration_seconds", "Duration of HTTP requests to Microsoft APIs, in seconds (all tenants together: bounded at any tenant count).", &["api", "operation"], REQUEST_BUCKETS),
            api_throttled: counter(&mut r, "m365_api_throttled_total", "Requests Microsoft throttled (HTTP 429, or 403 with error AF429).", &["tenant", "api", "operation"]),
            api_errors: counter(&mut r, "m365_api_errors_total", "Error answers from Microsoft APIs, by Microsoft error code.", &["tenant", "api", "error_code"]),
            token_requests: counter(&mut r, "m365_auth_token_requests_total", "OAuth token requests, by result (success, failure).", &["tenant", "result"]),
            token_expiry: gauge(&mut r, "m365_auth_token_expiry_timestamp_seconds", "Unix time the cached access token for an audience expires.", &["tenant", "audience"]),
            certificate_expiry: gauge(&mut r, "m365_auth_certificate_expiry_timestamp_seconds", "Unix time the tenant's client certificate expires (its notAfter).", &["tenant"]),
            reload_successful: gauge0(&mut r, "m365_config_last_reload_successful", "Whether the last configuration reload attempt succeeded (1) or was refused (0)."),
            reload_success_timestamp: gauge0(&mut r, "m365_config_last_reload_success_timestamp_seconds", "Unix time of the last successful configuration load (start or reload)."),
            activity_listed: counter(&mut r, "m365_activity_content_listed_total", "Audit content blobs listed or announced by a webhook notification (each contentId counted once).", ct),
            activity_fetched: counter(&mut r, "m365_activity_content_fetched_total", "Audit content blobs downloaded (each contentId counted once).", ct),
            activity_expired: counter(&mut r, "m365_activity_content_expired_total", "Audit content blobs that expired before they could be downloaded: audit data lost.", ct),
            activity_records: counter(&mut r, "m365_activity_records_total", "Audit records downloaded, by workload (and operation, for the configured allowlist only).", &["tenant", "content_type", "workload", "operation"]),
            activity_duplicates: counter(&mut r, "m365_activity_records_duplicate_total", "Audit records whose Id was seen before.", ct),
            activity_delay: histogram(&mut r, "m365_activity_record_delay_seconds", "Delay between an audit record's CreationTime and its blob's contentCreated, in seconds.", ct, RECORD_DELAY_BUCKETS),
            activity_gaps: counter(&mut r, "m365_activity_listing_gaps_total", "Blobs first listed with contentCreated older than the re-listed overlap window: content indexed too late to be seen in order.", ct),
            collector_panics: counter(&mut r, "m365_collector_panics_total", "Collector tasks caught panicking and restarted.", &["tenant", "collector"]),
            activity_quarantined: counter(&mut r, "m365_activity_content_quarantined_total", "Audit content blobs that never parsed, kept aside raw in the quarantine directory and taken out of the backlog.", ct),
            webhook_notifications: counter(&mut r, "m365_activity_webhook_notifications_total", "Webhook POSTs and items received, by result: accepted and foreign count content items; validation, unauthorized, malformed, too_large and unknown_tenant count requests.", &["tenant", "result"]),
            activity_discovered: counter(&mut r, "m365_activity_content_discovered_total", "Audit content blobs by the source that announced them first (webhook or listing); each contentId counted once.", &["tenant", "content_type", "source"]),
            registry: r,
        }
    }

    /// Every live metric family name (for the README reference check).
    pub fn metric_names(&self) -> Vec<String> {
        self.registry
            .0
            .iter()
            .map(|f| f.name().to_string())
            .collect()
    }

    /// Text exposition of all live metrics, or only one tenant's (families
    /// without a `tenant` label are exporter-wide and left out of that).
    pub fn encode(&self, tenant: Option<&str>, out: &mut Vec<u8>) {
        let mut text = String::new();
        self.encode_text(tenant, &mut text);
        out.extend_from_slice(text.as_bytes());
    }

    /// [`Live::encode`] appending to text (a scrape body) without a copy.
    pub fn encode_text(&self, tenant: Option<&str>, out: &mut String) {
        for f in &self.registry.0 {
            f.encode(tenant, out);
        }
    }

    /// Drop every series labelled `tenant` = `name` (a tenant removed by a
    /// reload: its series disappear instead of going stale forever).
    pub fn remove_tenant(&self, tenant: &str) {
        for f in &self.registry.0 {
            f.remove_tenant(tenant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_tenant_drops_only_its_series() {
        let live = Live::new();
        for t in ["a", "b"] {
            live.api_requests
                .with_label_values(&[t, "graph", "issues", "200"])
                .inc();
            live.activity_delay
                .with_label_values(&[t, "Audit.General"])
                .observe(100.0);
            live.certificate_expiry.with_label_values(&[t]).set(1.0);
            live.token_expiry
                .with_label_values(&[t, "https://graph.microsoft.com"])
                .set(1.0);
        }
        live.reload_successful.set(1.0);
        live.remove_tenant("a");
        let mut out = Vec::new();
        live.encode(None, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("tenant=\"a\""), "{text}");
        // 1 counter, 15 histogram lines (12 buckets, +Inf, sum, count), 2 gauges.
        assert_eq!(text.matches("tenant=\"b\"").count(), 18, "{text}");
        assert!(text.contains("m365_config_last_reload_successful 1"));
    }
}
