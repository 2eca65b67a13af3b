//! The audit feed as a pipeline, end to end against the simulator: one
//! content type that cannot flow does not stop the others; the blob lag
//! keeps growing while the Management API hangs; a blob that never parses
//! is quarantined and the rest drains; the workload label stays bounded;
//! feed files are exclusive to one tenant and one exporter.

mod support;

use support::procs;

use m365_exporter::activity::workloads::{KNOWN, MAX_OTHER};
use m365_exporter::simulator::{AuditOptions, Faults, SimOptions, Simulator};
use procs::ChildGuard;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;
use support::activity::*;
use support::{select, sum, value, wait_for};

#[tokio::test]
async fn dlp_without_permission_does_not_stop_exchange() {
    let sim = sim_with(
        AuditOptions {
            forbidden_types: vec!["DLP.All".into()],
            ..AuditOptions::default()
        },
        Faults::default(),
    )
    .await;
    let exp = start(&sim, "dlp", "").await;
    let ex = [("tenant", "dlp"), ("content_type", "Audit.Exchange")];
    let dlp = [("tenant", "dlp"), ("content_type", "DLP.All")];
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    let m = wait_for("Exchange drained", Duration::from_secs(60), || async {
        let m = scrape(&exp).await;
        let done = sum(&m, "m365_activity_content_fetched_total", &ex) > 0.0
            && select(&m, "m365_activity_backlog_blobs", &ex)
                .first()
                .is_some_and(|s| s.value == 0.0);
        done.then_some(m)
    })
    .await;
    assert_eq!(
        sum(&m, "m365_activity_records_total", &ex) as u64,
        truth.records_of("Audit.Exchange"),
        "Exchange's counts equal the simulator's truth"
    );
    assert_eq!(success(&m, "dlp"), 0.0, "one type cannot list");
    assert!(select(&m, "m365_activity_listed_until_timestamp_seconds", &dlp).is_empty());
    let dlp_error = value(&m, "m365_activity_last_error_timestamp_seconds", &dlp);
    assert!(dlp_error > 0.0);
    assert!(select(&m, "m365_activity_last_error_timestamp_seconds", &ex).is_empty());
    let first = value(&m, "m365_activity_listed_until_timestamp_seconds", &ex);
    // Exchange's cursor keeps advancing, poll after poll.
    wait_for(
        "listed_until to advance",
        Duration::from_secs(30),
        || async {
            let m = scrape(&exp).await;
            (value(&m, "m365_activity_listed_until_timestamp_seconds", &ex) > first).then_some(())
        },
    )
    .await;
    exp.stop().await.unwrap();
}

#[tokio::test]
async fn lag_grows_while_the_management_api_hangs() {
    let slow = Faults {
        blob_delay: Duration::from_millis(300),
        ..Faults::default()
    };
    let sim = sim_with(AuditOptions::default(), slow.clone()).await;
    let exp = start(&sim, "hang", ", concurrency: 1").await;
    let t = [("tenant", "hang")];
    wait_for("a backlog", Duration::from_secs(30), || async {
        let m = scrape(&exp).await;
        (sum(&m, "m365_activity_backlog_blobs", &t) > 3.0
            && sum(&m, "m365_activity_content_fetched_total", &t) > 0.0)
            .then_some(())
    })
    .await;
    sim.set_faults(Faults {
        management_hang: true,
        ..slow
    });
    // With concurrency 1 a download that meets the hang means the one
    // before it is done: nothing moves from here on.
    wait_for(
        "a download held by the hang",
        Duration::from_secs(60),
        || async { (sim.audit().blob_gets_held > 0).then_some(()) },
    )
    .await;
    let lag = |m: &[support::Sample]| {
        select(m, "m365_activity_blob_lag_seconds", &t)
            .iter()
            .map(|s| s.value)
            .fold(0.0, f64::max)
    };
    let m1 = scrape(&exp).await;
    // The lag is an age: it grows while nothing is fetched (by however
    // much the wait took; how fast is not the point).
    let m2 = wait_for("the lag grown by 2 s", Duration::from_secs(60), || async {
        let m = scrape(&exp).await;
        (lag(&m) >= lag(&m1) + 2.0).then_some(m)
    })
    .await;
    let fetched = |m: &[support::Sample]| sum(m, "m365_activity_content_fetched_total", &t);
    assert_eq!(fetched(&m1), fetched(&m2), "nothing fetched while hung");
    let oldest = |m: &[support::Sample]| {
        select(
            m,
            "m365_activity_oldest_pending_content_created_timestamp_seconds",
            &t,
        )
        .iter()
        .map(|s| s.value)
        .fold(f64::MAX, f64::min)
    };
    assert_eq!(oldest(&m1), oldest(&m2), "nothing moved while hung");
    sim.set_faults(Faults::default());
    exp.stop().await.unwrap();
}

