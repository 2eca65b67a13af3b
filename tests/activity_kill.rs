//! A real `kill -9` of the exporter process while audit blobs are in flight,
//! then a restart on the same state file and sink: the sink ends with every
//! record exactly once, byte-for-byte as the (in-process) simulator served it.

mod activity_support;
mod support;

use activity_support::{all_types, now_ms, PUBLISHER};
use m365_exporter::simulator::{
    Faults, SimOptions, Simulator, SIM_CLIENT_ID, SIM_CLIENT_SECRET, SIM_TENANT_ID,
};
use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::wait_for;

/// Kills the child when the test ends, passed or not.
struct ChildGuard(Child);
impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(config: &Path) -> ChildGuard {
    ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_m365-exporter"))
            .arg("--config.file")
            .arg(config)
            .arg("--web.listen-address=127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the exporter"),
    )
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
    let sim = Simulator::start(SimOptions {
        faults: Faults {
            // Slow blobs keep downloads in flight when the kill lands.
            blob_delay: Duration::from_millis(80),
            ..Faults::default()
        },
        ..SimOptions::default()
    })
    .await
    .unwrap();
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
            r#"tenants:
  - name: killed
    tenant_id: {SIM_TENANT_ID}
    client_id: {SIM_CLIENT_ID}
    client_secret: {SIM_CLIENT_SECRET}
    endpoints: {{login: "{url}", graph: "{url}", management: "{url}"}}
    service_health: {{enabled: false}}
    messages: {{enabled: false}}
    activity: {{enabled: true, interval: 1s, lookback: 2d, publisher_id: {PUBLISHER}, concurrency: 2, state_file: "{}", output: "{}"}}
"#,
            state.display(),
            out.display()
        ),
    )
    .unwrap();

    let first = spawn(&cfg);
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
    drop(first); // SIGKILL, then reap
    assert!(
        at_kill < wanted,
        "killed before the end ({at_kill}/{wanted})"
    );

    let second = spawn(&cfg);
    wait_for(
        "every record in the sink",
        Duration::from_secs(90),
        || async { (lines(&out).len() >= wanted).then_some(()) },
    )
    .await;
    // Give a double write the chance to show up before judging.
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(second);

    let served: HashSet<String> = sim
        .audit()
        .blobs
        .iter()
        .filter(|b| !b.expired)
        .flat_map(|b| {
            m365_exporter::activity::records::parse_blob(b.body.as_bytes())
                .unwrap()
                .into_iter()
                .map(|r| r.raw.to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut ids = BTreeSet::new();
    for line in lines(&out) {
        assert!(served.contains(&line), "byte-for-byte as served: {line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let id = v["Id"].as_str().unwrap().to_string();
        assert!(ids.insert(id), "written twice: {line}");
    }
    assert_eq!(ids, truth.ids, "every record exactly once");
    println!("figures: records={wanted} sink_lines_at_kill={at_kill}");
}
