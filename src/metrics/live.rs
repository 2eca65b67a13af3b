//! Counters, histograms and the few gauges that change between refreshes.

use prometheus::{
    core::Collector, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry,
    TextEncoder,
};

/// Seconds; from 50 ms to a minute, for one HTTP request to Microsoft.
const REQUEST_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// contentCreated − CreationTime, from 1 min to 7 d (SPEC).
pub const RECORD_DELAY_BUCKETS: &[f64] = &[
    60.0, 300.0, 900.0, 1_800.0, 3_600.0, 7_200.0, 14_400.0, 43_200.0, 86_400.0, 172_800.0,
    345_600.0, 604_800.0,
];

pub struct Live {
    registry: Registry,
    pub api_requests: IntCounterVec,
    pub api_duration: HistogramVec,
    pub api_throttled: IntCounterVec,
    pub api_errors: IntCounterVec,
    pub token_requests: IntCounterVec,
    pub token_expiry: GaugeVec,
    pub activity_listed: IntCounterVec,
    pub activity_fetched: IntCounterVec,
    pub activity_expired: IntCounterVec,
    pub activity_records: IntCounterVec,
    pub activity_duplicates: IntCounterVec,
    pub activity_delay: HistogramVec,
    pub activity_gaps: IntCounterVec,
    pub activity_quarantined: IntCounterVec,
    pub webhook_notifications: IntCounterVec,
    pub activity_discovered: IntCounterVec,
}

fn counter(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(reg, IntCounterVec::new(Opts::new(name, help), labels))
}

fn register<C: Collector + Clone + 'static>(reg: &Registry, c: prometheus::Result<C>) -> C {
    // Names are literals below; a failure here is a programming error caught by tests.
    let c = c.expect("valid metric definition");
    reg.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

impl Live {
    pub fn new() -> Self {
        let r = Registry::new();
        let ct = &["tenant", "content_type"];
        Live {
            api_requests: counter(&r, "m365_api_requests_total", "HTTP requests to Microsoft APIs, by API, operation and HTTP status (or `error` for transport failures).", &["tenant", "api", "operation", "code"]),
            api_duration: register(&r, HistogramVec::new(
                HistogramOpts::new("m365_api_request_duration_seconds", "Duration of HTTP requests to Microsoft APIs, in seconds.").buckets(REQUEST_BUCKETS.to_vec()),
                &["tenant", "api", "operation"],
            )),
            api_throttled: counter(&r, "m365_api_throttled_total", "Requests Microsoft throttled (HTTP 429, or 403 with error AF429).", &["tenant", "api", "operation"]),
            api_errors: counter(&r, "m365_api_errors_total", "Error answers from Microsoft APIs, by Microsoft error code.", &["tenant", "api", "error_code"]),
            token_requests: counter(&r, "m365_auth_token_requests_total", "OAuth token requests, by result (success, failure).", &["tenant", "result"]),
            token_expiry: register(&r, GaugeVec::new(Opts::new("m365_auth_token_expiry_timestamp_seconds", "Unix time the cached access token for an audience expires."), &["tenant", "audience"])),
            activity_listed: counter(&r, "m365_activity_content_listed_total", "Audit content blobs listed or announced by a webhook notification (each contentId counted once).", ct),
            activity_fetched: counter(&r, "m365_activity_content_fetched_total", "Audit content blobs downloaded (each contentId counted once).", ct),
            activity_expired: counter(&r, "m365_activity_content_expired_total", "Audit content blobs that expired before they could be downloaded: audit data lost.", ct),
            activity_records: counter(&r, "m365_activity_records_total", "Audit records downloaded, by workload (and operation, for the configured allowlist only).", &["tenant", "content_type", "workload", "operation"]),
            activity_duplicates: counter(&r, "m365_activity_records_duplicate_total", "Audit records whose Id was seen before.", ct),
            activity_delay: register(&r, HistogramVec::new(
                HistogramOpts::new("m365_activity_record_delay_seconds", "Delay between an audit record's CreationTime and its blob's contentCreated, in seconds.").buckets(RECORD_DELAY_BUCKETS.to_vec()),
                ct,
            )),
            activity_gaps: counter(&r, "m365_activity_listing_gaps_total", "Blobs first listed with contentCreated older than the re-listed overlap window: content indexed too late to be seen in order.", ct),
            activity_quarantined: counter(&r, "m365_activity_content_quarantined_total", "Audit content blobs that never parsed, kept aside raw in the quarantine directory and taken out of the backlog.", ct),
            webhook_notifications: counter(&r, "m365_activity_webhook_notifications_total", "Webhook POSTs and items received, by result: accepted and foreign count content items; validation, unauthorized, malformed, too_large and unknown_tenant count requests.", &["tenant", "result"]),
            activity_discovered: counter(&r, "m365_activity_content_discovered_total", "Audit content blobs by the source that announced them first (webhook or listing); each contentId counted once.", &["tenant", "content_type", "source"]),
            registry: r,
        }
    }

    /// Every live metric family name (for the README reference check).
    pub fn metric_names(&self) -> Vec<String> {
        let cs: [&dyn Collector; 16] = [
            &self.api_requests,
            &self.api_duration,
            &self.api_throttled,
            &self.api_errors,
            &self.token_requests,
            &self.token_expiry,
            &self.activity_listed,
            &self.activity_fetched,
            &self.activity_expired,
            &self.activity_records,
            &self.activity_duplicates,
            &self.activity_delay,
            &self.activity_gaps,
            &self.activity_quarantined,
            &self.webhook_notifications,
            &self.activity_discovered,
        ];
        cs.iter()
            .flat_map(|c| c.desc())
            .map(|d| d.fq_name.clone())
            .collect()
    }

    /// Text exposition of all live metrics, or only one tenant's.
    pub fn encode(&self, tenant: Option<&str>, out: &mut Vec<u8>) {
        let mut families = self.registry.gather();
        if let Some(t) = tenant {
            for f in &mut families {
                f.mut_metric().retain(|m| {
                    m.get_label()
                        .iter()
                        .any(|l| l.name() == "tenant" && l.value() == t)
                });
            }
            families.retain(|f| !f.get_metric().is_empty());
        }
        if let Err(e) = TextEncoder::new().encode(&families, out) {
            tracing::error!(error = %e, "encoding live metrics failed");
        }
    }
}