#[tokio::test]
async fn a_blob_that_is_not_json_is_quarantined_and_the_rest_drains() {
    capture_logs();
    let sim = sim_with(
        AuditOptions {
            poison_blobs: 1,
            ..AuditOptions::default()
        },
        Faults::default(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let exp = start(
        &sim,
        "poison",
        &format!(", state_file: {}", state.display()),
    )
    .await;
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    assert_eq!(truth.poison_blobs, 1);
    let t = [("tenant", "poison")];
    let m = wait_for("the feed to drain", Duration::from_secs(60), || async {
        let m = scrape(&exp).await;
        let done = sum(&m, "m365_activity_content_fetched_total", &t)
            + sum(&m, "m365_activity_content_expired_total", &t)
            + sum(&m, "m365_activity_content_quarantined_total", &t);
        let lag = select(&m, "m365_activity_blob_lag_seconds", &t);
        (done as usize == truth.blobs && !lag.is_empty() && lag.iter().all(|s| s.value == 0.0))
            .then_some(m)
    })
    .await;
    let sp = [("tenant", "poison"), ("content_type", "Audit.SharePoint")];
    assert_eq!(
        value(&m, "m365_activity_content_quarantined_total", &sp),
        1.0
    );
    assert_eq!(sum(&m, "m365_activity_backlog_blobs", &t), 0.0);
    // Every other record counted (once saved).
    counted(&exp, &t, truth.records.values().sum::<u64>()).await;
    exp.stop().await.unwrap();
    let qdir = dir.path().join("state.json.quarantine");
    let kept: Vec<_> = std::fs::read_dir(&qdir).unwrap().flatten().collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let poison = sim.audit().blobs.iter().find(|b| b.poison).unwrap().clone();
    assert_eq!(
        std::fs::read_to_string(kept[0].path()).unwrap(),
        poison.body,
        "kept raw"
    );
    one_log_line(&["WARN", "tenant=poison", "audit blob quarantined"]);
}

#[tokio::test]
async fn ten_thousand_workloads_stay_a_bounded_label_set() {
    capture_logs();
    let sim = sim_with(
        AuditOptions {
            distinct_workloads: true,
            blobs_per_type: 20,
            records_min: 100,
            records_max: 100,
            page_size: 100,
            duplicates: false,
            expired_blobs: 0,
            ..AuditOptions::default()
        },
        Faults::default(),
    )
    .await;
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    let distinct: BTreeSet<&String> = truth.records.keys().map(|(_, w)| w).collect();
    assert!(distinct.len() >= 10_000, "{}", distinct.len());
    let exp = start(&sim, "wl", ", concurrency: 8").await;
    let m = drained(&exp, "wl", truth.blobs).await;
    let t = [("tenant", "wl")];
    assert_eq!(
        sum(&m, "m365_activity_records_total", &t) as u64,
        truth.records.values().sum::<u64>(),
        "every record counted, under a capped label"
    );
    let series = select(&m, "m365_activity_records_total", &t);
    let labels: BTreeSet<&str> = series
        .iter()
        .filter_map(|s| s.labels.get("workload").map(String::as_str))
        .collect();
    assert!(
        labels.len() <= KNOWN.len() + MAX_OTHER + 1,
        "{} workload values",
        labels.len()
    );
    assert!(labels.contains("other"));
    assert!(
        series.len() <= 5 * (MAX_OTHER + 1),
        "{} series",
        series.len()
    );
    one_log_line(&["WARN", "tenant=wl", "label cap"]);
    exp.stop().await.unwrap();
}

fn two_tenant_config(dir: &std::path::Path, url: &str, state_b: &str) -> std::path::PathBuf {
    let cfg = dir.join("config.yml");
    let state = dir.join("state.json");
    let tenant =
        |name: &str, state: &str| tenant_yaml(name, url, &format!("state_file: \"{state}\""));
    std::fs::write(
        &cfg,
        format!(
            "tenants:\n{}{}",
            tenant("alpha", &state.display().to_string()),
            tenant("beta", state_b)
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn two_tenants_with_one_state_file_exit_2_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let same = dir.path().join("state.json").display().to_string();
    let cfg = two_tenant_config(dir.path(), "http://127.0.0.1:9", &same);
    for args in [
        vec!["check-config"],
        vec!["--web.listen-address=127.0.0.1:0"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_m365-exporter"))
            .args(&args)
            .arg("--config.file")
            .arg(&cfg)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("tenants[1].activity.state_file")
                && err.contains("\"alpha\"")
                && err.contains("\"beta\""),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_exporter_on_the_same_state_refuses_to_start() {
    let sim = Simulator::start(SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("beta.json").display().to_string();
    let cfg = two_tenant_config(dir.path(), &sim.url(), &other);
    let spawn = |name: &str, port: u16| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_m365-exporter"));
        cmd.arg("--config.file")
            .arg(&cfg)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        ChildGuard::spawn(name, cmd, dir.path())
    };
    let port = procs::free_port();
    let mut first = spawn("first", port);
    let url = format!("http://127.0.0.1:{port}/-/ready");
    let status =
        |url: String| async move { reqwest::get(&url).await.ok().map(|r| r.status().as_u16()) };
    wait_for(
        "the first exporter ready",
        Duration::from_secs(60),
        || async { (status(url.clone()).await == Some(200)).then_some(()) },
    )
    .await;
    let mut second = spawn("second", procs::free_port());
    let failed = wait_for("the second to exit", Duration::from_secs(30), || {
        let r = second.check_running();
        async move { r.err() }
    })
    .await;
    assert!(
        failed.contains("in use by another m365-exporter") && failed.contains("state.json"),
        "{failed}"
    );
    first.check_running().unwrap();
    assert_eq!(status(url).await, Some(200), "the first keeps serving");
}
