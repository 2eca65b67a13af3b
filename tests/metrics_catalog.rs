//! What the exporter serves is the metric catalog (src/metrics/catalog.rs,
//! docs/metrics.md), and the catalog is what it serves. One exporter against
//! the simulator with every collector on and every series made to appear:
//! service health and messages, the audit feed with a webhook (validated,
//! then notified) and reconciled against the Audit Log Query API, a poison blob and an expired one, app credentials, a
//! second tenant with a certificate credential, one throttled and one failed
//! request. Its `/metrics` must hold only catalog families, each with the
//! catalog's TYPE and HELP, and every sample with exactly the catalog's
//! labels in the catalog's order; and every catalog family must be served
//! (the few that need an event no test can cause from outside are named in
//! [`NOT_SERVED_HERE`], with the test that covers them).

mod support;

use m365_exporter::metrics::catalog::{self, Def, Kind};
use m365_exporter::simulator::{AuditOptions, Faults, SimOptions, Simulator};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::{get, start_with_webhook_listener, sum, wait_for, SimTenant};

const AUTH_ID: &str = "catalog-webhook-auth";

/// Catalog families this scrape cannot show, and why that is fine.
const NOT_SERVED_HERE: &[(&str, &str)] = &[(
    "m365_collector_panics_total",
    "only once a collector task has panicked; the collector supervision's unit tests make one",
)];

/// One sample line: series name and label names, in order.
fn sample(line: &str) -> (String, Vec<String>) {
    let (series, _value) = line.rsplit_once(' ').expect("sample line has a value");
    let Some((name, rest)) = series.split_once('{') else {
        return (series.to_string(), Vec::new());
    };
    let mut labels = Vec::new();
    let mut chars = rest.chars();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let key = key.trim_start_matches(',');
        if key.is_empty() || key == "}" {
            break;
        }
        labels.push(key.to_string());
        assert_eq!(chars.next(), Some('"'), "{line}");
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => break,
                _ => {}
            }
        }
    }
    (name.to_string(), labels)
}

