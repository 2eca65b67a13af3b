//! 1,000 tenants against one simulator: all present, first refreshes spread
//! out, one tenant whose Graph endpoint hangs delays no other, and shards
//! 0/3, 1/3, 2/3 partition the tenants exactly.

mod support;

use m365_exporter::cli::app::{Running, WebOptions};
use m365_exporter::collect::fleet::first_delay;
use m365_exporter::config::shard::Shard;
use m365_exporter::config::Config;
use m365_exporter::simulator::{SimOptions, Simulator};
use std::collections::BTreeSet;
use std::time::Duration;
use support::{fast_retries, get, parse, select, wait_for, SimTenant};

const N: usize = 1000;
const HANGING: &str = "t0500";

fn config(sim: &str, hanging: &str) -> Config {
    let mut y = String::from(
        "defaults:\n  service_health: {interval: 1h}\n  messages: {enabled: false}\ntenants:\n",
    );
    for i in 0..N {
        let name = format!("t{i:04}");
        let graph = if name == HANGING { hanging } else { sim };
        let tenant = SimTenant::new(&name, sim)
            .tenant_id(&format!("{name}.sim.test"))
            .graph(graph);
        y.push_str(&tenant.to_string());
    }
    Config::parse(&y, "many.yml").unwrap()
}

/// Accepts connections and never answers.
async fn black_hole() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tenants_one_hanging() {
    let sim = Simulator::start(SimOptions {
        any_tenant: true,
        page_size: 100,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let config = config(&sim.url(), &black_hole().await);
    let mut opts = fast_retries();
    let spread = Duration::from_secs(2);
    opts.first_refresh_spread = spread;
    opts.request_timeout = Duration::from_secs(600); // the hang outlasts the test
    let started = m365_exporter::timefmt::now_unix();
    let exp = Running::start(&config, &WebOptions::default(), &opts)
        .await
        .unwrap();
    assert_eq!(exp.store.tenants().len(), N, "all present");

    let url = format!("{}/metrics", exp.url());
    let m = wait_for(
        "999 tenants refreshed",
        Duration::from_secs(120),
        || async {
            let m = parse(&get(&url).await.2);
            let ok = select(&m, "m365_collector_success", &[])
                .iter()
                .filter(|s| s.value == 1.0)
                .count();
            (ok == N - 1).then_some(m)
        },
    )
    .await;
    // The hanging tenant is still in its first refresh: no outcome yet,
    // while every other tenant has one.
    assert!(select(&m, "m365_collector_success", &[("tenant", HANGING)]).is_empty());
    let refreshed: BTreeSet<&str> = select(&m, "m365_collector_success", &[])
        .iter()
        .map(|s| s.labels["tenant"].as_str())
        .collect();
    assert_eq!(refreshed.len(), N - 1);
    assert!(!exp.store.ready(), "not ready while one tenant hangs");
    // It is still listed, and probe-able.
    let (status, _, _) = get(&format!("{}/probe?target={HANGING}", exp.url())).await;
    assert_eq!(status, 200);

    // First refreshes were spread over the 2 s window, not fired at once:
    // no tenant refreshed before its turn (a causal bound: load can only
    // make a refresh later, never earlier).
    for s in select(&m, "m365_collector_last_success_timestamp_seconds", &[]) {
        let name = &s.labels["tenant"];
        let i: usize = name[1..].parse().unwrap();
        let turn = first_delay(i, N, Duration::from_secs(3600), spread).as_secs_f64();
        assert!(
            s.value >= started + turn - 0.001,
            "{name} refreshed {:.3}s after start, before its turn at {turn:.3}s",
            s.value - started
        );
    }

    exp.stop().await.unwrap();
    sim.stop().await;
}

#[test]
fn shards_partition_the_thousand_tenants_exactly() {
    let config = config("http://127.0.0.1:1", "http://127.0.0.1:1");
    let all: BTreeSet<String> = config.tenants.iter().map(|t| t.name.clone()).collect();
    let mut seen = BTreeSet::new();
    for i in 0..3 {
        let shard: Shard = format!("{i}/3").parse().unwrap();
        let part = shard.filter(config.clone());
        assert!(part.tenants.len() > 250, "{shard}: {}", part.tenants.len());
        for t in part.tenants {
            assert!(seen.insert(t.name.clone()), "{} in two shards", t.name);
        }
    }
    assert_eq!(seen, all);
}
