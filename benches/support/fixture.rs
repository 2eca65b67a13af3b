//! A store of N tenants as a running exporter holds it (the `incident`
//! scenario's service health and messages per tenant, plus the live series
//! a tenant adds): shared by the scrape bench and examples/scrape_profile.rs.
#![allow(dead_code)]

use arc_swap::ArcSwap;
use futures::future::BoxFuture;
use m365_exporter::collect::runtime::{CollectorSlot, CollectorState, Store, TenantRuntime};
use m365_exporter::collect::{
    messages, service_health, CollectError, Collector, CollectorKind, Outcome,
};
use m365_exporter::graph::{HealthOverview, Issue, Message};
use m365_exporter::metrics::Live;
use m365_exporter::simulator::scenario;
use std::sync::Arc;
use std::time::Duration;

struct Idle(CollectorKind);
impl Collector for Idle {
    fn kind(&self) -> CollectorKind {
        self.0
    }
    fn interval(&self) -> Duration {
        Duration::from_secs(60)
    }
    fn collect(&self) -> BoxFuture<'_, Result<Outcome, CollectError>> {
        Box::pin(async { Err(CollectError("idle".into())) })
    }
}

pub fn graph_data() -> (Vec<HealthOverview>, Vec<Issue>, Vec<Message>) {
    let d = scenario::build("incident", 1_800_000_000).expect("scenario");
    let conv = |v: serde_json::Value| v;
    let ov = serde_json::from_value(conv(serde_json::to_value(&d.overviews).unwrap())).unwrap();
    let is = serde_json::from_value(serde_json::to_value(&d.issues).unwrap()).unwrap();
    let ms = serde_json::from_value(serde_json::to_value(&d.messages).unwrap()).unwrap();
    (ov, is, ms)
}

fn slot(kind: CollectorKind, outcome: Outcome) -> Arc<CollectorSlot> {
    let st = CollectorState {
        attempted: true,
        success: true,
        last_success_unix: Some(1.8e9),
        duration_seconds: 0.01,
        outcome: Some(Arc::new(outcome)),
        ..CollectorState::default()
    };
    Arc::new(CollectorSlot {
        collector: Arc::new(Idle(kind)),
        state: ArcSwap::from_pointee(st),
    })
}

pub fn store(tenants: usize) -> Store {
    let (ov, is, ms) = graph_data();
    let live = Arc::new(Live::new());
    let tenants = (0..tenants)
        .map(|i| {
            let name = format!("tenant-{i:04}");
            // The live series a running exporter has per tenant.
            for op in ["healthOverviews", "issues", "messages"] {
                live.api_requests
                    .with_label_values(&[&name, "graph", op, "200"])
                    .inc_by(10);
                live.api_duration
                    .with_label_values(&["graph", op])
                    .observe(0.1);
            }
            live.api_requests
                .with_label_values(&[&name, "login", "token", "200"])
                .inc();
            live.token_requests
                .with_label_values(&[&name, "success"])
                .inc();
            live.token_expiry
                .with_label_values(&[&name, "https://graph.microsoft.com"])
                .set(1.8e9);
            Arc::new(TenantRuntime {
                slots: vec![
                    slot(
                        CollectorKind::ServiceHealth,
                        service_health::render(&name, &ov, &is),
                    ),
                    slot(CollectorKind::Messages, messages::render(&name, &ms, 1.8e9)),
                ],
                name,
            })
        })
        .collect();
    Store { tenants, live }
}
