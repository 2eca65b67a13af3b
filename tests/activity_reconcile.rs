//! `activity.reconcile` against the simulator's Audit Log Query API, which
//! searches the same records its Management API serves: a blob never listed
//! is found missing and repaired into the sink exactly once; a blob listed
//! late (the `late_blobs` fault) is found by re-listing (or, arrived before
//! the comparison, leaves nothing missing) and never delivers a record
//! twice; a failed query and a 403 fail the window without touching the
//! feed, and it is retried; a restart in the middle of a query resumes that
//! query.

mod support;

use m365_exporter::simulator::AuditOptions;
use std::time::Duration;
use support::activity::*;
use support::reconcile::*;
use support::wait_for;

#[tokio::test]
async fn a_blob_never_listed_is_repaired_exactly_once_and_its_late_listing_adds_nothing() {
    let run = setup(AuditOptions {
        unlisted_blobs: 1,
        ..opts()
    })
    .await;
    let x = expected(&run.sim, midnight());
    let hidden: u64 = x.missing.values().sum();
    assert!(hidden > 0 && x.missing.keys().all(|ct| ct == "Audit.Exchange"));

    let exp = run.start().await;
    let m = reconciled(&exp, 2.0).await;
    assert_eq!(windows(&m, "failed") + windows(&m, "incomplete"), 0.0);
    assert!(windows(&m, "repaired") >= 1.0, "the hidden blob's window");
    assert_counts(&m, &x);
    // The sink holds the simulator's truth exactly once, the repaired
    // records as Microsoft's own bytes; they count like any record.
    run.assert_sink();
    let lines = sink_lines(&run.files.out);
    assert_eq!(
        total(&m, "m365_activity_records_total"),
        run.truth.len() as f64
    );

    // The blob shows up after all (a backfilled blob, contentCreated now):
    // fetched, and every record of it a duplicate.
    let dups = total(&m, "m365_activity_records_duplicate_total");
    let n = run.list_the_unlisted_blob(true);
    let m = fetched_more(&exp, total(&m, "m365_activity_content_fetched_total")).await;
    exp.stop().await.unwrap();
    assert_eq!(
        total(&m, "m365_activity_records_duplicate_total") - dups,
        n as f64
    );
    assert_eq!(
        sink_lines(&run.files.out),
        lines,
        "no record delivered twice"
    );
}

/// The simulator's `late_blobs` fault: the oldest `Audit.Exchange` blob is
/// listed only `late_by` after the simulator started, under its old
/// contentCreated, when the feed's listing is past it. The reconciler
/// finds its records missing and re-lists their window first: the blob is
/// found there (a listing gap) and fetched as usual, nothing is repaired,
/// and the sink holds every record once. (Records in a window before the
/// blob's own, when it straddles yesterday's midnight, cannot be found by
/// re-listing their window: those are repaired, and the blob's fetch adds
/// them as duplicates, never twice to the sink.)
#[tokio::test]
async fn a_blob_published_late_is_found_by_re_listing_its_window() {
    let late_by = Duration::from_secs(12);
    let run = setup(AuditOptions {
        late_blobs: 1,
        late_by,
        query_delay: Duration::from_secs(3_600),
        ..opts()
    })
    .await;
    let (late_id, created, from) = {
        let a = run.sim.audit();
        let b = a
            .blobs
            .iter()
            .find(|b| b.listed_from_ms > b.created_ms)
            .expect("the late blob");
        (b.content_id.clone(), b.created_ms / 1_000, b.listed_from_ms)
    };
    let own = window_of(created);
    let x = expected_with(
        &run.sim,
        midnight(),
        |b| b.content_id == late_id,
        |t| window_of(t) < own,
    );
    let missing: u64 = x.missing.values().sum();
    let repaired: u64 = x.repaired.values().sum();
    assert!(missing > 0 && x.missing.keys().all(|ct| ct == "Audit.Exchange"));
    // Found by re-listing when any of its records is in its own window.
    let gaps = u64::from(missing > repaired) as f64;

    let exp = run.start().await;
    run.query_submitted().await;
    // The feed finished listing past the blob before Microsoft listed it
    // (a query is submitted only then).
    assert!(
        now_ms() < from,
        "the exporter took longer than late_by ({late_by:?}) to list its windows: \
         the blob was not late for it"
    );
    let m = scrape(&exp).await;
    let (gaps_before, fetched) = (
        total(&m, "m365_activity_listing_gaps_total"),
        total(&m, "m365_activity_content_fetched_total"),
    );
    wait_for("the late blob listed", Duration::from_secs(60), || async {
        (now_ms() >= from).then_some(())
    })
    .await;
    run.queries_done();
    let m = reconciled(&exp, 2.0).await;
    exp.stop().await.unwrap();
    assert_eq!(windows(&m, "failed") + windows(&m, "incomplete"), 0.0);
    assert!(windows(&m, "repaired") >= 1.0, "the late blob's window");
    assert_counts(&m, &x);
    assert_eq!(
        total(&m, "m365_activity_listing_gaps_total") - gaps_before,
        gaps,
        "the blob found by re-listing is a listing gap"
    );
    assert_eq!(
        total(&m, "m365_activity_content_fetched_total") - fetched,
        gaps,
        "and fetched as usual"
    );
    run.assert_sink();
}

