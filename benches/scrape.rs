//! Scrape cost: rendering pre-built snapshots (what `/metrics` does) versus
//! re-encoding an equivalent prometheus Registry on every scrape; and the
//! cost of building one service-health snapshot from Graph's lists.

use arc_swap::ArcSwap;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures::future::BoxFuture;
use m365_exporter::collect::runtime::{CollectorSlot, CollectorState, Store, TenantRuntime};
use m365_exporter::collect::{
    messages, service_health, CollectError, Collector, CollectorKind, Outcome,
};
use m365_exporter::graph::{HealthOverview, Issue, Message};
use m365_exporter::metrics::Live;
use m365_exporter::simulator::scenario;
use prometheus::{GaugeVec, Opts, Registry};
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

fn graph_data() -> (Vec<HealthOverview>, Vec<Issue>, Vec<Message>) {
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

fn store(tenants: usize) -> Store {
    let (ov, is, ms) = graph_data();
    let live = Arc::new(Live::new());
    let tenants = (0..tenants)
        .map(|i| {
            let name = format!("tenant-{i:04}");
            // A few live series per tenant, as a running exporter has.
            for op in ["healthOverviews", "issues", "messages"] {
                live.api_requests
                    .with_label_values(&[&name, "graph", op, "200"])
                    .inc_by(10);
                live.api_duration
                    .with_label_values(&["graph", op])
                    .observe(0.1);
            }
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
fn registry_from(text: &[u8]) -> Registry {
    let reg = Registry::new();
    let mut vecs: std::collections::HashMap<String, GaugeVec> = Default::default();
    for line in std::str::from_utf8(text).unwrap().lines() {
        if line.starts_with('#') || !line.starts_with("m365_service") {
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

fn bench_scrape(c: &mut Criterion) {
    let mut g = c.benchmark_group("scrape");
    for tenants in [1usize, 100, 1000] {
        let s = store(tenants);
        let body = s.render(None);
        let series = body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty() && l[0] != b'#')
            .count();
        g.throughput(Throughput::Elements(series as u64));
        g.bench_with_input(BenchmarkId::new("snapshots", tenants), &s, |b, s| {
            b.iter(|| s.render(None))
        });
        if tenants <= 100 {
            let reg = registry_from(&body);
            g.bench_with_input(
                BenchmarkId::new("registry_reencode", tenants),
                &reg,
                |b, reg| {
                    b.iter(|| {
                        let mut out = Vec::new();
                        prometheus::Encoder::encode(
                            &prometheus::TextEncoder::new(),
                            &reg.gather(),
                            &mut out,
                        )
                        .unwrap();
                        out
                    })
                },
            );
        }
        let probe = s.render(Some("tenant-0000"));
        assert!(!probe.is_empty());
        g.bench_with_input(BenchmarkId::new("probe_one_tenant", tenants), &s, |b, s| {
            b.iter(|| s.render(Some("tenant-0000")))
        });
    }
    g.finish();
}

fn bench_refresh(c: &mut Criterion) {
    let (ov, is, ms) = graph_data();
    c.bench_function("refresh/service_health_render", |b| {
        b.iter(|| service_health::render("contoso", &ov, &is))
    });
    c.bench_function("refresh/messages_render", |b| {
        b.iter(|| messages::render("contoso", &ms, 1.8e9))
    });
}

criterion_group!(benches, bench_scrape, bench_refresh);
criterion_main!(benches);
