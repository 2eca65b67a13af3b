//! The `app_credentials` collector against the simulator, over real sockets:
//! one expiry series per client secret and certificate equal to the
//! simulated `endDateTime`; a 403 reported clearly (one log line naming
//! `Application.Read.All`, `m365_collector_success` 0) and recovered from.

mod support;

use m365_exporter::cli::app::Running;
use m365_exporter::config::Config;
use m365_exporter::simulator::{Faults, SimOptions, Simulator, SIM_CLIENT_ID};
use m365_exporter::timefmt::parse_unix;
use std::time::Duration;
use support::activity::{capture_logs, log_lines};
use support::{get, parse, select, start_against_simulator, value, wait_for, Sample, SimTenant};

const COLLECTOR: (&str, &str) = ("collector", "app_credentials");

/// App credentials only, refreshed every `interval`.
async fn start(
    scenario: &str,
    tenant: &str,
    interval: &str,
    faults: Faults,
) -> (Simulator, Running) {
    let sim = SimOptions {
        scenario: scenario.into(),
        faults,
        ..SimOptions::default()
    };
    start_against_simulator(sim, |url| {
        let yaml = format!(
            r#"
defaults:
  app_credentials: {{enabled: true, interval: {interval}}}
tenants:
{}"#,
            SimTenant::new(tenant, url)
                .with("service_health: {enabled: false}")
                .with("messages: {enabled: false}")
        );
        Config::parse(&yaml, "test").unwrap()
    })
    .await
}

async fn scrape_when(exp: &Running, what: &str, ok: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
    let url = format!("{}/metrics", exp.url());
    wait_for(what, Duration::from_secs(60), || async {
        let m = parse(&get(&url).await.2);
        ok(&m).then_some(m)
    })
    .await
}

#[tokio::test]
async fn expiry_equals_the_simulated_end_date_per_credential() {
    for scenario in ["incident", "outage", "healthy"] {
        let (sim, exp) = start(scenario, "contoso", "1h", Faults::default()).await;
        let m = scrape_when(&exp, "the first refresh", |m| {
            !select(m, "m365_collector_success", &[COLLECTOR]).is_empty()
        })
        .await;
        let t = ("tenant", "contoso");
        assert_eq!(value(&m, "m365_collector_success", &[t, COLLECTOR]), 1.0);
        let app = sim.scenario().application;
        let mut want = Vec::new();
        for (kind, list) in [
            ("secret", &app.password_credentials),
            ("certificate", &app.key_credentials),
        ] {
            for c in list {
                want.push((
                    kind,
                    c.key_id.clone(),
                    parse_unix(&c.end_date_time).unwrap(),
                ));
            }
        }
        assert_eq!(want.len(), 3, "{scenario}: two secrets and a certificate");
        let series = select(&m, "m365_app_credential_expiry_timestamp_seconds", &[t]);
        assert_eq!(series.len(), want.len(), "{scenario}: {series:?}");
        for (kind, key_id, end) in &want {
            assert_eq!(
                value(
                    &m,
                    "m365_app_credential_expiry_timestamp_seconds",
                    &[t, ("type", kind), ("key_id", key_id)]
                ),
                *end,
                "{scenario} {kind} {key_id}"
            );
        }
        // One Graph call, as Microsoft documents it.
        let calls: Vec<_> = sim
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/v1.0/applications"))
            .collect();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(
            calls[0].path,
            format!("/v1.0/applications(appId='{SIM_CLIENT_ID}')")
        );
        assert_eq!(
            calls[0].param("$select").as_deref(),
            Some("passwordCredentials,keyCredentials")
        );
        assert!(calls[0].had_bearer && calls[0].status == 200);
        exp.stop().await.unwrap();
    }
}

#[tokio::test]
async fn forbidden_is_reported_once_and_clearly_then_recovers() {
    capture_logs();
    let (sim, exp) = start(
        "incident",
        "no-permission",
        "1s",
        Faults {
            app_forbidden: true,
            ..Faults::default()
        },
    )
    .await;
    let t = ("tenant", "no-permission");
    let m = scrape_when(&exp, "the failed refresh", |m| {
        !select(m, "m365_collector_success", &[COLLECTOR]).is_empty()
    })
    .await;
    assert_eq!(value(&m, "m365_collector_success", &[t, COLLECTOR]), 0.0);
    assert!(select(&m, "m365_app_credential_expiry_timestamp_seconds", &[]).is_empty());
    assert_eq!(
        value(
            &m,
            "m365_api_requests_total",
            &[
                t,
                ("api", "graph"),
                ("operation", "applications"),
                ("code", "403")
            ]
        ),
        1.0,
        "a 403 is not retried"
    );
    // Several failed refreshes later: still one line, naming the permission.
    wait_for(
        "three failed refreshes",
        Duration::from_secs(30),
        || async {
            let n = sim
                .requests()
                .iter()
                .filter(|r| r.path.starts_with("/v1.0/applications") && r.status == 403)
                .count();
            (n >= 3).then_some(())
        },
    )
    .await;
    let lines = log_lines(&["no-permission", "app_credentials", "refresh failed"]);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("Application.Read.All"), "{}", lines[0]);
    assert!(lines[0].contains("403"), "{}", lines[0]);
    let page = get(&format!("{}/", exp.url())).await.2;
    assert!(
        page.contains("Application.Read.All"),
        "status page shows the last error"
    );

    // Permission granted: the next refresh succeeds.
    sim.set_faults(Faults::default());
    let m = scrape_when(&exp, "recovery", |m| {
        select(m, "m365_collector_success", &[COLLECTOR])
            .first()
            .map(|s| s.value)
            == Some(1.0)
    })
    .await;
    assert_eq!(
        select(&m, "m365_app_credential_expiry_timestamp_seconds", &[t]).len(),
        3
    );
    assert_eq!(
        log_lines(&["no-permission", "app_credentials", "recovered"]).len(),
        1
    );
    exp.stop().await.unwrap();
}
