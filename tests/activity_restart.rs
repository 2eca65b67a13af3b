//! Restarts with a state file and an output sink: every record lands in the
//! sink exactly once, as Microsoft sent it, even when the process dies with
//! blobs in flight and sink writes newer than the saved state; a reload
//! that removes a tenant stops its feed, and re-adding it resumes from the
//! checkpoint; a corrupt state file is set aside and the feed starts over
//! from `lookback`, without writing a record twice when there is an output
//! (deduplicated by the id log, or refused without one); every file the
//! feed makes is `0600`.

mod support;

use m365_exporter::collect::fleet::Fleet;
use m365_exporter::metrics::Live;
use m365_exporter::simulator::{AuditOptions, Faults, SimOptions, Simulator};
use std::sync::Arc;
use std::time::Duration;
use support::activity::*;
use support::{parse, select, sum, wait_for, Sample};

fn sink_lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn kill_and_restart_writes_every_record_once() {
    let sim = sim_with(
        AuditOptions::default(),
        Faults {
            blob_delay: Duration::from_millis(60),
            blob_af429_every: 7,
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (state, out) = (
        dir.path().join("state.json"),
        dir.path().join("audit.ndjson"),
    );
    let extra = format!(
        ", concurrency: 2, state_file: {}, output: {}",
        state.display(),
        out.display()
    );
    let truth = sim.audit().truth(&all_types(), 0, now_ms());

    let first = start(&sim, "restart", &extra).await;
    // A saved state from early on...
    let t = [("tenant", "restart")];
    let fetched = |n: f64| {
        let first = &first;
        move || async move {
            let m = scrape(first).await;
            (sum(&m, "m365_activity_content_fetched_total", &t) >= n).then_some(())
        }
    };
    wait_for("10 blobs fetched", Duration::from_secs(30), fetched(10.0)).await;
    let early_state = std::fs::read(&state).unwrap();
    // ...then more blobs written to the sink, then death with downloads in flight.
    wait_for("20 blobs fetched", Duration::from_secs(30), fetched(20.0)).await;
    first.stop().await.unwrap();
    let written_before = sink_lines(&out).len();
    // The worst case: the state on disk predates many sink writes.
    std::fs::write(&state, &early_state).unwrap();

    let second = start(&sim, "restart", &extra).await;
    let m = wait_for("the rest fetched", Duration::from_secs(60), || async {
        let m = scrape(&second).await;
        // The backlog gauge is served from the start: drained once a poll
        // has listed every type (success) and nothing is left.
        let backlog = select(&m, "m365_activity_backlog_blobs", &t);
        (success(&m, "restart") == 1.0
            && !backlog.is_empty()
            && backlog.iter().all(|s| s.value == 0.0))
        .then_some(m)
    })
    .await;
    second.stop().await.unwrap();

    let lines = sink_lines(&out);
    assert_sink_exactly_once(&lines, &sim, &truth.ids);
    assert!(written_before < lines.len());
    // The second process fetched only what the (early) state had not.
    let refetched = sum(&m, "m365_activity_content_fetched_total", &t) as usize;
    assert!(refetched < truth.blobs - truth.expired_blobs, "{refetched}");
    println!(
        "figures: records={} sink_lines_at_kill={} sink_lines_final={} blobs_fetched_after_restart={}",
        truth.ids.len(),
        written_before,
        lines.len(),
        refetched
    );
}

fn fleet_metrics(fleet: &Fleet) -> Vec<Sample> {
    parse(&String::from_utf8(fleet.store().render(None)).unwrap())
}

#[tokio::test]
async fn a_reload_stops_a_removed_tenants_feed_and_re_adding_it_resumes() {
    let sim = Simulator::start(SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("audit.ndjson");
    let with_feed = config(
        &sim.url(),
        "moving",
        &format!(
            ", state_file: {}, output: {}",
            dir.path().join("state.json").display(),
            out.display()
        ),
    );
    let without = support::service_health_config(&sim.url(), "1h");
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    let t = [("tenant", "moving")];
    let fleet = Fleet::new(Arc::new(Live::new()), fast());

    fleet.apply(&with_feed).await;
    wait_for("the backlog to drain", Duration::from_secs(60), || async {
        let m = fleet_metrics(&fleet);
        let backlog = select(&m, "m365_activity_backlog_blobs", &t);
        let fetched = sum(&m, "m365_activity_content_fetched_total", &t);
        (fetched > 0.0 && !backlog.is_empty() && backlog.iter().all(|s| s.value == 0.0))
            .then_some(())
    })
    .await;

    // Removed: the feed has stopped when the reload returns; no more
    // Management calls (it polled every 300 ms).
    let changes = fleet.apply(&without).await;
    assert_eq!(changes.removed, ["moving"]);
    let calls = management_requests(&sim).len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        management_requests(&sim).len(),
        calls,
        "the feed still polls"
    );

    // Back: it resumes from the checkpoint it saved when it stopped.
    fleet.apply(&with_feed).await;
    let m = wait_for("a first poll", Duration::from_secs(30), || async {
        let m = fleet_metrics(&fleet);
        (!select(&m, "m365_activity_backlog_blobs", &t).is_empty()).then_some(m)
    })
    .await;
    assert_eq!(sum(&m, "m365_activity_content_fetched_total", &t), 0.0);
    fleet.stop_all().await;
    assert_sink_exactly_once(&sink_lines(&out), &sim, &truth.ids);
}

#[tokio::test]
async fn corrupt_state_file_is_set_aside() {
    capture_logs();
    let sim = Simulator::start(SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(&state, b"{\"cursors\": {\"Audit.Exchange\": tru").unwrap();
    let exp = start(
        &sim,
        "corrupt",
        &format!(", state_file: {}", state.display()),
    )
    .await;
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    drained(&exp, "corrupt", truth.blobs).await;
    let t = ("tenant", "corrupt");
    // Started over from lookback: every record, once saved.
    counted(&exp, &[t], truth.records.values().sum::<u64>()).await;
    exp.stop().await.unwrap();
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("state.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let kept = std::fs::read(dir.path().join(&aside[0])).unwrap();
    assert_eq!(kept, b"{\"cursors\": {\"Audit.Exchange\": tru");
    one_log_line(&["ERROR", "tenant=corrupt", "state file corrupt: moved aside"]);
    assert!(state.exists(), "a fresh state was written");
}

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A truncated state file with an output: set aside, counted, and the feed
/// resumes from the id log, so the sink still holds each record once; the
/// files the feed made are the owner's only. Without an id log the feed
/// refuses to start and leaves the file where it is.
#[cfg(unix)]
#[tokio::test]
async fn a_truncated_state_file_writes_no_record_twice() {
    capture_logs();
    let sim = Simulator::start(SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (state, out) = (
        dir.path().join("state.json"),
        dir.path().join("audit.ndjson"),
    );
    let extra = format!(
        ", state_file: {}, output: {}",
        state.display(),
        out.display()
    );
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    let first = start(&sim, "truncated", &extra).await;
    drained(&first, "truncated", truth.blobs).await;
    first.stop().await.unwrap();
    assert_sink_exactly_once(&sink_lines(&out), &sim, &truth.ids);
    // Whatever the umask, nothing the feed wrote is readable by others.
    let made: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(made.len() >= 4, "{made:?}");
    for p in &made {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(p), want, "{}", p.display());
    }

    let whole = std::fs::read(&state).unwrap();
    std::fs::write(&state, &whole[..whole.len() / 2]).unwrap();
    let second = start(&sim, "truncated", &extra).await;
    let m = drained(&second, "truncated", truth.blobs).await;
    let t = ("tenant", "truncated");
    assert_eq!(
        sum(
            &m,
            "m365_activity_state_resets_total",
            &[t, ("reason", "corrupt_state")]
        ),
        1.0
    );
    assert!(
        sum(&m, "m365_activity_records_duplicate_total", &[t]) as usize >= truth.ids.len(),
        "every record listed again was known from the id log"
    );
    second.stop().await.unwrap();
    assert_sink_exactly_once(&sink_lines(&out), &sim, &truth.ids);
    one_log_line(&[
        "ERROR",
        "tenant=truncated",
        "state file corrupt: moved aside",
    ]);

    // No id log to trust: refused, the file left in place.
    std::fs::write(&state, &whole[..whole.len() / 2]).unwrap();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().contains(".ids.") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let third = start(&sim, "truncated", &extra).await;
    wait_for("the refusal is logged", Duration::from_secs(30), || async {
        (!log_lines(&["tenant=truncated", "refusing to start"]).is_empty()).then_some(())
    })
    .await;
    third.stop().await.unwrap();
    assert_eq!(std::fs::read(&state).unwrap(), &whole[..whole.len() / 2]);
    assert_sink_exactly_once(&sink_lines(&out), &sim, &truth.ids);
}

/// A sink write that fails for real (the output's name swapped for a link
/// to `/dev/full`: ENOSPC on the next append, as root too) restarts the
/// feed from its last checkpoint; once the file is back, the blobs fetched
/// after that checkpoint are fetched again and their records land in the
/// sink once, and `m365_activity_records_total` equals the sink's lines:
/// records count when the writer confirms them, not when they are applied.
#[tokio::test]
async fn sink_write_failure_then_restart_counts_each_record_once() {
    capture_logs();
    let sim = Simulator::start(SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (state, out) = (
        dir.path().join("state.json"),
        dir.path().join("audit.ndjson"),
    );
    let tenant = "sinkfull";
    let t = [("tenant", tenant)];
    let exp = start(
        &sim,
        tenant,
        &format!(
            ", state_file: {}, output: {}",
            state.display(),
            out.display()
        ),
    )
    .await;
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    drained(&exp, tenant, truth.blobs).await;
    // Drained and saved: the checkpoint has closed the sink's file, so the
    // next append opens the name again.
    wait_for(
        "the drained state saved",
        Duration::from_secs(30),
        || async { (sink_lines(&out).len() == truth.ids.len()).then_some(()) },
    )
    .await;
    more_polls(&exp, tenant, 2).await;

    let kept = dir.path().join("audit.ndjson.kept");
    std::fs::rename(&out, &kept).unwrap();
    std::os::unix::fs::symlink("/dev/full", &out).unwrap();
    let mut added = 0;
    for ct in ["Audit.Exchange", "Audit.SharePoint", "DLP.All"] {
        sim.audit().add_blob(ct, Duration::from_secs(60), 7);
        added += 7;
    }
    wait_for(
        "the sink write to fail",
        Duration::from_secs(60),
        || async {
            let failed = log_lines(&[tenant, "activity feed stopped", "No space left"]);
            (!failed.is_empty()).then_some(())
        },
    )
    .await;
    // The file is back: the restart after this one writes again.
    std::fs::remove_file(&out).unwrap();
    std::fs::rename(&kept, &out).unwrap();

    let expected = truth.ids.len() + added;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (counted, lines) = loop {
        let m = scrape(&exp).await;
        let counted = sum(&m, "m365_activity_records_total", &t) as usize;
        let lines = sink_lines(&out).len();
        let backlog = select(&m, "m365_activity_backlog_blobs", &t);
        let settled = success(&m, tenant) == 1.0
            && !backlog.is_empty()
            && backlog.iter().all(|s| s.value == 0.0)
            && lines == expected;
        if (settled && counted == lines) || std::time::Instant::now() > deadline {
            break (counted, lines);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    exp.stop().await.unwrap();
    let restarts = log_lines(&[tenant, "activity feed stopped; restarting"]).len();
    println!(
        "figures: sink_lines={lines} records_total={counted} restarts={restarts} added={added}"
    );
    assert_eq!(lines, expected, "every record in the sink");
    assert_eq!(
        counted, lines,
        "m365_activity_records_total equals the sink's lines (after {restarts} restart(s))"
    );
    let all = sim.audit().truth(&all_types(), 0, now_ms());
    assert_sink_exactly_once(&sink_lines(&out), &sim, &all.ids);
}
