//! The audit feed's checkpoint thread dying, on the real binary: the feed
//! notices, counts it in `m365_collector_panics_total{collector="activity"}`,
//! shows the `activity` collector failed with the reason, and is restarted
//! by its supervisor (whose new thread dies again, counted again), while
//! `/metrics` keeps serving.
//!
//! No write kills the thread for real (it handles every I/O error, and
//! writing without panicking is its point), so a debug build's switch makes
//! it panic at its first save, as a bug would; release builds have no such
//! switch, and this test is compiled only where the binary has it.
#![cfg(debug_assertions)]

mod support;

use m365_exporter::activity::checkpoint::DIE_AT_SAVE_ENV;
use m365_exporter::simulator::{SimOptions, Simulator};
use std::process::Command;
use std::time::Duration;
use support::activity::{tenant_yaml, PUBLISHER};
use support::procs::{free_port, ChildGuard};
use support::{parse, select, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_checkpoint_thread_is_counted_the_feed_failed_and_restarted() {
    let sim = Simulator::start(SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let yaml = tenant_yaml(
        "doomed",
        &sim.url(),
        &format!(
            "interval: 1s, lookback: 2d, publisher_id: {PUBLISHER}, state_file: \"{}\", output: \"{}\"",
            dir.path().join("state.json").display(),
            dir.path().join("audit.ndjson").display()
        ),
    );
    let cfg = dir.path().join("config.yml");
    std::fs::write(&cfg, format!("tenants:\n{yaml}")).unwrap();
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_m365-exporter"));
    cmd.arg("--config.file")
        .arg(&cfg)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .env(DIE_AT_SAVE_ENV, "1");
    let mut exporter = ChildGuard::spawn("exporter", cmd, dir.path());
    let url = format!("http://127.0.0.1:{port}/metrics");
    let activity = [("tenant", "doomed"), ("collector", "activity")];

    // Two deaths: the first, and the one of the thread its restart started.
    let deaths = wait_for(
        "the checkpoint thread's deaths counted, the collector failed",
        Duration::from_secs(120),
        || async {
            let body = reqwest::get(&url).await.ok()?.text().await.ok()?;
            let m = parse(&body);
            let panics = select(&m, "m365_collector_panics_total", &activity);
            let success = select(&m, "m365_collector_success", &activity);
            let deaths = panics.first()?.value;
            (deaths >= 2.0 && success.first()?.value == 0.0).then_some(deaths)
        },
    )
    .await;
    exporter
        .check_running()
        .expect("the exporter keeps running");
    let metrics = reqwest::get(&url).await.unwrap();
    assert_eq!(metrics.status(), 200, "/metrics keeps serving");
    let log = exporter.log_text();
    assert!(
        log.contains("the checkpoint thread is not running"),
        "the reason is logged: {log}"
    );
    assert!(log.contains("restarting from its last checkpoint"), "{log}");
    // Nothing was saved by a thread that died at its first save: no state
    // file claims a sink the restarts would then cut back wrongly.
    assert!(!dir.path().join("state.json").exists());
    println!("figures: deaths counted={deaths}");
}
