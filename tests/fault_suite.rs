//! Hostile upstreams, one fault at a time, against one running exporter
//! (service health, messages and the audit feed of one tenant): a
//! connection reset mid-body, a request that never gets an answer, a
//! truncated body, HTML instead of JSON, an endless body, a 5xx storm, the
//! token endpoint down at start, `Retry-After: 10^12`, a token answer with
//! `expires_in: 2^64-1`, and endless new error codes. For each: the exporter
//! keeps serving, the collector is marked failed, the error is counted, and it
//! recovers by itself once the fault is gone. At the end no listed audit
//! content is lost, nothing panicked, the label space stayed bounded, and no
//! log line of the whole suite carries a secret or a token.

mod support;

use m365_exporter::api::RetryPolicy;
use m365_exporter::cli::app::{Running, WebOptions};
use m365_exporter::collect::RuntimeOptions;
use m365_exporter::config::Config;
use m365_exporter::simulator::{Faults, SimOptions, Simulator, SIM_CLIENT_SECRET};
use std::time::Duration;
use support::{parse, scrape, select, sum, wait_for, Sample, SimTenant};

fn config(url: &str) -> Config {
    let tenant = SimTenant::new("contoso", url)
        .management(url)
        .with("service_health: {interval: 300ms}")
        .with("messages: {interval: 300ms}")
        .with(
            "activity: {enabled: true, interval: 300ms, lookback: 2d, requests_per_minute: 2000}",
        );
    Config::parse(&format!("tenants:\n{tenant}"), "test").unwrap()
}

fn success(m: &[Sample], collector: &str) -> Option<f64> {
    select(
        m,
        "m365_collector_success",
        &[("tenant", "contoso"), ("collector", collector)],
    )
    .first()
    .map(|s| s.value)
}

/// Errors of every kind counted so far: error answers plus transport failures.
fn errors(m: &[Sample]) -> f64 {
    sum(m, "m365_api_errors_total", &[("tenant", "contoso")])
        + sum(
            m,
            "m365_api_requests_total",
            &[("tenant", "contoso"), ("code", "error")],
        )
        + sum(
            m,
            "m365_auth_token_requests_total",
            &[("tenant", "contoso"), ("result", "failure")],
        )
}

async fn all_healthy(exp: &Running, what: &str) -> Vec<Sample> {
    wait_for(what, Duration::from_secs(90), || async {
        let m = scrape(exp).await;
        ["service_health", "messages", "activity"]
            .iter()
            .all(|c| success(&m, c) == Some(1.0))
            .then_some(m)
    })
    .await
}

