//! A disabled subscription, a missing permission, the unified audit log off,
//! subscriptions not yet started: each shows in the metrics and in exactly
//! one log line, the collector keeps polling without hammering Microsoft,
//! and content types that work keep being counted.

mod support;

use m365_exporter::cli::app::Running;
use m365_exporter::simulator::{AuditOffSplit, AuditOptions, SimOptions, Simulator};
use std::time::Duration;
use support::activity::*;
use support::{sum, value};

/// A simulator with `audit`, and the exporter (tenant `tenant`) against it.
async fn running(audit: AuditOptions, tenant: &str, extra: &str) -> (Simulator, Running) {
    capture_logs();
    let sim = Simulator::start(SimOptions {
        audit,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let exp = start(&sim, tenant, extra).await;
    (sim, exp)
}

fn count(sim: &Simulator, path_end: &str) -> usize {
    management_requests(sim)
        .iter()
        .filter(|r| r.path.ends_with(path_end))
        .count()
}

/// Let the collector poll several more times (interval 300 ms).
async fn several_polls() {
    tokio::time::sleep(Duration::from_millis(1_500)).await;
}

#[tokio::test]
async fn disabled_subscription_others_unaffected() {
    let (sim, exp) = running(
        AuditOptions {
            disabled: vec!["Audit.Exchange".into()],
            ..AuditOptions::default()
        },
        "disabled",
        ", start_subscriptions: true",
    )
    .await;
    let others: Vec<&str> = all_types()
        .into_iter()
        .filter(|c| *c != "Audit.Exchange")
        .collect();
    let truth = sim.audit().truth(&others, 0, now_ms());
    drained(&exp, "disabled", truth.blobs).await;
    several_polls().await;
    let m = scrape(&exp).await;
    let t = ("tenant", "disabled");
    for ct in all_types() {
        let want = if ct == "Audit.Exchange" { 0.0 } else { 1.0 };
        assert_eq!(
            value(
                &m,
                "m365_activity_subscription_enabled",
                &[t, ("content_type", ct)]
            ),
            want,
            "{ct}"
        );
        let records = sum(
            &m,
            "m365_activity_records_total",
            &[t, ("content_type", ct)],
        ) as u64;
        assert_eq!(records, truth.records_of(ct), "{ct}");
    }
    assert_eq!(success(&m, t.1), 0.0);
    assert_eq!(
        value(&m, "m365_api_errors_total", &[t, ("error_code", "AF20023")]),
        1.0
    );
    // Started once (not every poll), listed never.
    assert_eq!(count(&sim, "/subscriptions/start"), 1);
    let exchange_listings = management_requests(&sim)
        .iter()
        .filter(|r| {
            r.param("contentType").as_deref() == Some("Audit.Exchange")
                && r.path.ends_with("/content")
        })
        .count();
    assert_eq!(exchange_listings, 0);
    let line = one_log_line(&["ERROR", "tenant=disabled", "AF20023"]);
    assert!(line.contains("Audit.Exchange"));
    exp.stop().await.unwrap();
}

#[tokio::test]
async fn missing_permission_is_one_line_and_no_hammering() {
    let (sim, exp) = running(
        AuditOptions {
            missing_permission: true,
            ..AuditOptions::default()
        },
        "perm",
        ", start_subscriptions: true",
    )
    .await;
    support::wait_for("a first refresh", Duration::from_secs(10), || async {
        let m = scrape(&exp).await;
        (!support::select(&m, "m365_collector_success", &[]).is_empty()).then_some(())
    })
    .await;
    several_polls().await;
    let m = scrape(&exp).await;
    let t = ("tenant", "perm");
    assert_eq!(success(&m, t.1), 0.0);
    for ct in all_types() {
        assert_eq!(
            value(
                &m,
                "m365_activity_subscription_enabled",
                &[t, ("content_type", ct)]
            ),
            0.0
        );
    }
    assert!(value(&m, "m365_api_errors_total", &[t, ("error_code", "AF10001")]) >= 1.0);
    // One subscriptions/list (and its one retry with a fresh token after the
    // 401), then nothing until the 15-minute re-check.
    assert_eq!(count(&sim, "/subscriptions/list"), 2);
    assert_eq!(count(&sim, "/subscriptions/start"), 0);
    assert_eq!(count(&sim, "/subscriptions/content"), 0);
    let line = one_log_line(&["ERROR", "tenant=perm", "AF10001"]);
    assert!(line.contains("ActivityFeed.Read"));
    exp.stop().await.unwrap();
}

/// The unified audit log off, its exception text split between the error's
/// code and message wherever Microsoft's split falls: reported as such in
/// one line, `/start` once per type per 15 minutes, nothing listed.
#[tokio::test]
async fn audit_log_off_is_reported_as_such() {
    for (split, tenant) in [
        (AuditOffSplit::Message, "off-message"),
        (AuditOffSplit::Straddle, "off-straddle"),
        (AuditOffSplit::Code, "off-code"),
    ] {
        let (sim, exp) = running(
            AuditOptions {
                audit_log_off: true,
                audit_off_split: split,
                ..AuditOptions::default()
            },
            tenant,
            ", start_subscriptions: true",
        )
        .await;
        support::wait_for("five start attempts", Duration::from_secs(10), || async {
            (count(&sim, "/subscriptions/start") == 5).then_some(())
        })
        .await;
        several_polls().await;
        let m = scrape(&exp).await;
        let t = ("tenant", tenant);
        assert_eq!(success(&m, t.1), 0.0, "{split:?}");
        assert_eq!(sum(&m, "m365_activity_subscription_enabled", &[t]), 0.0);
        assert_eq!(
            count(&sim, "/subscriptions/start"),
            5,
            "{split:?}: once per type per 15 min"
        );
        assert_eq!(count(&sim, "/subscriptions/content"), 0);
        assert_eq!(
            value(&m, "m365_api_errors_total", &[t, ("error_code", "HTTP400")]),
            5.0
        );
        one_log_line(&[
            "ERROR",
            &format!("tenant={tenant} "),
            "unified audit logging is off",
        ]);
        exp.stop().await.unwrap();
    }
}

#[tokio::test]
async fn subscriptions_started_once_then_feed_flows() {
    let (sim, exp) = running(
        AuditOptions {
            started: false,
            ..AuditOptions::default()
        },
        "fresh",
        ", start_subscriptions: true",
    )
    .await;
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    let m = drained(&exp, "fresh", truth.blobs).await;
    let t = ("tenant", "fresh");
    assert_eq!(count(&sim, "/subscriptions/start"), 5);
    assert_eq!(sum(&m, "m365_activity_subscription_enabled", &[t]), 5.0);
    assert_eq!(
        sum(&m, "m365_activity_records_total", &[t]) as u64,
        truth.records.values().sum::<u64>()
    );
    assert_eq!(success(&m, t.1), 1.0);
    exp.stop().await.unwrap();
}

#[tokio::test]
async fn without_start_subscriptions_missing_types_are_reported() {
    let (sim, exp) = running(
        AuditOptions {
            started: false,
            ..AuditOptions::default()
        },
        "nostart",
        "",
    )
    .await;
    several_polls().await;
    let m = scrape(&exp).await;
    let t = ("tenant", "nostart");
    assert_eq!(sum(&m, "m365_activity_subscription_enabled", &[t]), 0.0);
    assert_eq!(success(&m, t.1), 0.0);
    assert_eq!(count(&sim, "/subscriptions/start"), 0);
    assert_eq!(
        count(&sim, "/subscriptions/list"),
        1,
        "re-checked every 15 min, not every poll"
    );
    exp.stop().await.unwrap();
}
