//! API economy, counted by the simulator: every request the exporter makes is
//! one the data needs. Token requests: one per audience for the token's
//! lifetime, shared by all collectors. Graph: one request per page per
//! refresh. Blob GETs: one per blob, plus one per throttled answer. Any
//! excess fails the test.

mod support;

use m365_exporter::cli::app::{Running, WebOptions};
use m365_exporter::config::Config;
use m365_exporter::simulator::{Recorded, SimOptions, Simulator};
use std::collections::BTreeMap;
use std::time::Duration;
use support::{fast_retries, get, parse, sum, wait_for, SimTenant};

const GRAPH: &str = "/v1.0/admin/serviceAnnouncement/";

fn config(graph: &str, management: &str) -> Config {
    let tenant = SimTenant::new("contoso", graph)
        .management(management)
        .with("service_health: {enabled: true, interval: 400ms}")
        .with("messages: {enabled: true, interval: 400ms}")
        .with(
            "activity: {enabled: true, interval: 400ms, lookback: 2d, requests_per_minute: 2000}",
        );
    Config::parse(&format!("tenants:\n{tenant}"), "test").unwrap()
}

/// The requests of one Graph list, cut into refreshes (a refresh starts with
/// the first page, the one without `$skiptoken`).
fn refreshes<'a>(reqs: &'a [Recorded], list: &str) -> Vec<Vec<&'a Recorded>> {
    let path = format!("{GRAPH}{list}");
    let mut out: Vec<Vec<&Recorded>> = Vec::new();
    for r in reqs.iter().filter(|r| r.path == path) {
        if r.param("$skiptoken").is_none() || out.is_empty() {
            out.push(Vec::new());
        }
        out.last_mut().unwrap().push(r);
    }
    out
}

#[tokio::test]
async fn no_request_beyond_what_the_data_needs() {
    let mut opts = SimOptions::default();
    // Every 4th blob GET is throttled (403 AF429): those, and only those, are retried.
    opts.faults.blob_af429_every = 4;
    let sim = Simulator::start(opts.clone()).await.unwrap();
    let graph = sim.url();
    // A second spelling of the simulator's host: a second token audience.
    let management = graph.replace("127.0.0.1", "localhost");
    let exp = Running::start(
        &config(&graph, &management),
        &WebOptions::default(),
        &fast_retries(),
    )
    .await
    .unwrap();
    let blobs = sim.audit().blobs.len();
    let t = [("tenant", "contoso")];
    wait_for(
        "the audit backlog to drain and five Graph refreshes",
        Duration::from_secs(60),
        || async {
            let (_, _, body) = get(&format!("{}/metrics", exp.url())).await;
            let m = parse(&body);
            let done = sum(&m, "m365_activity_content_fetched_total", &t)
                + sum(&m, "m365_activity_content_expired_total", &t);
            // Every list, not only the first: their refreshes start at
            // spread offsets, so one list can be a refresh behind another.
            let reqs = sim.requests();
            let graph_refreshes = ["healthOverviews", "issues", "messages"]
                .iter()
                .map(|l| refreshes(&reqs, l).len())
                .min()
                .unwrap_or(0);
            (done as usize == blobs && graph_refreshes >= 5).then_some(())
        },
    )
    .await;
    exp.stop().await.unwrap();
    let reqs = sim.requests();

    // Tokens: one per audience (Graph, Management) in the whole run.
    let tokens = reqs
        .iter()
        .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
        .count();
    assert_eq!(tokens, 2, "token requests: one per audience");

    // Graph: pages per refresh, exactly.
    let scenario = sim.scenario();
    let pages = |n: usize| n.div_ceil(opts.page_size).max(1);
    for (list, n) in [
        ("healthOverviews", scenario.overviews.len()),
        ("issues", scenario.issues.len()),
        ("messages", scenario.messages.len()),
    ] {
        let runs = refreshes(&reqs, list);
        assert!(runs.len() >= 5, "{list}: {} refreshes", runs.len());
        let (last, complete) = runs.split_last().unwrap();
        for (i, run) in complete.iter().enumerate() {
            assert_eq!(
                run.len(),
                pages(n),
                "{list}: refresh {i} made {} requests for {} pages",
                run.len(),
                pages(n)
            );
        }
        assert!(last.len() <= pages(n), "{list}: last refresh");
        assert!(reqs
            .iter()
            .filter(|r| r.path.starts_with(GRAPH))
            .all(|r| r.status == 200));
    }

    // Blobs: one GET each, plus one per throttled answer.
    let mut per_blob: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in reqs
        .iter()
        .filter(|r| r.path.contains("/activity/feed/audit/"))
    {
        let e = per_blob.entry(r.path.as_str()).or_default();
        e.0 += 1;
        if r.status == 403 || r.status == 429 {
            e.1 += 1;
        }
    }
    assert_eq!(per_blob.len(), blobs, "every blob fetched");
    let throttled: usize = per_blob.values().map(|(_, t)| t).sum();
    assert!(throttled > 0, "the fault pattern throttled some blob GETs");
    for (path, (gets, throttled)) in &per_blob {
        assert_eq!(
            *gets,
            1 + throttled,
            "{path}: {gets} GETs, {throttled} throttled"
        );
    }
}
