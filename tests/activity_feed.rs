//! The audit feed end to end, over real sockets: the exporter's counts equal
//! what the simulator served (with throttling on), every Management call
//! carries PublisherIdentifier, late content is picked up or counted as a
//! gap, and three days of downtime are caught up in ≤ 24 h windows.

mod support;

use m365_exporter::activity::state::{self, State};
use m365_exporter::cli::app::{Running, WebOptions};
use m365_exporter::simulator::{AuditOptions, Faults, SIM_TENANT_ID};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use support::activity::*;
use support::{select, sum, value, wait_for};

#[tokio::test]
async fn counts_equal_truth_with_throttling() {
    let sim = sim_with(
        AuditOptions::default(),
        Faults {
            blob_af429_every: 3,
            listing_429_every: 4,
            ..Faults::default()
        },
    )
    .await;
    let exp = start(&sim, "feed", ", operations: [FileDeleted, UserLoginFailed]").await;
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    let m = drained(&exp, "feed", truth.blobs).await;
    let t = ("tenant", "feed");

    // Records per (content type, workload): exactly the unique records served.
    let mut got: BTreeMap<(String, String), u64> = BTreeMap::new();
    for s in select(&m, "m365_activity_records_total", &[t]) {
        *got.entry((
            s.labels["content_type"].clone(),
            s.labels["workload"].clone(),
        ))
        .or_default() += s.value as u64;
    }
    assert_eq!(got, truth.records);
    let total: u64 = truth.records.values().sum();
    assert!(total > 100, "a meaningful sample: {total}");
    // Only allowlisted operations become label values.
    for s in select(&m, "m365_activity_records_total", &[t]) {
        let op = s.labels.get("operation").map(String::as_str).unwrap_or("");
        assert!(["", "FileDeleted", "UserLoginFailed"].contains(&op), "{op}");
    }
    assert!(
        sum(
            &m,
            "m365_activity_records_total",
            &[t, ("operation", "FileDeleted")]
        ) > 0.0
    );
    for ct in all_types() {
        let c = ("content_type", ct);
        assert_eq!(
            sum(&m, "m365_activity_records_duplicate_total", &[t, c]),
            truth.duplicates.get(ct).copied().unwrap_or(0) as f64,
            "{ct}"
        );
        assert_eq!(
            value(&m, "m365_activity_subscription_enabled", &[t, c]),
            1.0
        );
        assert_eq!(value(&m, "m365_activity_backlog_blobs", &[t, c]), 0.0);
        assert_eq!(value(&m, "m365_activity_blob_lag_seconds", &[t, c]), 0.0);
        let newest = sim
            .audit()
            .blobs
            .iter()
            .filter(|b| b.content_type == ct)
            .map(|b| b.created_ms / 1_000)
            .max()
            .unwrap();
        assert_eq!(
            value(
                &m,
                "m365_activity_last_content_created_timestamp_seconds",
                &[t, c]
            ),
            newest as f64
        );
    }
    assert!(truth.duplicates.values().sum::<u64>() > 0);
    assert_eq!(truth.expired_blobs, 1);
    assert_eq!(sum(&m, "m365_activity_content_expired_total", &[t]), 1.0);
    assert_eq!(
        sum(&m, "m365_activity_content_fetched_total", &[t]) as usize,
        truth.blobs - truth.expired_blobs
    );
    assert_eq!(
        sum(&m, "m365_activity_content_listed_total", &[t]) as usize,
        truth.blobs
    );
    assert_eq!(
        sum(&m, "m365_activity_record_delay_seconds_count", &[t]) as u64,
        total
    );
    assert_eq!(sum(&m, "m365_activity_listing_gaps_total", &[t]), 0.0);

    // Blob GETs = blobs + throttled retries; each blob served once.
    let reqs = management_requests(&sim);
    let blob_gets: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.contains("/activity/feed/audit/"))
        .collect();
    let throttled_blobs = value(&m, "m365_api_throttled_total", &[t, ("operation", "blob")]);
    assert!(throttled_blobs > 0.0, "the AF429 fault was exercised");
    assert_eq!(blob_gets.len(), truth.blobs + throttled_blobs as usize);
    let mut ok_per_blob: HashMap<&str, u32> = HashMap::new();
    for r in blob_gets.iter().filter(|r| r.status == 200) {
        *ok_per_blob.entry(r.path.as_str()).or_default() += 1;
    }
    assert_eq!(ok_per_blob.len(), truth.blobs - truth.expired_blobs);
    assert!(
        ok_per_blob.values().all(|n| *n == 1),
        "no blob downloaded twice"
    );
    assert!(
        sum(
            &m,
            "m365_api_throttled_total",
            &[t, ("operation", "content_list")]
        ) > 0.0
    );

    // PublisherIdentifier and a bearer on every Management call, paging followed.
    assert!(reqs
        .iter()
        .all(|r| r.param("PublisherIdentifier").as_deref() == Some(PUBLISHER)));
    assert!(reqs.iter().all(|r| r.had_bearer));
    assert!(
        reqs.iter().any(|r| r.param("nextPage").is_some()),
        "NextPageUri followed"
    );
    assert_eq!(sim.audit().rejected_windows, 0);

    // One token for the Management audience, reused for every call.
    let tokens = sim
        .state()
        .tokens
        .lock()
        .unwrap()
        .values()
        .filter(|i| i.audience == sim.url())
        .count();
    assert_eq!(tokens, 1);
    assert_eq!(sum(&m, "m365_auth_token_requests_total", &[t]), 1.0);
    assert_eq!(success(&m, t.1), 1.0);
    println!(
        "figures: blobs={} expired={} records={} duplicates={} blob_gets={} throttled_blob={} throttled_list={} mgmt_requests={} tokens={}",
        truth.blobs,
        truth.expired_blobs,
        total,
        truth.duplicates.values().sum::<u64>(),
        blob_gets.len(),
        throttled_blobs,
        sum(&m, "m365_api_throttled_total", &[t, ("operation", "content_list")]),
        reqs.len(),
        tokens
    );
    exp.stop().await.unwrap();
}

