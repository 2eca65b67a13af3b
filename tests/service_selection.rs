//! `service_health.services` against the simulator (`incident` scenario),
//! over real sockets: exactly the chosen services' series, message-center
//! posts about excluded services only not counted, an unknown id warned
//! about once.

mod support;

use m365_exporter::cli::app::Running;
use m365_exporter::config::Config;
use m365_exporter::simulator::{SimOptions, Simulator};
use std::collections::BTreeSet;
use std::time::Duration;
use support::activity::{capture_logs, log_lines};
use support::{get, parse, select, start_against_simulator, sum, wait_for, Sample, SimTenant};

/// One tenant named `tenant`; `defaults` and `own` add keys to
/// `service_health` in `defaults` and on the tenant.
fn config(url: &str, tenant: &str, defaults: &str, own: &str) -> Config {
    let yaml = format!(
        r#"
defaults:
  service_health: {{interval: 300ms{defaults}}}
  messages: {{interval: 300ms}}
tenants:
{}"#,
        SimTenant::new(tenant, url).with(&format!("service_health: {{enabled: true{own}}}"))
    );
    Config::parse(&yaml, "test").unwrap()
}

async fn start(defaults: &str, own: &str, tenant: &str) -> (Simulator, Running) {
    start_against_simulator(SimOptions::default(), |url| {
        config(url, tenant, defaults, own)
    })
    .await
}

/// The first scrape with both collectors' figures.
async fn scrape_ready(exp: &Running) -> Vec<Sample> {
    let url = format!("{}/metrics", exp.url());
    wait_for("both collectors", Duration::from_secs(60), || async {
        let m = parse(&get(&url).await.2);
        (select(&m, "m365_collector_success", &[]).len() == 2
            && sum(&m, "m365_collector_success", &[]) == 2.0)
            .then_some(m)
    })
    .await
}

/// The distinct values of `label` over every series of `name`.
fn label_set(m: &[Sample], name: &str, label: &str) -> BTreeSet<String> {
    select(m, name, &[])
        .iter()
        .map(|s| s.labels[label].clone())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Every service-scoped family carries only the chosen service ids, and the
/// issue-scoped families only those services' unresolved issues.
fn assert_exactly(m: &[Sample], services: &[&str], issues: &[&str]) {
    for name in [
        "m365_service_info",
        "m365_service_status",
        "m365_service_operational",
        "m365_service_issues_active",
        "m365_service_issue_info",
    ] {
        let want = if name == "m365_service_issue_info" {
            // only services with an unresolved issue have issue series
            label_set(m, name, "service_id")
        } else {
            set(services)
        };
        assert_eq!(label_set(m, name, "service_id"), want, "{name}");
        assert!(
            label_set(m, name, "service_id").is_subset(&set(services)),
            "{name}"
        );
    }
    assert_eq!(
        select(m, "m365_service_issues_active", &[]).len(),
        2 * services.len()
    );
    for name in [
        "m365_service_issue_info",
        "m365_service_issue_start_timestamp_seconds",
        "m365_service_issue_last_update_timestamp_seconds",
    ] {
        assert_eq!(label_set(m, name, "issue_id"), set(issues), "{name}");
    }
}

#[tokio::test]
async fn include_list_exports_exactly_the_chosen_services() {
    // Set in defaults, and the ids written the way people write them.
    let (sim, exp) = start(
        ", services: {include: [Exchange, MicrosoftTeams]}",
        "",
        "only-two",
    )
    .await;
    let m = scrape_ready(&exp).await;
    assert_exactly(
        &m,
        &["Exchange", "microsoftteams"],
        &["EX1001", "EX1002", "TM1004", "TM1005"],
    );
    assert_eq!(
        sum(
            &m,
            "m365_service_issues_active",
            &[("classification", "incident")]
        ),
        2.0
    );
    // Posts 1 and 4 (Exchange) and 3 (Teams) of the scenario's ten.
    assert_eq!(sum(&m, "m365_service_messages", &[]), 3.0);
    assert_eq!(
        sum(
            &m,
            "m365_service_messages",
            &[("category", "planForChange")]
        ),
        1.0
    );
    // Zero series stay, for every documented pair.
    assert_eq!(select(&m, "m365_service_messages", &[]).len(), 9);
    // The status page lists the chosen services only.
    let page = get(&format!("{}/", exp.url())).await.2;
    assert!(page.contains("Exchange Online") && page.contains("Microsoft Teams"));
    assert!(!page.contains("SharePoint Online"), "{page}");
    exp.stop().await.unwrap();
    drop(sim);
}

#[tokio::test]
async fn exclude_list_drops_the_services_and_their_posts() {
    // The tenant's list replaces the defaults' list.
    let (sim, exp) = start(
        ", services: {include: [Exchange]}",
        ", services: {include: [], exclude: [Exchange, SharePoint, yammer]}",
        "all-but-three",
    )
    .await;
    let m = scrape_ready(&exp).await;
    assert_exactly(
        &m,
        &[
            "microsoftteams",
            "OneDriveForBusiness",
            "PowerBIcom",
            "Intune",
            "OSDPPlatform",
            "O365Client",
            "Forms",
            "Planner",
            "DynamicsCRM",
        ],
        &["TM1004", "TM1005", "IT1006"],
    );
    // Posts 1, 4 (Exchange) and 2, 5 (SharePoint) are about excluded services only.
    assert_eq!(sum(&m, "m365_service_messages", &[]), 6.0);
    assert!(select(
        &m,
        "m365_service_info",
        &[("service_name", "Yammer Enterprise")]
    )
    .is_empty());
    exp.stop().await.unwrap();
    drop(sim);
}

#[tokio::test]
async fn an_unknown_service_id_warns_once() {
    capture_logs();
    let (sim, exp) = start(
        "",
        ", services: {include: [Exchange, NoSuchService], exclude: [AlsoUnknown]}",
        "typo-tenant",
    )
    .await;
    let m = scrape_ready(&exp).await;
    assert_exactly(&m, &["Exchange"], &["EX1001", "EX1002"]);
    // Several refreshes of both collectors later…
    wait_for("five refreshes", Duration::from_secs(30), || async {
        let n = sim
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/healthOverviews") && r.param("$skiptoken").is_none())
            .count();
        (n >= 10).then_some(())
    })
    .await;
    // …one warning per unknown id, naming it and the tenant; not an error.
    for id in ["NoSuchService", "AlsoUnknown"] {
        let lines = log_lines(&["typo-tenant", id, "does not list"]);
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(lines[0].contains("WARN"), "{}", lines[0]);
    }
    assert!(log_lines(&["typo-tenant", "Exchange", "does not list"])
        .iter()
        .all(|l| l.contains("NoSuchService") || l.contains("AlsoUnknown")));
    let m = parse(&get(&format!("{}/metrics", exp.url())).await.2);
    assert_eq!(sum(&m, "m365_collector_success", &[]), 2.0);
    exp.stop().await.unwrap();
}
