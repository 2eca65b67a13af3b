//! Simulator + exporter on ephemeral ports, over real sockets: the exact
//! figures of the `incident` scenario, paging, throttling, short tokens.

mod support;

use m365_exporter::cli::app::{Running, WebOptions};
use m365_exporter::simulator::{Faults, SimOptions, Simulator};
use std::time::Duration;
use support::{
    fast_retries, get, parse, select, service_health_config, start_against_simulator, sum, value,
    wait_for, Sample,
};

async fn start(sim: SimOptions, interval: &str) -> (Simulator, Running) {
    start_against_simulator(sim, |url| service_health_config(url, interval)).await
}

async fn scrape(exp: &Running) -> Vec<Sample> {
    let (status, ct, body) = get(&format!("{}/metrics", exp.url())).await;
    assert_eq!(status, 200);
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    parse(&body)
}

async fn ready(exp: &Running) {
    let url = format!("{}/-/ready", exp.url());
    wait_for("readiness", Duration::from_secs(60), || async {
        (get(&url).await.0 == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn incident_scenario_exact_values() {
    let (sim, exp) = start(SimOptions::default(), "1h").await;
    // Not ready until the first refresh attempt of every collector finished.
    ready(&exp).await;
    let m = scrape(&exp).await;
    let base = sim.scenario().base as f64;
    let t = ("tenant", "contoso");

    for c in ["service_health", "messages"] {
        assert_eq!(
            value(&m, "m365_collector_success", &[t, ("collector", c)]),
            1.0
        );
    }
    assert_eq!(select(&m, "m365_service_info", &[t]).len(), 12);
    assert_eq!(
        value(
            &m,
            "m365_service_info",
            &[t, ("service_id", "microsoftteams")]
        ),
        1.0
    );
    assert_eq!(
        select(
            &m,
            "m365_service_info",
            &[("service_name", "Microsoft Teams")]
        )
        .len(),
        1
    );
    assert_eq!(select(&m, "m365_service_status", &[t]).len(), 12);
    assert_eq!(
        value(
            &m,
            "m365_service_status",
            &[
                ("service_id", "microsoftteams"),
                ("status", "serviceInterruption")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "m365_service_status",
            &[("service_id", "Intune"), ("status", "extendedRecovery")]
        ),
        1.0
    );
    let not_operational: Vec<_> = select(&m, "m365_service_operational", &[t])
        .into_iter()
        .filter(|s| s.value == 0.0)
        .map(|s| s.labels["service_id"].as_str())
        .collect();
    assert_eq!(
        not_operational,
        ["Exchange", "SharePoint", "microsoftteams", "Intune"]
    );
    assert_eq!(
        value(
            &m,
            "m365_service_operational",
            &[("service_id", "OneDriveForBusiness")]
        ),
        1.0
    );

    // 12 services × {incident, advisory}; resolved issues don't count.
    assert_eq!(select(&m, "m365_service_issues_active", &[t]).len(), 24);
    assert_eq!(
        sum(
            &m,
            "m365_service_issues_active",
            &[("classification", "incident")]
        ),
        3.0
    );
    assert_eq!(
        sum(
            &m,
            "m365_service_issues_active",
            &[("classification", "advisory")]
        ),
        3.0
    );
    assert_eq!(
        value(
            &m,
            "m365_service_issues_active",
            &[
                ("service_id", "microsoftteams"),
                ("classification", "advisory")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "m365_service_issues_active",
            &[
                ("service_id", "OneDriveForBusiness"),
                ("classification", "incident")
            ]
        ),
        0.0
    );
    let info = select(&m, "m365_service_issue_info", &[t]);
    assert_eq!(info.len(), 6);
    assert!(select(&m, "m365_service_issue_info", &[("issue_id", "OD0995")]).is_empty());
    let tm = select(&m, "m365_service_issue_info", &[("issue_id", "TM1005")])[0];
    assert_eq!(tm.labels["service_id"], "microsoftteams");
    assert_eq!(tm.labels["status"], "investigating");
    assert_eq!(tm.labels["title"], "Presence shows \"Unknown\"");
    assert_eq!(tm.labels["feature_group"], "Microsoft Teams features");
    assert_eq!(tm.labels["origin"], "microsoft");
    assert_eq!(
        value(
            &m,
            "m365_service_issue_start_timestamp_seconds",
            &[("issue_id", "EX1001")]
        ),
        base - 3.0 * 3600.0
    );
    assert_eq!(
        value(
            &m,
            "m365_service_issue_last_update_timestamp_seconds",
            &[("issue_id", "EX1001")]
        ),
        base - 900.0
    );

    let msg = |c: &str, s: &str| {
        value(
            &m,
            "m365_service_messages",
            &[t, ("category", c), ("severity", s)],
        )
    };
    assert_eq!(msg("preventOrFixIssue", "high"), 1.0);
    assert_eq!(msg("preventOrFixIssue", "normal"), 1.0);
    assert_eq!(msg("preventOrFixIssue", "critical"), 1.0);
    assert_eq!(msg("planForChange", "normal"), 2.0);
    assert_eq!(msg("planForChange", "high"), 1.0);
    assert_eq!(msg("planForChange", "critical"), 1.0);
    assert_eq!(msg("stayInformed", "normal"), 2.0);
    assert_eq!(msg("stayInformed", "high"), 1.0);
    assert_eq!(msg("stayInformed", "critical"), 0.0);
    assert_eq!(sum(&m, "m365_service_messages", &[t]), 10.0);
    let by_sev = |name: &str, s: &str| value(&m, name, &[t, ("severity", s)]);
    assert_eq!(by_sev("m365_service_messages_major_change", "normal"), 1.0);
    assert_eq!(by_sev("m365_service_messages_major_change", "high"), 2.0);
    assert_eq!(
        by_sev("m365_service_messages_major_change", "critical"),
        0.0
    );
    assert_eq!(
        by_sev("m365_service_messages_action_required", "normal"),
        0.0
    );
    assert_eq!(by_sev("m365_service_messages_action_required", "high"), 2.0);
    assert_eq!(
        by_sev("m365_service_messages_action_required", "critical"),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "m365_service_message_next_action_required_timestamp_seconds",
            &[t]
        ),
        base + 3.0 * 86_400.0
    );

    // Paging: 12 services in pages of 5 → 3 requests per refresh, the
    // follow-ups by absolute nextLink.
    let reqs = sim.requests();
    let overviews: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.ends_with("/healthOverviews"))
        .collect();
    assert_eq!(overviews.len(), 3);
    assert_eq!(overviews[1].param("$skiptoken").as_deref(), Some("5"));
    assert!(reqs
        .iter()
        .filter(|r| r.path.contains("serviceAnnouncement"))
        .all(|r| r.had_bearer && r.status == 200));
    // One token for the one audience; the scrape itself never called out.
    let tokens = reqs
        .iter()
        .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
        .count();
    assert_eq!(tokens, 1);
    let before = sim.requests().len();
    scrape(&exp).await;
    assert_eq!(
        sim.requests().len(),
        before,
        "a scrape must not call Microsoft"
    );
    assert_eq!(
        value(
            &m,
            "m365_auth_token_requests_total",
            &[t, ("result", "success")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "m365_api_requests_total",
            &[
                t,
                ("api", "graph"),
                ("operation", "issues"),
                ("code", "200")
            ]
        ),
        2.0
    );

    // /probe, health, readiness and the status page.
    let (s, ct, body) = get(&format!("{}/probe?target=contoso", exp.url())).await;
    assert_eq!(
        (s, ct.as_str()),
        (200, "text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(select(&parse(&body), "m365_service_info", &[]).len(), 12);
    let (s, ct, _) = get(&format!("{}/probe?target=fabrikam", exp.url())).await;
    assert_eq!(s, 400);
    assert!(ct.starts_with("text/plain"));
    assert_eq!(get(&format!("{}/-/healthy", exp.url())).await.0, 200);
    let (s, ct, page) = get(&format!("{}/", exp.url())).await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/html"));
    assert!(page.contains("serviceInterruption") && page.contains("Microsoft Teams"));
    exp.stop().await.unwrap();
}

#[tokio::test]
async fn short_lived_tokens_never_show_as_failure() {
    let opts = SimOptions {
        token_lifetime: Duration::from_secs(5),
        ..SimOptions::default()
    };
    let (sim, exp) = start(opts, "1s").await;
    ready(&exp).await;
    // Scrape until two renewals have happened (three tokens issued, each
    // living 5 s): every scrape, also those after an expiry, shows success
    // and the right figures.
    let tokens = || {
        sim.requests()
            .iter()
            .filter(|r| r.path.ends_with("/token"))
            .count()
    };
    let scrapes = std::cell::Cell::new(0);
    wait_for("two token renewals", Duration::from_secs(120), || async {
        let m = scrape(&exp).await;
        for c in ["service_health", "messages"] {
            assert_eq!(
                value(&m, "m365_collector_success", &[("collector", c)]),
                1.0,
                "{c}"
            );
        }
        assert_eq!(
            sum(
                &m,
                "m365_service_issues_active",
                &[("classification", "incident")]
            ),
            3.0
        );
        assert_eq!(sum(&m, "m365_service_messages", &[]), 10.0);
        scrapes.set(scrapes.get() + 1);
        (tokens() >= 3).then_some(())
    })
    .await;
    assert!(scrapes.get() > 1, "scraped across the renewals");
    let reqs = sim.requests();
    // Renewed ahead of expiry: no data request was refused for its token.
    assert!(
        reqs.iter().all(|r| r.status != 401),
        "a request used an expired token"
    );
    // Never one token per call: each token served several data requests
    // (both collectors refresh every second) before the next was asked for.
    let mut since_token = Vec::new();
    for r in &reqs {
        if r.path.ends_with("/token") {
            since_token.push(0usize);
        } else if let Some(n) = since_token.last_mut() {
            *n += 1;
        }
    }
    let used = &since_token[..since_token.len() - 1];
    assert!(
        used.iter().all(|n| *n >= 2),
        "data requests per token: {since_token:?}"
    );
    exp.stop().await.unwrap();
}

#[tokio::test]
async fn retry_after_is_respected_and_counted() {
    let (sim, exp) = start(SimOptions::default(), "1h").await;
    ready(&exp).await;
    let before = sim.requests().len();
    sim.set_faults(Faults {
        throttle_next: 1,
        retry_after_secs: 2,
        ..Faults::default()
    });
    exp.stop().await.unwrap();
    // A fresh exporter run against the throttling simulator.
    let exp = Running::start(
        &service_health_config(&sim.url(), "1h"),
        &WebOptions::default(),
        &fast_retries(),
    )
    .await
    .unwrap();
    ready(&exp).await;
    let reqs: Vec<_> = sim
        .requests()
        .into_iter()
        .skip(before)
        .filter(|r| r.path.contains("serviceAnnouncement"))
        .collect();
    let throttled = reqs
        .iter()
        .position(|r| r.status == 429)
        .expect("one throttled request");
    let retry = reqs[throttled + 1..]
        .iter()
        .find(|r| r.path == reqs[throttled].path && r.query == reqs[throttled].query)
        .expect("the throttled request was retried");
    let waited = retry.at - reqs[throttled].at;
    assert!(
        waited >= Duration::from_secs(2),
        "retried after {waited:?}, Retry-After was 2 s"
    );
    let m = scrape(&exp).await;
    assert_eq!(
        sum(&m, "m365_api_throttled_total", &[("api", "graph")]),
        1.0
    );
    assert_eq!(sum(&m, "m365_api_requests_total", &[("code", "429")]), 1.0);
    assert_eq!(
        value(
            &m,
            "m365_collector_success",
            &[("collector", "service_health")]
        ),
        1.0
    );
    exp.stop().await.unwrap();
}

#[tokio::test]
async fn malformed_and_server_errors_mark_failure_then_recover() {
    let opts = SimOptions {
        faults: Faults {
            server_error_next: 1,
            ..Faults::default()
        },
        ..SimOptions::default()
    };
    let (sim, exp) = start(opts, "1s").await;
    ready(&exp).await;
    // The 503 was retried inside the refresh: still a success.
    let m = scrape(&exp).await;
    assert_eq!(
        value(
            &m,
            "m365_collector_success",
            &[("collector", "service_health")]
        ),
        1.0
    );
    assert_eq!(sum(&m, "m365_api_requests_total", &[("code", "503")]), 1.0);
    // A truncated body fails a refresh: success 0, the last good snapshot
    // still served, then the next refresh recovers.
    sim.set_faults(Faults {
        malformed_next: 2,
        ..Faults::default()
    });
    let url = format!("{}/metrics", exp.url());
    let failed = wait_for("a failed refresh", Duration::from_secs(60), || async {
        let m = parse(&get(&url).await.2);
        let any_failed = select(&m, "m365_collector_success", &[])
            .iter()
            .any(|s| s.value == 0.0);
        any_failed.then_some(m)
    })
    .await;
    assert_eq!(
        select(&failed, "m365_service_status", &[]).len(),
        12,
        "last good snapshot kept"
    );
    let (_, _, page) = get(&format!("{}/", exp.url())).await;
    assert!(
        page.contains("malformed response") || page.contains("failing"),
        "{page}"
    );
    wait_for("recovery", Duration::from_secs(60), || async {
        let m = parse(&get(&url).await.2);
        select(&m, "m365_collector_success", &[])
            .iter()
            .all(|s| s.value == 1.0)
            .then_some(())
    })
    .await;
    exp.stop().await.unwrap();
}

#[tokio::test]
async fn outage_and_healthy_scenarios() {
    let (sim, exp) = start(
        SimOptions {
            scenario: "outage".into(),
            ..SimOptions::default()
        },
        "1s",
    )
    .await;
    ready(&exp).await;
    let m = scrape(&exp).await;
    assert_eq!(sum(&m, "m365_service_operational", &[]), 0.0);
    assert_eq!(
        sum(
            &m,
            "m365_service_issues_active",
            &[("classification", "incident")]
        ),
        12.0
    );
    sim.set_scenario("healthy").unwrap();
    let url = format!("{}/metrics", exp.url());
    wait_for("healthy figures", Duration::from_secs(60), || async {
        let m = parse(&get(&url).await.2);
        (sum(&m, "m365_service_operational", &[]) == 12.0
            && sum(&m, "m365_service_issues_active", &[]) == 0.0)
            .then_some(())
    })
    .await;
    exp.stop().await.unwrap();
}
