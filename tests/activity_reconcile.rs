//! `activity.reconcile` against the simulator's Audit Log Query API, which
//! searches the same records its Management API serves: a blob never listed
//! is found missing and repaired into the sink exactly once; a blob listed
//! late is found by re-listing (or, arrived before the comparison, leaves
//! nothing missing) and never delivers a record twice; a failed query and a
//! 403 fail the window without touching the feed, and it is retried; a
//! restart in the middle of a query resumes that query.

mod support;

use m365_exporter::activity::records::parse_blob;
use m365_exporter::cli::app::Running;
use m365_exporter::simulator::{AuditOptions, Faults, Simulator};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::activity::*;
use support::{sum, value, wait_for, Sample};

const TENANT: &str = "rec";

/// Midnight UTC today: with `window: 24h` and `settle: 0s`, the windows
/// reconciled in a test end here (the one after it has not ended yet).
fn midnight() -> i64 {
    (now_ms() / 1_000).div_euclid(86_400) * 86_400
}

fn opts() -> AuditOptions {
    AuditOptions {
        expired_blobs: 0,
        ..AuditOptions::default()
    }
}

struct Files {
    _dir: tempfile::TempDir,
    state: PathBuf,
    out: PathBuf,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    Files {
        state: dir.path().join("state.json"),
        out: dir.path().join("audit.ndjson"),
        _dir: dir,
    }
}

fn keys(f: &Files, reconcile: &str) -> String {
    format!(
        // The feed's own interval too: `interval:` in `extra` replaces the default.
        ", interval: 300ms, state_file: {}, output: {}, reconcile: {{enabled: true, interval: 10s, settle: 0s, window: 24h{reconcile}}}",
        f.state.display(),
        f.out.display()
    )
}

fn sink_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn windows(m: &[Sample], result: &str) -> f64 {
    value(
        m,
        "m365_activity_reconcile_windows_total",
        &[("tenant", TENANT), ("result", result)],
    )
}

fn records(m: &[Sample], ct: &str, result: &str) -> f64 {
    value(
        m,
        "m365_activity_reconcile_records_total",
        &[("tenant", TENANT), ("content_type", ct), ("result", result)],
    )
}

/// Wait until `n` windows ended other than failed, the last at midnight,
/// with the backlog empty.
async fn reconciled(exp: &Running, n: f64) -> Vec<Sample> {
    wait_for(
        "windows reconciled",
        Duration::from_secs(90),
        || async move {
            let m = scrape(exp).await;
            let done = ["complete", "repaired", "incomplete"]
                .iter()
                .map(|r| windows(&m, r))
                .sum::<f64>();
            let backlog = sum(&m, "m365_activity_backlog_blobs", &[("tenant", TENANT)]);
            // The gauges come with the feed's status, after its poll; the
            // counters at once.
            let until = sum(
                &m,
                "m365_activity_reconciled_until_timestamp_seconds",
                &[("tenant", TENANT)],
            );
            (done >= n && backlog == 0.0 && until == midnight() as f64).then_some(m)
        },
    )
    .await
}

/// Per content type, the records the query API holds before `until`
/// (each id once) and which of them sit in a blob the Management API lists.
#[derive(Debug, Default)]
struct Expected {
    matched: BTreeMap<String, u64>,
    missing: BTreeMap<String, u64>,
    /// Ids of the records missing from every listed blob.
    missing_ids: BTreeSet<String>,
}

fn expected(sim: &Simulator, until: i64) -> Expected {
    let audit = sim.audit();
    let mut all: BTreeMap<String, (String, bool)> = BTreeMap::new();
    for b in audit.blobs.iter().filter(|b| !b.poison) {
        let listed = b.listed_from_ms != i64::MAX && !b.expired;
        for r in parse_blob(b.body.as_bytes()).unwrap() {
            let t = r.creation_time.unwrap() as i64;
            if t >= until {
                continue;
            }
            let e = all
                .entry(r.id.unwrap().to_string())
                .or_insert((b.content_type.clone(), false));
            e.1 |= listed;
        }
    }
    let mut x = Expected::default();
    for (id, (ct, listed)) in all {
        if listed {
            *x.matched.entry(ct).or_default() += 1;
        } else {
            *x.missing.entry(ct).or_default() += 1;
            x.missing_ids.insert(id);
        }
    }
    x
}

fn assert_counts(m: &[Sample], x: &Expected, repaired: bool) {
    for ct in all_types() {
        let matched = x.matched.get(ct).copied().unwrap_or(0) as f64;
        let missing = x.missing.get(ct).copied().unwrap_or(0) as f64;
        assert_eq!(records(m, ct, "matched"), matched, "{ct} matched");
        assert_eq!(records(m, ct, "missing"), missing, "{ct} missing");
        let want = if repaired { missing } else { 0.0 };
        assert_eq!(records(m, ct, "repaired"), want, "{ct} repaired");
        assert_eq!(
            value(
                m,
                "m365_activity_reconcile_missing_records",
                &[("tenant", TENANT), ("content_type", ct)]
            ),
            0.0,
            "{ct}: nothing left missing"
        );
    }
    assert_eq!(
        value(
            m,
            "m365_activity_reconciled_until_timestamp_seconds",
            &[("tenant", TENANT)]
        ),
        midnight() as f64
    );
}

