//! SIGTERM to the real binary while audit feeds wait on Microsoft: four
//! tenants each waiting out a long `Retry-After`; a content listing that
//! never answers; a `subscriptions/start` that never answers; the managed
//! identity endpoint failing, so the token's retries run. Every feed ends
//! what it waits for, writes its last checkpoint and stops on its own (none
//! is aborted after the grace period, which is shorter than the request
//! timeout), the process exits 0, and the state file covers the sink.

mod support;

use m365_exporter::simulator::{AuditOptions, Faults, SimOptions, Simulator};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::activity::{management_requests, tenant_yaml, PUBLISHER};
use support::procs::ChildGuard;
use support::{wait_for, SimTenant};

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

/// One tenant's audit feed (state file and sink in `dir`) run by the binary
/// against `sim`; `tenant` shapes its `tenants:` item, `env` is added.
fn one_feed(
    dir: &Path,
    sim: &Simulator,
    tenant: impl FnOnce(SimTenant) -> SimTenant,
    env: &[(&str, String)],
) -> ChildGuard {
    let keys = format!(
        "activity: {{enabled: true, interval: 1s, lookback: 2d, start_subscriptions: true, publisher_id: {PUBLISHER}, state_file: \"{}\", output: \"{}\"}}",
        dir.join("state.json").display(),
        dir.join("audit.ndjson").display()
    );
    let t = tenant(
        SimTenant::new("held", &sim.url())
            .management(&sim.url())
            .with("service_health: {enabled: false}")
            .with("messages: {enabled: false}")
            .with(&keys),
    );
    let cfg = dir.join("config.yml");
    std::fs::write(&cfg, format!("tenants:\n{t}")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_m365-exporter"));
    cmd.arg("--config.file")
        .arg(&cfg)
        .arg("--web.listen-address=127.0.0.1:0")
        .env_remove("IDENTITY_ENDPOINT")
        .env_remove("IDENTITY_HEADER")
        .env_remove("AZURE_POD_IDENTITY_AUTHORITY_HOST")
        .envs(env.iter().cloned());
    ChildGuard::spawn("exporter", cmd, dir)
}

/// SIGTERM; the process exits 0 on its own (a generous bound: the calls it
/// waits on never end, and the request timeout is longer than the feed's
/// stop grace), the feed stopped with its last checkpoint instead of being
/// aborted, and that checkpoint covers the sink, which holds no record
/// twice. Returns the lines in the sink.
async fn stops_with_its_checkpoint(mut exporter: ChildGuard, dir: &Path) -> usize {
    exporter.sigterm();
    let status = tokio::task::block_in_place(|| exporter.wait_exit(Duration::from_secs(60)));
    let log = exporter.log_tail(400);
    assert_eq!(status.code(), Some(0), "exit status {status}: {log}");
    assert!(!log.contains("aborted"), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("tenant=held") && l.contains("stopped with its last checkpoint")),
        "{log}"
    );
    let sink = std::fs::read_to_string(dir.join("audit.ndjson")).unwrap_or_default();
    let mark = match std::fs::read(dir.join("state.json")) {
        Ok(bytes) => {
            let saved: serde_json::Value =
                serde_json::from_slice(&bytes).expect("the state file is JSON");
            saved["state"]["sink"]["len"].as_u64().unwrap_or(0)
        }
        Err(_) => 0,
    };
    assert_eq!(
        mark,
        sink.len() as u64,
        "the last checkpoint covers the sink"
    );
    let mut ids = std::collections::HashSet::new();
    for l in sink.lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("a whole NDJSON line");
        let id = v["Id"].as_str().expect("an Id").to_string();
        assert!(ids.insert(id), "written twice: {l}");
    }
    ids.len()
}

/// Calls the simulator holds unanswered so far.
fn held(sim: &Simulator) -> u64 {
    sim.audit().calls_held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_a_content_listing_that_never_answers() {
    let sim = Simulator::start(SimOptions {
        faults: Faults {
            // Slow blobs: the feed has records to save when the listing hangs.
            blob_delay: Duration::from_millis(50),
            ..Faults::default()
        },
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let exporter = one_feed(dir.path(), &sim, |t| t, &[]);
    let out = dir.path().join("audit.ndjson");
    wait_for("records in the sink", Duration::from_secs(90), || async {
        let lines = std::fs::read_to_string(&out).ok()?.lines().count();
        (lines > 0).then_some(())
    })
    .await;
    sim.set_faults(Faults {
        listing_hang: true,
        ..Faults::default()
    });
    wait_for("a listing hanging", Duration::from_secs(90), || async {
        (held(&sim) > 0).then_some(())
    })
    .await;
    let records = stops_with_its_checkpoint(exporter, dir.path()).await;
    assert!(records > 0);
    sim.set_faults(Faults::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_a_subscription_start_that_never_answers() {
    let sim = Simulator::start(SimOptions {
        faults: Faults {
            start_hang: true,
            ..Faults::default()
        },
        // Not subscribed yet: the feed's first poll starts subscriptions.
        audit: AuditOptions {
            started: false,
            ..AuditOptions::default()
        },
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let exporter = one_feed(dir.path(), &sim, |t| t, &[]);
    wait_for(
        "a subscription start hanging",
        Duration::from_secs(90),
        || async { (held(&sim) > 0).then_some(()) },
    )
    .await;
    stops_with_its_checkpoint(exporter, dir.path()).await;
    sim.set_faults(Faults::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_retries_of_a_failing_managed_identity_endpoint() {
    let sim = Simulator::start(SimOptions {
        // IMDS answers 404 (then 410) for the whole test: its retries run
        // for tens of seconds per token, longer than the stop grace.
        imds_updating: Duration::from_secs(3_600),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let exporter = one_feed(
        dir.path(),
        &sim,
        |t| t.credential("managed_identity: {}"),
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", sim.url())],
    );
    let imds = || {
        sim.requests()
            .iter()
            .filter(|r| r.path == "/metadata/identity/oauth2/token")
            .count()
    };
    wait_for(
        "the token request retried",
        Duration::from_secs(90),
        || async { (imds() >= 2).then_some(()) },
    )
    .await;
    stops_with_its_checkpoint(exporter, dir.path()).await;
}
