//! Configuration reload: tenants added, removed, changed and untouched, a
//! broken file refused; through `POST /-/reload` in-process and SIGHUP to
//! the real binary.

mod support;

use support::procs;

use m365_exporter::cli::app::{Running, WebOptions};
use m365_exporter::config::ConfigSource;
use m365_exporter::simulator::{SimOptions, Simulator};
use procs::{free_port, ChildGuard};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{fast_retries, get, parse, select, value, wait_for, Sample, SimTenant};

/// One tenant entry; `interval` differs to make a tenant "changed".
fn tenant(name: &str, url: &str, interval: &str) -> String {
    SimTenant::new(name, url)
        .tenant_id(&format!("{name}.sim.test"))
        .with(&format!("service_health: {{interval: {interval}}}"))
        .to_string()
}

fn write_config(path: &Path, url: &str, tenants: &[(&str, &str)]) {
    let mut y = String::from("defaults:\n  messages: {enabled: false}\ntenants:\n");
    for (n, i) in tenants {
        y.push_str(&tenant(n, url, i));
    }
    std::fs::write(path, y).unwrap();
}

async fn scrape(url: &str) -> Vec<Sample> {
    parse(&get(&format!("{url}/metrics")).await.2)
}

fn tenants_in(m: &[Sample]) -> BTreeSet<String> {
    m.iter()
        .filter_map(|s| s.labels.get("tenant").cloned())
        .collect()
}

/// Every series of `tenant`, as (name+labels, value).
fn series_of(m: &[Sample], tenant: &str) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = m
        .iter()
        .filter(|s| s.labels.get("tenant").map(String::as_str) == Some(tenant))
        .map(|s| (format!("{}{:?}", s.name, s.labels), s.value))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

async fn all_succeeded(url: &str, names: &[&str]) -> Vec<Sample> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    wait_for("every tenant refreshed", Duration::from_secs(30), || {
        let names = names.clone();
        async move {
            let m = scrape(url).await;
            names
                .iter()
                .all(|n| {
                    select(
                        &m,
                        "m365_collector_success",
                        &[("tenant", n), ("collector", "service_health")],
                    )
                    .first()
                    .is_some_and(|s| s.value == 1.0)
                })
                .then_some(m)
        }
    })
    .await
}

async fn any_tenant_simulator() -> Simulator {
    Simulator::start(SimOptions {
        any_tenant: true,
        ..SimOptions::default()
    })
    .await
    .unwrap()
}