#[tokio::test]
async fn a_late_blob_in_before_the_comparison_leaves_nothing_missing() {
    let run = setup(AuditOptions {
        unlisted_blobs: 1,
        query_delay: Duration::from_secs(3_600),
        ..opts()
    })
    .await;
    let exp = run.start().await;
    run.query_submitted().await;
    let fetched = total(&scrape(&exp).await, "m365_activity_content_fetched_total");
    run.list_the_unlisted_blob(true);
    fetched_more(&exp, fetched).await;
    let x = expected(&run.sim, midnight());
    assert!(x.missing.is_empty());
    run.queries_done();
    let m = reconciled(&exp, 2.0).await;
    exp.stop().await.unwrap();
    assert_eq!(windows(&m, "complete"), 2.0);
    assert_counts(&m, &x);
    run.assert_sink();
}

#[tokio::test]
async fn a_failed_query_fails_its_window_and_is_retried() {
    let run = setup(AuditOptions {
        failed_queries: 1,
        ..opts()
    })
    .await;
    let x = expected(&run.sim, midnight());
    let exp = run.start().await;
    let m = reconciled(&exp, 2.0).await;
    exp.stop().await.unwrap();
    assert_eq!(windows(&m, "failed"), 1.0);
    assert_eq!(windows(&m, "complete"), 2.0);
    let q = run.sim.audit().queries.clone();
    assert_eq!(q.len(), 3, "the failed window queried again");
    assert_eq!(
        (q[0].start_ms, q[0].end_ms),
        (q[1].start_ms, q[1].end_ms),
        "the same window"
    );
    assert_counts(&m, &x);
}

#[tokio::test]
async fn a_403_names_the_permission_once_and_leaves_the_feed_alone() {
    capture_logs();
    let run = setup(AuditOptions {
        query_forbidden: true,
        unlisted_blobs: 1,
        ..opts()
    })
    .await;
    let listed = run
        .sim
        .audit()
        .blobs
        .iter()
        .filter(|b| b.listed_from_ms != i64::MAX)
        .count();
    let exp = run.start().await;
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
    run.sim.audit().opts.query_forbidden = false;
    let m = reconciled(&exp, 2.0).await;
    exp.stop().await.unwrap();
    assert_counts(&m, &expected(&run.sim, midnight()));
    run.assert_sink();
    assert_eq!(
        log_lines(&["AuditLogsQuery.Read.All", "tenant=rec"]).len(),
        1
    );
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_query_resumes_it() {
    let run = setup(AuditOptions {
        unlisted_blobs: 1,
        query_delay: Duration::from_secs(3_600),
        ..opts()
    })
    .await;
    let x = expected(&run.sim, midnight());
    let first = run.start().await;
    let id = wait_for("the query saved", Duration::from_secs(60), || async {
        let id = run.sim.audit().queries.first().map(|q| q.id.clone())?;
        let state = std::fs::read_to_string(&run.files.state).unwrap_or_default();
        state.contains(&id).then_some(id)
    })
    .await;
    first.stop().await.unwrap();

    run.queries_done();
    let second = run.start().await;
    let m = reconciled(&second, 2.0).await;
    second.stop().await.unwrap();
    let q = run.sim.audit().queries.clone();
    assert_eq!(
        q.len(),
        2,
        "one query per window, the first not submitted again"
    );
    assert_eq!(q[0].id, id);
    let records_read = run
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(&format!("{id}/records")))
        .count();
    assert!(records_read >= 1, "the resumed query's records were read");
    assert_counts(&m, &x);
    run.assert_sink();
}