/// Turn `fault` on until service health has failed and the error is
/// counted, then off until every collector has recovered.
async fn phase(sim: &Simulator, exp: &Running, name: &str, fault: Faults) {
    let before = errors(&scrape(exp).await);
    sim.set_faults(fault);
    wait_for(
        &format!("{name}: service_health failed and the error counted"),
        Duration::from_secs(90),
        || async {
            let m = scrape(exp).await;
            (success(&m, "service_health") == Some(0.0) && errors(&m) > before).then_some(())
        },
    )
    .await;
    sim.set_faults(Faults::default());
    all_healthy(exp, &format!("{name}: recovery")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_upstream_fault_is_survived_counted_and_recovered_from() {
    support::activity::capture_logs_at(tracing::Level::DEBUG);
    // Short tokens: the exporter renews often, so token faults bite.
    let sim = Simulator::start(SimOptions {
        token_lifetime: Duration::from_secs(3),
        faults: Faults {
            token_error_next: 1_000, // the token endpoint is down at start
            ..Faults::default()
        },
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let opts = RuntimeOptions {
        retry: RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            // Production cuts a Retry-After at 2 minutes; here at 100 ms.
            max_retry_after: Duration::from_millis(100),
        },
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(1),
        ..RuntimeOptions::default()
    };
    let exp = Running::start(&config(&sim.url()), &WebOptions::default(), &opts)
        .await
        .unwrap();

    // Token endpoint down at start: failed, counted, then recovering.
    wait_for(
        "token failures at start",
        Duration::from_secs(60),
        || async {
            let m = scrape(&exp).await;
            (success(&m, "service_health") == Some(0.0)
                && sum(
                    &m,
                    "m365_auth_token_requests_total",
                    &[("result", "failure")],
                ) > 0.0)
                .then_some(())
        },
    )
    .await;
    sim.set_faults(Faults::default());
    all_healthy(&exp, "recovery after the token endpoint came back").await;

    let n = 1_000; // one-shot faults: more than any retry budget
    let faults: Vec<(&str, Faults)> = vec![
        (
            "connection reset",
            Faults {
                reset_next: n,
                ..Faults::default()
            },
        ),
        (
            "hang",
            Faults {
                hang_next: n,
                ..Faults::default()
            },
        ),
        (
            "truncated body",
            Faults {
                malformed_next: n,
                ..Faults::default()
            },
        ),
        (
            "wrong content type",
            Faults {
                wrong_content_type_next: n,
                ..Faults::default()
            },
        ),
        (
            "huge body",
            Faults {
                huge_body_next: n,
                ..Faults::default()
            },
        ),
        (
            "5xx storm",
            Faults {
                server_error_next: n,
                ..Faults::default()
            },
        ),
        (
            "Retry-After 10^12 s",
            Faults {
                throttle_next: n,
                retry_after_secs: 1_000_000_000_000,
                ..Faults::default()
            },
        ),
        (
            "new error codes",
            Faults {
                unknown_error_codes: true,
                ..Faults::default()
            },
        ),
    ];
    for (name, f) in faults {
        phase(&sim, &exp, name, f).await;
    }

    // expires_in 2^64-1: believed as 24 h at most, no overflow; the token
    // really expires after 3 s, the API says 401, one renewal, no failure.
    let before = scrape(&exp).await;
    sim.set_faults(Faults {
        token_expires_in: Some(u64::MAX),
        ..Faults::default()
    });
    let logged = sim.requests().len();
    let renewed = |m: &[Sample]| {
        sum(
            m,
            "m365_auth_token_requests_total",
            &[("result", "success")],
        )
    };
    // A token believed for 24 h expires, the API refuses it, the exporter
    // renews it: a 401 after the switch, then a token request after it.
    wait_for(
        "a 401 for the expired token, then a renewal",
        Duration::from_secs(90),
        || async {
            let reqs = sim.requests();
            let first_401 = reqs[logged..].iter().position(|r| r.status == 401)?;
            reqs[logged + first_401..]
                .iter()
                .any(|r| r.path.ends_with("/token") && r.status == 200)
                .then_some(())
        },
    )
    .await;
    let m = all_healthy(&exp, "huge expires_in").await;
    assert!(renewed(&m) > renewed(&before), "tokens renewed after 401");
    for s in select(&m, "m365_auth_token_expiry_timestamp_seconds", &[]) {
        let now = m365_exporter::timefmt::now_unix();
        assert!(s.value <= now + 86_400.0 + 60.0, "clamped: {s:?}");
    }
    sim.set_faults(Faults::default());

    // Nothing panicked; the error codes stayed a bounded set.
    let m = all_healthy(&exp, "final").await;
    assert_eq!(sum(&m, "m365_collector_panics_total", &[]), 0.0);
    let codes: std::collections::BTreeSet<&str> = select(&m, "m365_api_errors_total", &[])
        .iter()
        .map(|s| s.labels["error_code"].as_str())
        .collect();
    assert!(codes.len() < 20, "{codes:?}");
    assert!(codes.contains("MalformedResponse"), "{codes:?}");
    assert!(codes.contains("HTTP400"), "unknown codes folded: {codes:?}");
    assert!(!codes.iter().any(|c| c.starts_with("Unknown")), "{codes:?}");

    // No listed audit content was lost: everything listed is fetched.
    let t = [("tenant", "contoso")];
    wait_for("audit backlog drained", Duration::from_secs(90), || async {
        let m = scrape(&exp).await;
        let listed = sum(&m, "m365_activity_content_listed_total", &t);
        let fetched = sum(&m, "m365_activity_content_fetched_total", &t);
        let expired = sum(&m, "m365_activity_content_expired_total", &t);
        (listed > 0.0
            && fetched + expired == listed
            && sum(&m, "m365_activity_backlog_blobs", &t) == 0.0)
            .then_some(())
    })
    .await;

    // The secret-scanning test over every log line of the whole suite.
    let tokens: Vec<String> = sim.state().tokens.lock().unwrap().keys().cloned().collect();
    assert!(!tokens.is_empty());
    let logs = support::activity::log_lines(&[]);
    assert!(logs.len() > 20, "logs captured");
    for line in &logs {
        assert!(!line.contains(SIM_CLIENT_SECRET), "secret in log: {line}");
        assert!(
            !line.to_ascii_lowercase().contains("bearer "),
            "bearer in log: {line}"
        );
        for t in &tokens {
            assert!(!line.contains(t.as_str()), "token in log: {line}");
        }
    }
    exp.stop().await.unwrap();
    sim.stop().await;
}

/// 10,000 error answers from the simulator, each with a code never seen
/// before: `m365_api_errors_total` gains one series (`HTTP400`), not 10,000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_distinct_error_codes_keep_the_series_count_bounded() {
    use futures::StreamExt;
    use m365_exporter::api::Call;

    let sim = Simulator::start(SimOptions {
        faults: Faults {
            unknown_error_codes: true,
            ..Faults::default()
        },
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let url = sim.url();
    let policy = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    let (api, live) = support::sim_api("contoso", &url, Duration::from_secs(10), policy);
    let target = format!("{url}/v1.0/admin/serviceAnnouncement/healthOverviews");
    let failed = futures::stream::iter(0..10_000)
        .map(|_| {
            let api = api.clone();
            let target = target.clone();
            let url = url.clone();
            async move {
                api.send(&Call {
                    api: m365_exporter::api::Api::Graph,
                    operation: "health_overviews",
                    method: reqwest::Method::GET,
                    url: &target,
                    audience: &url,
                    max_body: 1 << 20,
                    json: None,
                })
                .await
                .is_err()
            }
        })
        .buffer_unordered(32)
        .filter(|e| futures::future::ready(*e))
        .count()
        .await;
    assert_eq!(failed, 10_000);
    let mut text = Vec::new();
    live.encode(None, &mut text);
    let m = parse(&String::from_utf8(text).unwrap());
    let series = select(&m, "m365_api_errors_total", &[]);
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(series[0].labels["error_code"], "HTTP400");
    assert_eq!(series[0].value, 10_000.0);
    sim.stop().await;
}
