//! Counters, histograms and the few gauges that change between refreshes:
//! one vector per [`LiveFamily`] of the catalog, registered in its order.

use super::catalog::LiveFamily;
use super::family::{Cell, Encode, Gauge, GaugeVec, HistogramVec, IntCounterVec, MetricVec};
use std::sync::Arc;

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
    pub reconcile_windows: Arc<IntCounterVec>,
    pub reconcile_records: Arc<IntCounterVec>,
    pub activity_discovered: Arc<IntCounterVec>,
    pub activity_state_resets: Arc<IntCounterVec>,
}

/// The live families in exposition order (what a scrape writes).
#[derive(Default)]
struct Registry(Vec<Arc<dyn Encode>>);

/// The vector of `fam`, registered; its name, HELP and labels are the
/// catalog's, and its kind must be `C`'s.
fn register<C: Cell>(reg: &mut Registry, fam: LiveFamily, opts: C::Opts) -> Arc<MetricVec<C>> {
    let d = fam.def();
    assert_eq!(d.kind.as_str(), C::KIND, "{}: catalog kind", d.name);
    let vec = Arc::new(MetricVec::with_opts(d.name, d.help, d.labels, opts));
    reg.0.push(vec.clone());
    vec
}

fn counter(reg: &mut Registry, fam: LiveFamily) -> Arc<IntCounterVec> {
    register(reg, fam, ())
}

fn gauge(reg: &mut Registry, fam: LiveFamily) -> Arc<GaugeVec> {
    register(reg, fam, ())
}

/// A gauge without labels: always exposed (0 until set).
fn gauge0(reg: &mut Registry, fam: LiveFamily) -> Arc<Gauge> {
    gauge(reg, fam).with_label_values(&[])
}

fn histogram(reg: &mut Registry, fam: LiveFamily) -> Arc<HistogramVec> {
    register(reg, fam, Arc::from(fam.def().buckets))
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

impl Live {
    pub fn new() -> Self {
        use LiveFamily as F;
        let mut r = Registry::default();
        Live {
            api_requests: counter(&mut r, F::ApiRequests),
            api_duration: histogram(&mut r, F::ApiDuration),
            api_throttled: counter(&mut r, F::ApiThrottled),
            api_errors: counter(&mut r, F::ApiErrors),
            token_requests: counter(&mut r, F::TokenRequests),
            token_expiry: gauge(&mut r, F::TokenExpiry),
            certificate_expiry: gauge(&mut r, F::CertificateExpiry),
            reload_successful: gauge0(&mut r, F::ReloadSuccessful),
            reload_success_timestamp: gauge0(&mut r, F::ReloadSuccessTimestamp),
            activity_listed: counter(&mut r, F::ActivityListed),
            activity_fetched: counter(&mut r, F::ActivityFetched),
            activity_expired: counter(&mut r, F::ActivityExpired),
            activity_records: counter(&mut r, F::ActivityRecords),
            activity_duplicates: counter(&mut r, F::ActivityDuplicates),
            activity_delay: histogram(&mut r, F::ActivityDelay),
            activity_gaps: counter(&mut r, F::ActivityGaps),
            collector_panics: counter(&mut r, F::CollectorPanics),
            activity_quarantined: counter(&mut r, F::ActivityQuarantined),
            webhook_notifications: counter(&mut r, F::WebhookNotifications),
            reconcile_windows: counter(&mut r, F::ReconcileWindows),
            reconcile_records: counter(&mut r, F::ReconcileRecords),
            activity_discovered: counter(&mut r, F::ActivityDiscovered),
            activity_state_resets: counter(&mut r, F::ActivityStateResets),
            registry: r,
        }
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
    fn every_live_family_registered_once_in_catalog_order() {
        let live = Live::new();
        let registered: Vec<&str> = live.registry.0.iter().map(|f| f.name()).collect();
        let catalog: Vec<&str> = LiveFamily::ALL.iter().map(|f| f.def().name).collect();
        assert_eq!(registered, catalog);
    }

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
