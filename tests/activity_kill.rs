//! A real `kill -9` of the exporter process while audit blobs are in flight,
//! then a restart on the same state file and sink: the sink ends with every
//! record exactly once, byte-for-byte as the (in-process) simulator served it.

mod support;

use support::procs;

use m365_exporter::simulator::{AuditOptions, Faults};
use procs::ChildGuard;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::activity::{
    all_types, assert_sink_exactly_once, now_ms, sim_with, tenant_yaml, PUBLISHER,
};
use support::wait_for;

fn spawn(config: &Path, dir: &Path, name: &str, port: u16) -> ChildGuard {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_m365-exporter"));
    cmd.arg("--config.file")
        .arg(config)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    ChildGuard::spawn(name, cmd, dir)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_download_then_restart_writes_every_record_once() {
    let sim = sim_with(
        AuditOptions::default(),
        Faults {
            // Slow blobs keep downloads in flight when the kill lands.
            blob_delay: Duration::from_millis(80),
            ..Faults::default()
        },
    )
    .await;
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    let dir = tempfile::tempdir().unwrap();
    let (state, out, cfg) = (
        dir.path().join("state.json"),
        dir.path().join("audit.ndjson"),
        dir.path().join("config.yml"),
    );
    let url = sim.url();
    std::fs::write(
        &cfg,
        format!(
            "tenants:\n{}",
            tenant_yaml(
                "killed",
                &url,
                &format!(
                    "interval: 1s, lookback: 2d, publisher_id: {PUBLISHER}, concurrency: 2, state_file: \"{}\", output: \"{}\"",
                    state.display(),
                    out.display()
                )
            )
        ),
    )
    .unwrap();

    let first = spawn(&cfg, dir.path(), "first", procs::free_port());
    let wanted = truth.ids.len();
    let at_kill = wait_for(
        "a third of the records in the sink",
        Duration::from_secs(60),
        || async {
            let n = lines(&out).len();
            (n >= wanted / 3).then_some(n)
        },
    )
    .await;
    first.sigkill();
    assert!(
        at_kill < wanted,
        "killed before the end ({at_kill}/{wanted})"
    );

    let port = procs::free_port();
    let restarted = (now_ms() / 1000) as f64;
    let second = spawn(&cfg, dir.path(), "second", port);
    wait_for(
        "every record in the sink",
        Duration::from_secs(90),
        || async { (lines(&out).len() >= wanted).then_some(()) },
    )
    .await;
    // Judge only once the second run has nothing left that could write
    // twice: listed past its start, nothing waiting to be fetched.
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    wait_for(
        "the second run caught up",
        Duration::from_secs(90),
        || async {
            let m = support::parse(&support::get(&metrics).await.2);
            let t = [("tenant", "killed")];
            let listed = support::select(&m, "m365_activity_listed_until_timestamp_seconds", &t);
            (listed.len() == all_types().len()
                && listed.iter().all(|s| s.value >= restarted)
                && support::sum(&m, "m365_activity_backlog_blobs", &t) == 0.0)
                .then_some(())
        },
    )
    .await;
    drop(second);

    assert_sink_exactly_once(&lines(&out), &sim, &truth.ids);
    println!("figures: records={wanted} sink_lines_at_kill={at_kill}");
}
