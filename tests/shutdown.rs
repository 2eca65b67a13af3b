//! SIGTERM to the real binary with four tenants' audit feeds each waiting
//! out a long `Retry-After`: every feed wakes, writes its last checkpoint and
//! stops on its own (none is aborted after the grace period), all at once,
//! and the process exits cleanly.

mod support;

use m365_exporter::simulator::{Faults, SimOptions, Simulator};
use std::process::Command;
use std::time::Duration;
use support::activity::{management_requests, tenant_yaml, PUBLISHER};
use support::procs::ChildGuard;
use support::wait_for;

const TENANTS: [&str; 4] = ["north", "south", "east", "west"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_every_feed_sleeping_in_retry_after_with_its_checkpoint() {
    let sim = Simulator::start(SimOptions {
        faults: Faults {
            // Every Microsoft call is throttled for longer than any stop
            // grace: a feed that sleeps it out is aborted instead.
            throttle_next: u32::MAX,
            retry_after_secs: 100,
            ..Faults::default()
        },
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = sim.url();
    let yaml: String = TENANTS
        .iter()
        .map(|t| {
            tenant_yaml(
                t,
                &url,
                &format!(
                    "interval: 1s, lookback: 2d, publisher_id: {PUBLISHER}, state_file: \"{}\", output: \"{}\"",
                    dir.path().join(format!("{t}.state.json")).display(),
                    dir.path().join(format!("{t}.ndjson")).display()
                ),
            )
        })
        .collect();
    let cfg = dir.path().join("config.yml");
    std::fs::write(&cfg, format!("tenants:\n{yaml}")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_m365-exporter"));
    cmd.arg("--config.file")
        .arg(&cfg)
        .arg("--web.listen-address=127.0.0.1:0");
    let mut exporter = ChildGuard::spawn("exporter", cmd, dir.path());

    // Four throttled calls: each feed has been answered 429 once and is
    // asleep (none calls again for 100 s).
    wait_for("every feed throttled", Duration::from_secs(60), || async {
        let throttled = management_requests(&sim)
            .iter()
            .filter(|r| r.status == 429)
            .count();
        (throttled >= TENANTS.len()).then_some(())
    })
    .await;
    let term = Command::new("kill")
        .args(["-TERM", &exporter.pid().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let log = wait_for("the exporter exits", Duration::from_secs(60), || {
        let done = exporter.check_running().err();
        async move { done }
    })
    .await;
    assert!(log.contains("exited early (exit status: 0)"), "{log}");
    let all = exporter.log_tail(400);
    assert!(!all.contains("aborted"), "{all}");
    for t in TENANTS {
        assert!(
            all.lines().any(|l| l.contains(&format!("tenant={t}"))
                && l.contains("stopped with its last checkpoint")),
            "{t}: {all}"
        );
    }
}