#[tokio::test]
async fn late_content_inside_overlap_is_picked_up_older_is_a_counted_gap() {
    capture_logs();
    let sim = sim_with(
        AuditOptions {
            blobs_per_type: 2,
            expired_blobs: 0,
            ..AuditOptions::default()
        },
        Faults::default(),
    )
    .await;
    let exp = start(
        &sim,
        "late",
        ", interval: 200ms, content_types: [Audit.Exchange, Audit.SharePoint]",
    )
    .await;
    let types = ["Audit.Exchange", "Audit.SharePoint"];
    let truth = sim.audit().truth(&types, 0, now_ms());
    drained(&exp, "late", truth.blobs).await;

    // Indexed late, but inside the 1 h overlap: found by the next re-list.
    sim.audit()
        .add_blob("Audit.Exchange", Duration::from_secs(30 * 60), 3);
    // Indexed 3 h late, in a window already listed: only the sweep finds it.
    sim.audit()
        .add_blob("Audit.SharePoint", Duration::from_secs(3 * 3_600), 4);
    let truth = sim.audit().truth(&types, 0, now_ms());
    let m = drained(&exp, "late", truth.blobs).await;
    let t = ("tenant", "late");
    let records = |ct: &str| {
        sum(
            &m,
            "m365_activity_records_total",
            &[t, ("content_type", ct)],
        )
    };
    assert_eq!(
        records("Audit.Exchange") as u64,
        truth.records_of("Audit.Exchange")
    );
    assert_eq!(
        records("Audit.SharePoint") as u64,
        truth.records_of("Audit.SharePoint")
    );
    assert_eq!(
        value(
            &m,
            "m365_activity_listing_gaps_total",
            &[t, ("content_type", "Audit.Exchange")]
        ),
        0.0
    );
    assert_eq!(
        value(
            &m,
            "m365_activity_listing_gaps_total",
            &[t, ("content_type", "Audit.SharePoint")]
        ),
        1.0
    );
    one_log_line(&["WARN", "tenant=late", "listing gap", "Audit.SharePoint"]);
    exp.stop().await.unwrap();
}

