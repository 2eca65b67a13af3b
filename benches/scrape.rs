//! Scrape cost: rendering pre-built snapshots (what `/metrics` does) versus
//! re-encoding an equivalent prometheus Registry on every scrape, in process
//! and over loopback with a real HTTP client (plain and gzip; client time
//! included: `scripts/bench-scrape.py` measures the server's CPU alone); and
//! the cost of building one service-health snapshot from Graph's lists.

#[path = "support/fixture.rs"]
mod fixture;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fixture::{graph_data, reencode, registry_from, series_in, store};
use m365_exporter::collect::fleet::Fleet;
use m365_exporter::collect::RuntimeOptions;
use m365_exporter::collect::{messages, service_health};
use m365_exporter::config::reload::Reloader;
use m365_exporter::config::ConfigSource;
use m365_exporter::metrics::Encoding;
use m365_exporter::web::server::{app, AppState};
use std::sync::Arc;
use tokio::net::TcpListener;

fn bench_scrape(c: &mut Criterion) {
    let mut g = c.benchmark_group("scrape");
    for tenants in [1usize, 200, 1000] {
        let s = store(tenants);
        let body = s.render(None);
        g.throughput(Throughput::Elements(series_in(&body) as u64));
        // What `/metrics` does: pooled buffers; gzip spliced from cached
        // segments (the cache is filled by the first iteration).
        g.bench_with_input(BenchmarkId::new("snapshots", tenants), &s, |b, s| {
            b.iter(|| s.scrape(None, Encoding::Identity))
        });
        g.bench_with_input(BenchmarkId::new("snapshots_gzip", tenants), &s, |b, s| {
            b.iter(|| s.scrape(None, Encoding::Gzip))
        });
        // The previous designs, for the ratio in the same run: a fresh
        // buffer per scrape; gzip as one stream compressed per scrape.
        g.bench_with_input(BenchmarkId::new("snapshots_fresh", tenants), &s, |b, s| {
            b.iter(|| s.render(None))
        });
        g.bench_with_input(BenchmarkId::new("gzip_stream", tenants), &s, |b, s| {
            b.iter(|| Encoding::Gzip.encode(s.render(None)))
        });
        let reg = registry_from(&body);
        g.bench_with_input(
            BenchmarkId::new("registry_reencode", tenants),
            &reg,
            |b, reg| b.iter(|| reencode(reg)),
        );
        let probe = s.render(Some("tenant-0000"));
        assert!(!probe.is_empty());
        g.bench_with_input(BenchmarkId::new("probe_one_tenant", tenants), &s, |b, s| {
            b.iter(|| s.render(Some("tenant-0000")))
        });
    }
    g.finish();
}

/// Over loopback, with reqwest as the client: the exporter's own router, and
/// the naive design (a registry re-encoded per request) behind the same
/// axum, so both pay the same HTTP costs.
fn bench_loopback(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let mut g = c.benchmark_group("loopback");
    for tenants in [200usize, 1000] {
        let store = Arc::new(store(tenants));
        let body = store.render(None);
        let series = series_in(&body);
        let reg = Arc::new(registry_from(&body));
        let (exporter, naive) = rt.block_on(async {
            // Reloads are not benched: a reloader over an empty fleet.
            let fleet = Fleet::new(store.live.clone(), RuntimeOptions::default());
            let state = AppState {
                store: store.clone(),
                telemetry_path: "/metrics".into(),
                reloader: Arc::new(Reloader::new(
                    ConfigSource::Environment,
                    None,
                    Arc::new(fleet),
                )),
                lifecycle: false,
                web: m365_exporter::web::live_config::LiveWebConfig::fixed(Default::default()),
            };
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let exporter = l.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(l, app(state, 40)).await });
            let reg2 = reg.clone();
            let naive_app = axum::Router::new().route(
                "/metrics",
                axum::routing::get(move || {
                    let reg = reg2.clone();
                    async move { reencode(&reg) }
                }),
            );
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let naive = l.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(l, naive_app).await });
            (exporter, naive)
        });
        let get = |url: String, gzip: bool| {
            let req = client.get(url);
            let req = if gzip {
                req.header("accept-encoding", "gzip")
            } else {
                req
            };
            rt.block_on(async move { req.send().await.unwrap().bytes().await.unwrap().len() })
        };
        let plain_len = get(format!("http://{exporter}/metrics"), false);
        let gzip_len = get(format!("http://{exporter}/metrics"), true);
        eprintln!(
            "loopback/{tenants} tenants: {series} series, {plain_len} bytes plain, {gzip_len} bytes gzip ({:.1}x smaller)",
            plain_len as f64 / gzip_len as f64
        );
        g.throughput(Throughput::Elements(series as u64));
        g.bench_function(BenchmarkId::new("metrics", tenants), |b| {
            b.iter(|| get(format!("http://{exporter}/metrics"), false))
        });
        g.bench_function(BenchmarkId::new("metrics_gzip", tenants), |b| {
            b.iter(|| get(format!("http://{exporter}/metrics"), true))
        });
        g.bench_function(BenchmarkId::new("registry_reencode", tenants), |b| {
            b.iter(|| get(format!("http://{naive}/metrics"), false))
        });
    }
    g.finish();
}

fn bench_refresh(c: &mut Criterion) {
    let (ov, is, ms) = graph_data();
    c.bench_function("refresh/service_health_render", |b| {
        b.iter(|| service_health::render("contoso", &ov, &is, &fixture::track(&ov, &is)))
    });
    c.bench_function("refresh/messages_render", |b| {
        b.iter(|| messages::render("contoso", &ms, 1.8e9))
    });
}

criterion_group!(benches, bench_scrape, bench_loopback, bench_refresh);
criterion_main!(benches);
