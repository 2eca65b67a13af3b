//! What Microsoft documents, end to end: the simulator switched to each
//! variant its pages show (PascalCase Graph enums, the `NextPageUrl`
//! spelling, a domain `tenant_id`, an authority out of reach at start, a
//! tenant the Management API refuses for good), and the exporter reporting
//! exactly what it reports against the simulator's default forms.

mod support;

use m365_exporter::cli::app::{Running, WebOptions};
use m365_exporter::config::Config;
use m365_exporter::simulator::{
    AuditOptions, Faults, SimOptions, Simulator, SIM_TENANT_DOMAIN, SIM_TENANT_ID,
};
use std::collections::BTreeSet;
use std::time::Duration;
use support::activity::*;
use support::tenant::SimTenant;
use support::{scrape, sum, value, wait_for, Sample};

/// The service-health and message-center series of `tenant` that do not
/// carry a timestamp (two simulators started apart differ in those), as
/// comparable lines without the tenant label.
fn graph_series(m: &[Sample], tenant: &str) -> BTreeSet<String> {
    const FAMILIES: [&str; 8] = [
        "m365_service_info",
        "m365_service_status",
        "m365_service_operational",
        "m365_service_issues_active",
        "m365_service_issue_info",
        "m365_service_messages",
        "m365_service_messages_major_change",
        "m365_service_messages_action_required",
    ];
    m.iter()
        .filter(|s| FAMILIES.contains(&s.name.as_str()))
        .filter(|s| s.labels.get("tenant").map(String::as_str) == Some(tenant))
        .map(|s| {
            let mut l = s.labels.clone();
            l.remove("tenant");
            format!("{}{l:?} {}", s.name, s.value)
        })
        .collect()
}