#[tokio::test]
async fn a_blob_never_listed_is_repaired_exactly_once_and_its_late_listing_adds_nothing() {
    let sim = sim_with(
        AuditOptions {
            unlisted_blobs: 1,
            ..opts()
        },
        Faults::default(),
    )
    .await;
    let f = files();
    let x = expected(&sim, midnight());
    let hidden: u64 = x.missing.values().sum();
    assert!(hidden > 0 && x.missing.keys().all(|ct| ct == "Audit.Exchange"));
    let truth = sim.audit().truth(&all_types(), 0, now_ms());

    let exp = start(&sim, TENANT, &keys(&f, "")).await;
    let m = reconciled(&exp, 2.0).await;
    assert_eq!(windows(&m, "failed") + windows(&m, "incomplete"), 0.0);
    assert!(windows(&m, "repaired") >= 1.0, "the hidden blob's window");
    assert_counts(&m, &x, true);
    // The sink holds the simulator's truth exactly once, the repaired
    // records as Microsoft's own bytes; they count like any record.
    let lines = sink_lines(&f.out);
    assert_sink_exactly_once(&lines, &sim, &truth.ids);
    counted(&exp, &[("tenant", TENANT)], truth.ids.len() as u64).await;

    // The blob shows up after all (a backfilled blob, contentCreated now):
    // fetched, and every record of it a duplicate.
    let fetched = sum(
        &m,
        "m365_activity_content_fetched_total",
        &[("tenant", TENANT)],
    );
    let dups = sum(
        &m,
        "m365_activity_records_duplicate_total",
        &[("tenant", TENANT)],
    );
    let n = {
        let mut a = sim.audit();
        let b = a
            .blobs
            .iter_mut()
            .find(|b| b.listed_from_ms == i64::MAX)
            .unwrap();
        b.created_ms = now_ms() + 1_000;
        b.listed_from_ms = b.created_ms;
        b.published_ms = b.created_ms;
        b.records.len()
    };
    let m = wait_for("the late blob fetched", Duration::from_secs(60), || async {
        let m = scrape(&exp).await;
        (sum(
            &m,
            "m365_activity_content_fetched_total",
            &[("tenant", TENANT)],
        ) > fetched)
            .then_some(m)
    })
    .await;
    exp.stop().await.unwrap();
    assert_eq!(
        sum(
            &m,
            "m365_activity_records_duplicate_total",
            &[("tenant", TENANT)]
        ) - dups,
        n as f64
    );
    assert_eq!(sink_lines(&f.out), lines, "no record delivered twice");
}

#[tokio::test]
async fn a_blob_listed_late_is_found_by_re_listing() {
    let sim = sim_with(
        AuditOptions {
            unlisted_blobs: 1,
            query_delay: Duration::from_secs(3_600),
            ..opts()
        },
        Faults::default(),
    )
    .await;
    let f = files();
    let x = expected(&sim, midnight());
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    let exp = start(&sim, TENANT, &keys(&f, "")).await;
    wait_for("a query submitted", Duration::from_secs(60), || async {
        (!sim.audit().queries.is_empty()).then_some(())
    })
    .await;
    let gaps = sum(
        &scrape(&exp).await,
        "m365_activity_listing_gaps_total",
        &[("tenant", TENANT)],
    );
    // Microsoft lists the blob now, under its old contentCreated: the feed
    // is past it, the reconciler's re-list is not.
    {
        let mut a = sim.audit();
        let b = a
            .blobs
            .iter_mut()
            .find(|b| b.listed_from_ms == i64::MAX)
            .unwrap();
        b.listed_from_ms = b.created_ms;
        b.published_ms = b.created_ms;
        a.opts.query_delay = Duration::ZERO;
    }
    let m = reconciled(&exp, 2.0).await;
    exp.stop().await.unwrap();
    assert_counts(&m, &x, false);
    assert!(windows(&m, "repaired") >= 1.0);
    assert_eq!(
        sum(
            &m,
            "m365_activity_listing_gaps_total",
            &[("tenant", TENANT)]
        ) - gaps,
        1.0,
        "the blob found by re-listing is a listing gap"
    );
    assert_sink_exactly_once(&sink_lines(&f.out), &sim, &truth.ids);
}