/// Every way `body` differs from the catalog, one line per family and
/// kind of difference (keyed by both, so repeated scrapes add nothing new);
/// and the families it serves.
fn check(body: &str, problems: &mut BTreeMap<String, String>) -> BTreeSet<&'static str> {
    let mut served = BTreeSet::new();
    let mut problem = |name: &str, what: &str, text: String| {
        problems
            .entry(format!("{name} {what}"))
            .or_insert(format!("{name}: {text}"));
    };
    // The family of the last `# TYPE` line: its samples follow it.
    let mut current: Option<&'static Def> = None;
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            match catalog::find(name) {
                Some(d) if d.help != help => {
                    problem(name, "help", format!("HELP {help:?}, catalog {:?}", d.help))
                }
                Some(_) => {}
                None => problem(name, "unknown", "served, not in the catalog".into()),
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            current = catalog::find(name);
            match current {
                Some(d) if d.kind.as_str() != kind => {
                    problem(name, "type", format!("TYPE {kind}, catalog {}", d.kind))
                }
                Some(d) => {
                    served.insert(d.name);
                }
                None => problem(name, "unknown", "served, not in the catalog".into()),
            }
        } else if !line.is_empty() && !line.starts_with('#') {
            let (name, labels) = sample(line);
            let Some(d) = current.filter(|d| d.series_names().contains(&name)) else {
                problem(
                    &name,
                    "place",
                    format!("a sample outside its family: {line}"),
                );
                continue;
            };
            let mut want: Vec<&str> = d.labels.to_vec();
            if d.kind == Kind::Histogram && name.ends_with("_bucket") {
                want.push("le");
            }
            if labels != want {
                problem(
                    &name,
                    "labels",
                    format!("labels {labels:?}, catalog {want:?}, e.g. {line}"),
                );
            }
        }
    }
    served
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_families_are_the_catalog_and_the_catalog_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let cert = support::certs::make(dir.path(), "catalog", 30);
    let pem = dir.path().join("client.pem");
    std::fs::write(&pem, &cert.pem_pkcs8).unwrap();
    let sim = Simulator::start(SimOptions {
        client_certificate: Some(cert.cert_pem.clone()),
        audit: AuditOptions {
            expired_blobs: 1,
            poison_blobs: 1,
            ..AuditOptions::default()
        },
        // The first data requests: one throttled, one 503; and blobs slow
        // enough to be seen pending.
        faults: Faults {
            throttle_next: 1,
            retry_after_secs: 1,
            server_error_next: 1,
            blob_delay: Duration::from_millis(200),
            ..Faults::default()
        },
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let url = sim.url();
    let config = |port: u16| {
        let webhook = format!(
            "webhook: {{address: \"http://127.0.0.1:{port}/webhook/contoso\", auth_id: {AUTH_ID}}}"
        );
        let everything = SimTenant::new("contoso", &url)
            .management(&url)
            .with("service_health: {interval: 1s}")
            .with("messages: {interval: 1s}")
            .with(&format!(
                "activity: {{enabled: true, interval: 1s, lookback: 2d, start_subscriptions: true, requests_per_minute: 2000, state_file: \"{}\", reconcile: {{enabled: true, interval: 10s, settle: 0s, window: 24h}}, {webhook}}}",
                dir.path().join("state.json").display()
            ))
            .with("app_credentials: {enabled: true, interval: 1s}");
        let certified = SimTenant::new("certified", &url)
            .credential(&format!("client_certificate_path: {}", pem.display()))
            .with("messages: {enabled: false}");
        let yaml = format!("tenants:\n{everything}{certified}");
        m365_exporter::config::Config::parse(&yaml, "catalog.yml").unwrap()
    };
    let exp = start_with_webhook_listener(config, &support::fast_retries()).await;

    // A blob published once the webhooks are registered is notified.
    wait_for("webhooks registered", Duration::from_secs(30), || async {
        let m = support::scrape(&exp).await;
        (sum(
            &m,
            "m365_activity_webhook_enabled",
            &[("tenant", "contoso")],
        ) == 5.0)
            .then_some(())
    })
    .await;
    sim.audit()
        .add_blob("Audit.Exchange", Duration::from_secs(60), 2);

    let expected: BTreeSet<&str> = catalog::all()
        .map(|d| d.name)
        .filter(|n| NOT_SERVED_HERE.iter().all(|(x, _)| x != n))
        .collect();
    // Every scrape is checked; the families served add up over scrapes
    // (the oldest pending blob, for one, is there only while one is).
    let metrics = format!("{}/metrics", exp.url());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut problems = BTreeMap::new();
    let mut served = BTreeSet::new();
    loop {
        let (_, _, body) = get(&metrics).await;
        served.extend(check(&body, &mut problems));
        let missing: Vec<_> = expected.difference(&served).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "catalog families not served after 60 s: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let problems: Vec<String> = problems.into_values().collect();
    assert!(
        problems.is_empty(),
        "/metrics differs from the metric catalog (src/metrics/catalog.rs):\n{}",
        problems.join("\n")
    );
    for (name, why) in NOT_SERVED_HERE {
        assert!(catalog::find(name).is_some(), "{name}: not in the catalog");
        assert!(
            !served.contains(name),
            "{name} is served now ({why}): drop it from NOT_SERVED_HERE"
        );
    }
    exp.stop().await.unwrap();
    sim.stop().await;
}

#[test]
fn sample_lines_give_names_and_labels_in_order() {
    assert_eq!(sample("a 1"), ("a".to_string(), vec![]));
    let (name, labels) = sample(r#"b_bucket{x="1,\"y=\"",le="+Inf"} 3"#);
    assert_eq!(name, "b_bucket");
    assert_eq!(labels, ["x", "le"]);
}
