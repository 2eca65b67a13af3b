//! Restarts with a state file and an output sink: every record lands in the
//! sink exactly once, as Microsoft sent it, even when the process dies with
//! blobs in flight and sink writes newer than the saved state; a reload
//! that removes a tenant stops its feed, and re-adding it resumes from the
//! checkpoint; a corrupt state file is set aside and the feed starts over
//! from `lookback`.

mod support;

use m365_exporter::collect::fleet::Fleet;
use m365_exporter::metrics::Live;
use m365_exporter::simulator::{Faults, SimOptions, Simulator};
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
    let sim = Simulator::start(SimOptions {
        faults: Faults {
            blob_delay: Duration::from_millis(60),
            blob_af429_every: 7,
            ..Faults::default()
        },
        ..SimOptions::default()
    })
    .await
    .unwrap();
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
    let m = drained(&exp, "corrupt", truth.blobs).await;
    let t = ("tenant", "corrupt");
    assert_eq!(
        sum(&m, "m365_activity_records_total", &[t]) as u64,
        truth.records.values().sum::<u64>(),
        "started over from lookback"
    );
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
    one_log_line(&["ERROR", "tenant=corrupt", "state file unusable"]);
    assert!(state.exists(), "a fresh state was written");
}
