//! Counters, histograms and the few gauges that change between refreshes.

use prometheus::{
    core::Collector, Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts,
    Registry, TextEncoder,
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
    pub certificate_expiry: GaugeVec,
    pub reload_successful: Gauge,
    pub reload_success_timestamp: Gauge,
    pub activity_listed: IntCounterVec,
    pub activity_fetched: IntCounterVec,
    pub activity_expired: IntCounterVec,
    pub activity_records: IntCounterVec,
    pub activity_duplicates: IntCounterVec,
    pub activity_delay: HistogramVec,
    pub activity_gaps: IntCounterVec,
    pub collector_panics: IntCounterVec,
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
                HistogramOpts::new("m365_api_request_duration_seconds", "Duration of HTTP requests to Microsoft APIs, in seconds (all tenants together: bounded at any tenant count).").buckets(REQUEST_BUCKETS.to_vec()),
                &["api", "operation"],
            )),
            api_throttled: counter(&r, "m365_api_throttled_total", "Requests Microsoft throttled (HTTP 429, or 403 with error AF429).", &["tenant", "api", "operation"]),
            api_errors: counter(&r, "m365_api_errors_total", "Error answers from Microsoft APIs, by Microsoft error code.", &["tenant", "api", "error_code"]),
            token_requests: counter(&r, "m365_auth_token_requests_total", "OAuth token requests, by result (success, failure).", &["tenant", "result"]),
            token_expiry: register(&r, GaugeVec::new(Opts::new("m365_auth_token_expiry_timestamp_seconds", "Unix time the cached access token for an audience expires."), &["tenant", "audience"])),
            certificate_expiry: register(&r, GaugeVec::new(Opts::new("m365_auth_certificate_expiry_timestamp_seconds", "Unix time the tenant's client certificate expires (its notAfter)."), &["tenant"])),
            reload_successful: register(&r, Gauge::new("m365_config_last_reload_successful", "Whether the last configuration reload attempt succeeded (1) or was refused (0).")),
            reload_success_timestamp: register(&r, Gauge::new("m365_config_last_reload_success_timestamp_seconds", "Unix time of the last successful configuration load (start or reload).")),
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
            collector_panics: counter(&r, "m365_collector_panics_total", "Collector tasks caught panicking and restarted.", &["tenant", "collector"]),
            activity_quarantined: counter(&r, "m365_activity_content_quarantined_total", "Audit content blobs that never parsed, kept aside raw in the quarantine directory and taken out of the backlog.", ct),
            webhook_notifications: counter(&r, "m365_activity_webhook_notifications_total", "Webhook POSTs and items received, by result: accepted and foreign count content items; validation, unauthorized, malformed, too_large and unknown_tenant count requests.", &["tenant", "result"]),
            activity_discovered: counter(&r, "m365_activity_content_discovered_total", "Audit content blobs by the source that announced them first (webhook or listing); each contentId counted once.", &["tenant", "content_type", "source"]),
            registry: r,
        }
    }

    /// Every live metric family name (for the README reference check).
    pub fn metric_names(&self) -> Vec<String> {
        let cs: [&dyn Collector; 20] = [
            &self.api_requests,
            &self.api_duration,
            &self.api_throttled,
            &self.api_errors,
            &self.token_requests,
            &self.token_expiry,
            &self.certificate_expiry,
            &self.reload_successful,
            &self.reload_success_timestamp,
            &self.activity_listed,
            &self.activity_fetched,
            &self.activity_expired,
            &self.activity_records,
            &self.activity_duplicates,
            &self.activity_delay,
            &self.activity_gaps,
            &self.collector_panics,
            &self.activity_quarantined,
            &self.webhook_notifications,
            &self.activity_discovered,
        ];
        cs.iter()
            .flat_map(|c| c.desc())
            .map(|d| d.fq_name.clone())
            .collect()
    }

    /// Drop every series labelled `tenant` = `name` (a tenant removed by a
    /// reload: its series disappear instead of going stale forever).
    pub fn remove_tenant(&self, name: &str) {
        fn purge<T: prometheus::core::MetricVecBuilder>(
            v: &prometheus::core::MetricVec<T>,
            name: &str,
        ) {
            for desc in v.desc() {
                let order = &desc.variable_labels;
                for fam in v.collect() {
                    for m in fam.get_metric() {
                        let labels: std::collections::HashMap<&str, &str> = m
                            .get_label()
                            .iter()
                            .map(|l| (l.name(), l.value()))
                            .collect();
                        if labels.get("tenant") != Some(&name) {
                            continue;
                        }
                        let values: Vec<&str> = order
                            .iter()
                            .map(|k| labels.get(k.as_str()).copied().unwrap_or(""))
                            .collect();
                        let _ = v.remove_label_values(&values);
                    }
                }
            }
        }
        for c in [
            &self.api_requests,
            &self.api_throttled,
            &self.api_errors,
            &self.token_requests,
            &self.activity_listed,
            &self.activity_fetched,
            &self.activity_expired,
            &self.activity_records,
            &self.activity_duplicates,
            &self.activity_gaps,
            &self.activity_quarantined,
            &self.webhook_notifications,
            &self.activity_discovered,
            &self.collector_panics,
        ] {
            purge(c, name);
        }
        purge(&self.activity_delay, name);
        for g in [&self.token_expiry, &self.certificate_expiry] {
            purge(g, name);
        }
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