/// Graph enums as Microsoft's API pages print them (PascalCase) give the
/// same series as the schema's camelCase: operational services stay
/// operational, labels do not split.
#[tokio::test]
async fn pascal_case_enums_report_what_camel_case_reports() {
    let camel = Simulator::start(SimOptions::default()).await.unwrap();
    let pascal = Simulator::start(SimOptions {
        pascal_enums: true,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let yaml = format!(
        "defaults:\n  service_health: {{interval: 1s}}\n  messages: {{interval: 1s}}\ntenants:\n{}{}",
        SimTenant::new("camel", &camel.url()),
        SimTenant::new("pascal", &pascal.url())
    );
    let exp = Running::start(
        &Config::parse(&yaml, "test").unwrap(),
        &WebOptions::default(),
        &support::fast_retries(),
    )
    .await
    .unwrap();
    let m = wait_for(
        "both tenants refreshed",
        Duration::from_secs(60),
        || async {
            let m = scrape(&exp).await;
            let ok = |t: &str, c: &str| {
                support::select(
                    &m,
                    "m365_collector_success",
                    &[("tenant", t), ("collector", c)],
                )
                .first()
                .is_some_and(|s| s.value == 1.0)
            };
            let all = ["camel", "pascal"]
                .iter()
                .all(|t| ok(t, "service_health") && ok(t, "messages"));
            all.then_some(m)
        },
    )
    .await;
    let (c, p) = (graph_series(&m, "camel"), graph_series(&m, "pascal"));
    assert!(c.len() > 20, "{c:?}");
    assert_eq!(c, p, "PascalCase must report exactly what camelCase does");
    assert!(
        sum(&m, "m365_service_operational", &[("tenant", "pascal")]) > 0.0,
        "operational services read as operational"
    );
    assert!(
        !p.iter()
            .any(|l| l.contains("\"Service") || l.contains("\"Incident\"")),
        "exported in camelCase: {p:?}"
    );
    let raw = pascal
        .requests()
        .iter()
        .any(|r| r.path.ends_with("/healthOverviews"));
    assert!(raw, "the PascalCase simulator was asked");
    exp.stop().await.unwrap();
}

/// Every page is followed when the continuation header is spelled as the
/// troubleshooting guide spells it.
#[tokio::test]
async fn next_page_url_pages_are_all_followed() {
    let sim = sim_with(
        AuditOptions {
            next_page_header: "NextPageUrl".into(),
            page_size: 2,
            ..AuditOptions::default()
        },
        Faults::default(),
    )
    .await;
    let exp = start(&sim, "url", "").await;
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    let m = drained(&exp, "url", truth.blobs).await;
    let t = ("tenant", "url");
    assert_eq!(
        sum(&m, "m365_activity_records_total", &[t]) as u64,
        truth.records.values().sum::<u64>()
    );
    let followed = management_requests(&sim)
        .iter()
        .filter(|r| r.param("nextPage").is_some())
        .count();
    assert!(followed > 5, "later pages were asked for: {followed}");
    exp.stop().await.unwrap();
}

/// A configuration naming the tenant by its domain, with the tenant's
/// activity feed on and no publisher id.
fn domain_config(url: &str, name: &str, extra: &str) -> Config {
    let yaml = format!(
        "tenants:\n{}",
        tenant_yaml(
            name,
            url,
            &format!("interval: 300ms, lookback: 2d, requests_per_minute: 2000{extra}")
        )
    )
    .replace(SIM_TENANT_ID, SIM_TENANT_DOMAIN)
    .replace(
        "service_health: {enabled: false}",
        "service_health: {interval: 1s}",
    );
    Config::parse(&yaml, "test").unwrap()
}

/// `tenant_id: contoso.onmicrosoft.com`: the GUID is looked up once, every
/// Management URL and PublisherIdentifier carries it, and the feed counts
/// what a GUID-configured tenant counts.
#[tokio::test]
async fn a_domain_tenant_id_is_resolved_to_the_guid() {
    let sim = sim_with(AuditOptions::default(), Faults::default()).await;
    let exp = Running::start(
        &domain_config(&sim.url(), "domain", ""),
        &WebOptions::default(),
        &fast(),
    )
    .await
    .unwrap();
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    let m = drained(&exp, "domain", truth.blobs).await;
    let t = ("tenant", "domain");
    assert_eq!(
        sum(&m, "m365_activity_records_total", &[t]) as u64,
        truth.records.values().sum::<u64>()
    );
    let mgmt = management_requests(&sim);
    assert!(!mgmt.is_empty());
    for r in &mgmt {
        assert!(
            r.path.starts_with(&format!("/api/v1.0/{SIM_TENANT_ID}/")),
            "{r:?}"
        );
        assert_eq!(
            r.param("PublisherIdentifier").as_deref(),
            Some(SIM_TENANT_ID),
            "{r:?}"
        );
    }
    let lookups = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/.well-known/openid-configuration"))
        .count();
    assert_eq!(lookups, 1, "resolved once");
    assert_eq!(
        value(
            &m,
            "m365_api_requests_total",
            &[t, ("api", "login"), ("operation", "openid_configuration")]
        ),
        1.0
    );
    exp.stop().await.unwrap();
}

/// The authority out of reach at start: the exporter starts and serves,
/// Graph collectors work with the domain, the feed reports why it waits
/// and sends nothing to the Management API; once the authority answers
/// (after the lookup's backoff), the feed flows.
#[tokio::test]
async fn an_authority_out_of_reach_at_start_delays_only_the_feed() {
    capture_logs();
    let sim = sim_with(
        AuditOptions::default(),
        Faults {
            discovery_down: true,
            ..Faults::default()
        },
    )
    .await;
    let exp = Running::start(
        &domain_config(&sim.url(), "unresolved", ""),
        &WebOptions::default(),
        &fast(),
    )
    .await
    .unwrap();
    let t = ("tenant", "unresolved");
    let m = wait_for(
        "graph ok, feed waiting",
        Duration::from_secs(60),
        || async {
            let m = scrape(&exp).await;
            let health = support::select(
                &m,
                "m365_collector_success",
                &[t, ("collector", "service_health")],
            );
            let feed = support::select(
                &m,
                "m365_collector_success",
                &[t, ("collector", "activity")],
            );
            (health.first().is_some_and(|s| s.value == 1.0)
                && feed.first().is_some_and(|s| s.value == 0.0))
            .then_some(m)
        },
    )
    .await;
    assert_eq!(
        value(
            &m,
            "m365_api_requests_total",
            &[
                t,
                ("api", "login"),
                ("operation", "openid_configuration"),
                ("code", "503")
            ]
        ),
        1.0,
        "asked once, then the backoff"
    );
    assert!(
        management_requests(&sim).is_empty(),
        "nothing sent without the GUID"
    );
    let (_, _, page) = support::get(&format!("{}/", exp.url())).await;
    assert!(page.contains("tenant GUID not resolved"), "{page}");
    one_log_line(&[
        "ERROR",
        "tenant=unresolved",
        "tenant GUID the Management API needs is not known yet",
    ]);
    sim.set_faults(Faults::default());
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    let m = drained(&exp, "unresolved", truth.blobs).await;
    assert_eq!(
        sum(&m, "m365_activity_records_total", &[t]) as u64,
        truth.records.values().sum::<u64>()
    );
    wait_for("the feed healthy", Duration::from_secs(60), || async {
        (success(&scrape(&exp).await, "unresolved") == 1.0).then_some(())
    })
    .await;
    exp.stop().await.unwrap();
}

/// AF20010 (the token's tenant is not the URL's) is lasting: reported in
/// one line, subscriptions/list asked again in 15 minutes, not every poll.
#[tokio::test]
async fn a_tenant_mismatch_is_reported_once_and_not_asked_every_poll() {
    capture_logs();
    let other = "11111111-2222-4333-8444-555555555555";
    let sim = Simulator::start(SimOptions {
        any_tenant: true,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let yaml = format!(
        "tenants:\n{}",
        tenant_yaml(
            "mismatch",
            &sim.url(),
            "interval: 300ms, start_subscriptions: true"
        )
    )
    .replace(SIM_TENANT_ID, other);
    let exp = Running::start(
        &Config::parse(&yaml, "test").unwrap(),
        &WebOptions::default(),
        &fast(),
    )
    .await
    .unwrap();
    wait_for("the refusal", Duration::from_secs(60), || async {
        let m = scrape(&exp).await;
        (sum(
            &m,
            "m365_api_errors_total",
            &[("tenant", "mismatch"), ("error_code", "AF20010")],
        ) >= 1.0)
            .then_some(())
    })
    .await;
    // Several more polls (300 ms each): the counts below span them.
    more_polls(&exp, "mismatch", 5).await;
    let mgmt = management_requests(&sim);
    let lists = mgmt
        .iter()
        .filter(|r| r.path.ends_with("/subscriptions/list"))
        .count();
    assert_eq!(lists, 1, "asked again in 15 minutes, not every poll");
    assert!(
        !mgmt
            .iter()
            .any(|r| r.path.ends_with("/subscriptions/start")),
        "a refused tenant is not started"
    );
    assert_eq!(success(&scrape(&exp).await, "mismatch"), 0.0);
    let line = one_log_line(&["ERROR", "tenant=mismatch", "AF20010"]);
    assert!(line.contains("does not match the access token"), "{line}");
    exp.stop().await.unwrap();
}