async fn post_reload(url: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{url}/-/reload"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn reload_adds_removes_changes_and_refuses_a_broken_file() {
    let sim = any_tenant_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    let u = sim.url();
    // Long intervals: after the first refresh nothing moves by itself, so
    // "untouched" can be checked value for value.
    write_config(
        &path,
        &u,
        &[("kept", "1h"), ("changed", "1h"), ("removed", "1h")],
    );
    let source = ConfigSource::File(path.clone());
    let config = source.load(None).unwrap();
    let mut opts = fast_retries();
    opts.first_refresh_spread = Duration::from_millis(300);
    let web = WebOptions {
        enable_lifecycle: true,
        ..WebOptions::default()
    };
    let exp = Running::start_with(&config, source, None, &web, &opts)
        .await
        .unwrap();
    let url = exp.url();
    let m = all_succeeded(&url, &["kept", "changed", "removed"]).await;
    assert_eq!(value(&m, "m365_config_last_reload_successful", &[]), 1.0);
    let loaded_at = value(&m, "m365_config_last_reload_success_timestamp_seconds", &[]);
    let kept_before = series_of(&m, "kept");
    assert!(kept_before.len() > 10, "{kept_before:?}");
    let changed_success = value(
        &m,
        "m365_collector_last_success_timestamp_seconds",
        &[("tenant", "changed")],
    );

    // Add one, remove one, change one, leave one.
    // The clock past both timestamps: the reload's and the restarted
    // refresh's can only be later.
    let before = loaded_at.max(changed_success);
    wait_for(
        "the clock past the load",
        Duration::from_secs(60),
        || async { (m365_exporter::timefmt::now_unix() > before + 1.0).then_some(()) },
    )
    .await;
    write_config(
        &path,
        &u,
        &[("kept", "1h"), ("changed", "2h"), ("added", "1h")],
    );
    let (status, body) = post_reload(&url).await;
    assert_eq!(status, 200, "{body}");
    let m = all_succeeded(&url, &["kept", "changed", "added"]).await;
    assert_eq!(
        tenants_in(&m),
        ["added", "changed", "kept"].map(String::from).into(),
        "removed tenant's series are gone"
    );
    assert_eq!(series_of(&m, "kept"), kept_before, "kept tenant untouched");
    assert!(
        value(
            &m,
            "m365_collector_last_success_timestamp_seconds",
            &[("tenant", "changed")]
        ) > changed_success,
        "changed tenant restarted"
    );
    assert_eq!(value(&m, "m365_config_last_reload_successful", &[]), 1.0);
    let reloaded_at = value(&m, "m365_config_last_reload_success_timestamp_seconds", &[]);
    assert!(reloaded_at > loaded_at);
    let (_, _, probe) = get(&format!("{url}/probe?target=removed")).await;
    assert!(probe.contains("unknown target"), "{probe}");

    // A broken file: refused, nothing changes but the reload gauge.
    let before = scrape(&url).await;
    std::fs::write(&path, "tenants:\n  - name: Bad Name\n").unwrap();
    let (status, body) = post_reload(&url).await;
    assert_eq!(status, 500);
    // The reason goes to the log only: it may quote the files.
    assert!(
        !body.contains("config.yml") && body.contains("log"),
        "{body}"
    );
    let m = scrape(&url).await;
    assert_eq!(value(&m, "m365_config_last_reload_successful", &[]), 0.0);
    assert_eq!(
        value(&m, "m365_config_last_reload_success_timestamp_seconds", &[]),
        reloaded_at
    );
    for t in ["kept", "changed", "added"] {
        assert_eq!(series_of(&m, t), series_of(&before, t), "{t} untouched");
    }
    exp.stop().await.unwrap();
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_running_binary() {
    let sim = any_tenant_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    write_config(&path, &sim.url(), &[("first", "1h")]);
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_m365-exporter"));
    cmd.arg("--config.file")
        .arg(&path)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let child = ChildGuard::spawn("exporter", cmd, dir.path());
    let url = format!("http://127.0.0.1:{port}");
    wait_for("exporter up", Duration::from_secs(30), || async {
        reqwest::get(format!("{url}/-/healthy"))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    all_succeeded(&url, &["first"]).await;

    write_config(&path, &sim.url(), &[("first", "1h"), ("second", "1h")]);
    let hup = Command::new("kill")
        .args(["-HUP", &child.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let m = all_succeeded(&url, &["first", "second"]).await;
    assert_eq!(value(&m, "m365_config_last_reload_successful", &[]), 1.0);

    // A broken file on SIGHUP: one log line, the process keeps serving.
    std::fs::write(&path, "tenants: [").unwrap();
    Command::new("kill")
        .args(["-HUP", &child.pid().to_string()])
        .status()
        .unwrap();
    wait_for("reload refused", Duration::from_secs(30), || async {
        let m = scrape(&url).await;
        (value(&m, "m365_config_last_reload_successful", &[]) == 0.0).then_some(())
    })
    .await;
    let refusals: Vec<String> = child
        .log_tail(200)
        .lines()
        .filter(|l| l.contains("reload"))
        .map(str::to_string)
        .collect();
    assert_eq!(refusals.len(), 2, "one line per reload: {refusals:?}");
    assert!(refusals[1].contains("refused"), "{refusals:?}");
    drop(child);
    sim.stop().await;
}