#[tokio::test]
async fn three_days_of_downtime_caught_up_in_day_windows() {
    let sim = sim_with(
        AuditOptions {
            blobs_per_type: 16,
            span: Duration::from_secs(4 * 86_400),
            expired_blobs: 0,
            ..AuditOptions::default()
        },
        Faults::default(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    // The exporter last listed 3 days ago (and DLP.All 10 days ago, beyond
    // Microsoft's 7-day limit).
    let now = now_ms() / 1_000;
    let mut st = State::default();
    for ct in all_types() {
        st.cursors.insert(ct.to_string(), now - 3 * 86_400);
    }
    st.cursors.insert("DLP.All".into(), now - 10 * 86_400);
    state::save(&path, &state::encode(&st, SIM_TENANT_ID, now)).unwrap();
    let exp = start(
        &sim,
        "catchup",
        &format!(", state_file: {}", path.display()),
    )
    .await;

    // Everything created since cursor − overlap (1 h) is due.
    let since = |c: i64| (c - 3_600) * 1_000;
    let mut due = 0;
    for ct in all_types() {
        let from = if ct == "DLP.All" {
            (now - 7 * 86_400 + 900) * 1_000
        } else {
            since(now - 3 * 86_400)
        };
        due += sim.audit().truth(&[ct], from, now_ms()).blobs;
    }
    drained(&exp, "catchup", due).await;
    assert_eq!(sim.audit().rejected_windows, 0, "no AF20030");

    let t = ("tenant", "catchup");
    let exchange = sim
        .audit()
        .truth(&["Audit.Exchange"], since(now - 3 * 86_400), now_ms());
    // Counted once the state file's save has them.
    counted(
        &exp,
        &[t, ("content_type", "Audit.Exchange")],
        exchange.records_of("Audit.Exchange"),
    )
    .await;
    // First pages of Audit.Exchange's listings in the first poll: contiguous
    // windows of at most 24 h from the cursor − overlap to about now.
    let reqs = management_requests(&sim);
    let windows: Vec<(i64, i64)> = reqs
        .iter()
        .filter(|r| r.path.ends_with("/subscriptions/content"))
        .filter(|r| r.param("contentType").as_deref() == Some("Audit.Exchange"))
        .filter(|r| r.param("nextPage").is_none() && r.status == 200)
        .map(|r| {
            let p =
                |k: &str| m365_exporter::timefmt::parse_unix(&r.param(k).unwrap()).unwrap() as i64;
            (p("startTime"), p("endTime"))
        })
        .collect();
    // The first poll's windows end with the one reaching "now".
    let last = windows.iter().position(|w| w.1 >= now).unwrap();
    let first_poll = &windows[..=last];
    assert_eq!(
        first_poll.len(),
        4,
        "3 days + 1 h in ≤ 24 h windows: {windows:?}"
    );
    assert_eq!(first_poll[0].0, now - 3 * 86_400 - 3_600);
    for w in &windows {
        assert!(w.1 > w.0 && w.1 - w.0 <= 86_400, "{w:?}");
    }
    for pair in first_poll.windows(2) {
        assert_eq!(pair[0].1, pair[1].0, "contiguous: {pair:?}");
    }
    println!(
        "figures: catch-up windows for Audit.Exchange in the first poll: {}",
        first_poll.len()
    );
    // DLP.All started inside the 7-day limit.
    let dlp_start = reqs
        .iter()
        .filter(|r| {
            r.param("contentType").as_deref() == Some("DLP.All") && r.param("startTime").is_some()
        })
        .map(|r| m365_exporter::timefmt::parse_unix(&r.param("startTime").unwrap()).unwrap() as i64)
        .min()
        .unwrap();
    assert!(dlp_start > now - 7 * 86_400, "{dlp_start}");
    wait_for("state saved", Duration::from_secs(5), || async {
        std::fs::read(&path)
            .ok()
            .and_then(|b| state::decode(&b, SIM_TENANT_ID).ok())
            .filter(|s| s.cursors["Audit.Exchange"] >= now)
            .map(|_| ())
    })
    .await;
    exp.stop().await.unwrap();
}

/// Listing alone outlasts the download window on every poll (five content
/// types, every answer slow): each poll still downloads a batch, so the
/// backlog drains instead of starving.
#[tokio::test]
async fn slow_listings_do_not_starve_downloads() {
    let sim = sim_with(
        AuditOptions::default(),
        Faults {
            slow: Duration::from_millis(1_100),
            ..Faults::default()
        },
    )
    .await;
    // Five listings × 1.1 s per poll: past the 5 s minimum download window.
    let mut cfg = config(&sim.url(), "slow", ", overlap: 1m");
    cfg.tenants[0].activity.lookback = Duration::from_secs(3 * 3_600);
    let exp = Running::start(&cfg, &WebOptions::default(), &fast())
        .await
        .unwrap();
    let truth = sim
        .audit()
        .truth(&all_types(), now_ms() - 3 * 3_600_000, now_ms());
    assert!(
        truth.blobs >= 2,
        "scenario has recent blobs: {}",
        truth.blobs
    );
    let m = drained(&exp, "slow", truth.blobs).await;
    assert_eq!(
        sum(&m, "m365_activity_backlog_blobs", &[("tenant", "slow")]),
        0.0
    );
    exp.stop().await.unwrap();
}
