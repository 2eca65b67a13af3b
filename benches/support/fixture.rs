//! A store of N tenants as a running exporter holds it (the `incident`
//! scenario's service health and messages per tenant, plus the live series
//! a tenant adds): shared by the scrape bench and examples/scrape_profile.rs.
#![allow(dead_code)]

use m365_exporter::api::graph::{HealthOverview, Issue, Message};
use m365_exporter::collect::slot::Idle;
use m365_exporter::collect::{messages, service_health, CollectorKind, Outcome};
use m365_exporter::collect::{CollectorSlot, CollectorState, Store, TenantRuntime};
use m365_exporter::metrics::Live;
use m365_exporter::simulator::scenario;
use prometheus::{GaugeVec, Opts, Registry};
use std::sync::Arc;

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
    Arc::new(CollectorSlot::with_state(Arc::new(Idle(kind)), st))
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
    Store::new(tenants, live)
}

/// The alternative design: the same snapshot series as registry gauges,
/// encoded on every scrape.
pub fn registry_from(text: &[u8]) -> Registry {
    let reg = Registry::new();
    let mut vecs: std::collections::HashMap<String, GaugeVec> = Default::default();
    for line in std::str::from_utf8(text).unwrap().lines() {
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let pairs: Vec<(String, String)> = labels
            .trim_end_matches('}')
            .split("\",")
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once("=\"").unwrap();
                (k.to_string(), v.trim_end_matches('"').to_string())
            })
            .collect();
        let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        let v = vecs.entry(name.to_string()).or_insert_with(|| {
            let g = GaugeVec::new(Opts::new(name, "help"), &names).unwrap();
            reg.register(Box::new(g.clone())).unwrap();
            g
        });
        let vals: Vec<&str> = pairs.iter().map(|(_, v)| v.as_str()).collect();
        v.with_label_values(&vals).set(value.parse().unwrap());
    }
    reg
}

pub fn series_in(body: &[u8]) -> usize {
    body.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && l[0] != b'#')
        .count()
}

pub fn reencode(reg: &Registry) -> Vec<u8> {
    let mut out = Vec::new();
    prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &reg.gather(), &mut out).unwrap();
    out
}