#[tokio::test]
async fn a_late_blob_in_before_the_comparison_leaves_nothing_missing() {
    let sim = sim_with(
        AuditOptions {
            unlisted_blobs: 1,
            query_delay: Duration::from_secs(3_600),
            ..opts()
        },
        Faults::default(),
    )
    .await;
    let f = files();
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    let exp = start(&sim, TENANT, &keys(&f, "")).await;
    wait_for("a query submitted", Duration::from_secs(60), || async {
        (!sim.audit().queries.is_empty()).then_some(())
    })
    .await;
    let fetched = sum(
        &scrape(&exp).await,
        "m365_activity_content_fetched_total",
        &[("tenant", TENANT)],
    );
    {
        let mut a = sim.audit();
        let b = a
            .blobs
            .iter_mut()
            .find(|b| b.listed_from_ms == i64::MAX)
            .unwrap();
        b.created_ms = now_ms() + 1_000;
        b.listed_from_ms = b.created_ms;
        b.published_ms = b.created_ms;
    }
    wait_for("the late blob fetched", Duration::from_secs(60), || async {
        let m = scrape(&exp).await;
        (sum(
            &m,
            "m365_activity_content_fetched_total",
            &[("tenant", TENANT)],
        ) > fetched)
            .then_some(())
    })
    .await;
    let x = expected(&sim, midnight());
    assert!(x.missing.is_empty());
    sim.audit().opts.query_delay = Duration::ZERO;
    let m = reconciled(&exp, 2.0).await;
    exp.stop().await.unwrap();
    assert_eq!(windows(&m, "complete"), 2.0);
    assert_counts(&m, &x, false);
    assert_sink_exactly_once(&sink_lines(&f.out), &sim, &truth.ids);
}

#[tokio::test]
async fn a_failed_query_fails_its_window_and_is_retried() {
    let sim = sim_with(
        AuditOptions {
            failed_queries: 1,
            ..opts()
        },
        Faults::default(),
    )
    .await;
    let f = files();
    let x = expected(&sim, midnight());
    let exp = start(&sim, TENANT, &keys(&f, "")).await;
    let m = reconciled(&exp, 2.0).await;
    exp.stop().await.unwrap();
    assert_eq!(windows(&m, "failed"), 1.0);
    assert_eq!(windows(&m, "complete"), 2.0);
    assert_eq!(
        sim.audit().queries.len(),
        3,
        "the failed window queried again"
    );
    let q = sim.audit().queries.clone();
    assert_eq!(
        (q[0].start_ms, q[0].end_ms),
        (q[1].start_ms, q[1].end_ms),
        "the same window"
    );
    assert_counts(&m, &x, false);
}

#[tokio::test]
async fn a_403_names_the_permission_once_and_leaves_the_feed_alone() {
    capture_logs();
    let sim = sim_with(
        AuditOptions {
            query_forbidden: true,
            unlisted_blobs: 1,
            ..opts()
        },
        Faults::default(),
    )
    .await;
    let f = files();
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    let listed = sim
        .audit()
        .blobs
        .iter()
        .filter(|b| b.listed_from_ms != i64::MAX)
        .count();
    let exp = start(&sim, TENANT, &keys(&f, "")).await;
    let m = wait_for("two refused attempts", Duration::from_secs(60), || async {
        let m = scrape(&exp).await;
        (windows(&m, "failed") >= 2.0).then_some(m)
    })
    .await;
    let m2 = drained(&exp, TENANT, listed).await;
    assert_eq!(success(&m2, TENANT), 1.0, "the feed is not failed by it");
    for r in ["complete", "repaired", "incomplete"] {
        assert_eq!(windows(&m, r), 0.0);
    }
    let line = one_log_line(&["AuditLogsQuery.Read.All", "tenant=rec"]);
    assert!(line.contains("403"), "{line}");
    // Granted: the next attempt reconciles and repairs.
    sim.audit().opts.query_forbidden = false;
    let m = reconciled(&exp, 2.0).await;
    exp.stop().await.unwrap();
    assert_counts(&m, &expected(&sim, midnight()), true);
    assert_sink_exactly_once(&sink_lines(&f.out), &sim, &truth.ids);
    assert_eq!(
        log_lines(&["AuditLogsQuery.Read.All", "tenant=rec"]).len(),
        1
    );
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_query_resumes_it() {
    let sim = sim_with(
        AuditOptions {
            unlisted_blobs: 1,
            query_delay: Duration::from_secs(3_600),
            ..opts()
        },
        Faults::default(),
    )
    .await;
    let f = files();
    let x = expected(&sim, midnight());
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    let first = start(&sim, TENANT, &keys(&f, "")).await;
    let id = wait_for("the query saved", Duration::from_secs(60), || async {
        let id = sim.audit().queries.first().map(|q| q.id.clone())?;
        let state = std::fs::read_to_string(&f.state).unwrap_or_default();
        state.contains(&id).then_some(id)
    })
    .await;
    first.stop().await.unwrap();

    sim.audit().opts.query_delay = Duration::ZERO;
    let second = start(&sim, TENANT, &keys(&f, "")).await;
    let m = reconciled(&second, 2.0).await;
    second.stop().await.unwrap();
    let q = sim.audit().queries.clone();
    assert_eq!(
        q.len(),
        2,
        "one query per window, the first not submitted again"
    );
    assert_eq!(q[0].id, id);
    let records_read = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(&format!("{id}/records")))
        .count();
    assert!(records_read >= 1, "the resumed query's records were read");
    assert_counts(&m, &x, true);
    assert_sink_exactly_once(&sink_lines(&f.out), &sim, &truth.ids);
}
