//! Helpers shared by the `activity_*` end-to-end tests: a simulator plus an
//! in-process exporter with the activity collector only, fast retries, the
//! simulator's Management API request log, and captured log lines.
#![allow(dead_code)]

pub use super::scrape;
use super::{sum, wait_for, Sample, SimTenant};
use m365_exporter::api::RetryPolicy;
use m365_exporter::cli::app::{Running, WebOptions};
use m365_exporter::collect::RuntimeOptions;
use m365_exporter::config::{Config, CONTENT_TYPES};
use m365_exporter::simulator::{Recorded, Simulator};
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// A publisher id distinct from the tenant id, so tests see which one is sent.
pub const PUBLISHER: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";

/// One tenant, activity only; `extra` adds `activity` keys (YAML flow items;
/// an `interval` there replaces the default 300 ms).
pub fn config(url: &str, tenant: &str, extra: &str) -> Config {
    let interval = if extra.contains("interval:") {
        ""
    } else {
        "interval: 300ms, "
    };
    let yaml = format!(
        "tenants:\n{}",
        tenant_yaml(
            tenant,
            url,
            &format!("{interval}lookback: 2d, publisher_id: {PUBLISHER}, requests_per_minute: 2000{extra}")
        )
    );
    Config::parse(&yaml, "test").unwrap()
}

/// One `tenants:` item against the simulator at `url`, activity only, with
/// `activity` keys `keys` (YAML flow items) besides `enabled: true`.
pub fn tenant_yaml(name: &str, url: &str, keys: &str) -> String {
    SimTenant::new(name, url)
        .management(url)
        .with("service_health: {enabled: false}")
        .with("messages: {enabled: false}")
        .with(&format!("activity: {{enabled: true, {keys}}}"))
        .to_string()
}

/// Retries that keep tests fast; `Retry-After: 1` is cut to 50 ms.
pub fn fast() -> RuntimeOptions {
    RuntimeOptions {
        retry: RetryPolicy {
            max_attempts: 6,
            base: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            max_retry_after: Duration::from_millis(50),
        },
        ..RuntimeOptions::default()
    }
}

/// A simulator with these audit options and faults.
pub async fn sim_with(
    audit: m365_exporter::simulator::AuditOptions,
    faults: m365_exporter::simulator::Faults,
) -> Simulator {
    Simulator::start(m365_exporter::simulator::SimOptions {
        audit,
        faults,
        ..Default::default()
    })
    .await
    .unwrap()
}

pub async fn start(sim: &Simulator, tenant: &str, extra: &str) -> Running {
    Running::start(
        &config(&sim.url(), tenant, extra),
        &WebOptions::default(),
        &fast(),
    )
    .await
    .unwrap()
}

/// Wait until every listed blob is fetched or expired and `blobs` were seen.
pub async fn drained(exp: &Running, tenant: &str, blobs: usize) -> Vec<Sample> {
    let t = [("tenant", tenant)];
    wait_for("the backlog to drain", Duration::from_secs(60), || async {
        let m = scrape(exp).await;
        let done = sum(&m, "m365_activity_content_fetched_total", &t)
            + sum(&m, "m365_activity_content_expired_total", &t);
        let backlog = sum(&m, "m365_activity_backlog_blobs", &t);
        (done as usize == blobs
            && backlog == 0.0
            && !select_empty(&m, "m365_activity_backlog_blobs"))
        .then_some(m)
    })
    .await
}

fn select_empty(m: &[Sample], name: &str) -> bool {
    !m.iter().any(|s| s.name == name)
}

/// Wait until `m365_activity_records_total` over the series matching
/// `labels` reads `n`, and return that scrape. With a state file records
/// count when the save after their blob has written them (within seconds),
/// not when the blob is fetched: a drained backlog does not mean counted.
pub async fn counted(exp: &Running, labels: &[(&str, &str)], n: u64) -> Vec<Sample> {
    wait_for(
        &format!("m365_activity_records_total{labels:?} to read {n}"),
        Duration::from_secs(60),
        || async {
            let m = scrape(exp).await;
            (sum(&m, "m365_activity_records_total", labels) as u64 == n).then_some(m)
        },
    )
    .await
}

/// `m365_collector_success{collector="activity"}` of `tenant`.
pub fn success(m: &[Sample], tenant: &str) -> f64 {
    super::value(
        m,
        "m365_collector_success",
        &[("tenant", tenant), ("collector", "activity")],
    )
}

/// The one captured log line containing every one of `needles`.
pub fn one_log_line(needles: &[&str]) -> String {
    let lines = log_lines(needles);
    assert_eq!(
        lines.len(),
        1,
        "exactly one line with {needles:?}: {lines:?}"
    );
    lines[0].clone()
}

/// Management API requests the simulator saw.
pub fn management_requests(sim: &Simulator) -> Vec<Recorded> {
    sim.requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/v1.0/"))
        .collect()
}

pub fn all_types() -> Vec<&'static str> {
    CONTENT_TYPES.to_vec()
}

pub fn now_ms() -> i64 {
    m365_exporter::timefmt::now_unix() as i64 * 1_000
}

// ------------------------------------------------------------- log capture

static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Capture this test binary's log lines (idempotent).
pub fn capture_logs() {
    capture_logs_at(tracing::Level::INFO);
}

/// Capture this test binary's log lines at `level` and above (idempotent).
pub fn capture_logs_at(level: tracing::Level) {
    let _ = tracing_subscriber::fmt()
        .with_writer(|| Capture)
        .with_ansi(false)
        .with_max_level(level)
        .try_init();
}

/// Captured lines containing every one of `needles`.
pub fn log_lines(needles: &[&str]) -> Vec<String> {
    let logs = LOGS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    String::from_utf8_lossy(&logs)
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .map(str::to_string)
        .collect()
}

/// Every record the simulator serves (expired blobs excepted), as raw bytes.
pub fn served_records(sim: &Simulator) -> std::collections::HashSet<String> {
    sim.audit()
        .blobs
        .iter()
        .filter(|b| !b.expired && !b.poison)
        .flat_map(|b| {
            m365_exporter::activity::records::parse_blob(b.body.as_bytes())
                .unwrap()
                .into_iter()
                .map(|r| r.raw.to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The sink holds each served record exactly once, byte-for-byte.
pub fn assert_sink_exactly_once(
    lines: &[String],
    sim: &Simulator,
    ids: &std::collections::BTreeSet<String>,
) {
    let served = served_records(sim);
    let mut seen = std::collections::BTreeSet::new();
    for line in lines {
        assert!(served.contains(line), "byte-for-byte as served: {line}");
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = v["Id"].as_str().unwrap().to_string();
        assert!(seen.insert(id), "written twice: {line}");
    }
    assert_eq!(&seen, ids, "every record exactly once");
}

/// Wait until `tenant`'s feed has made `n` more polls from now: a "nothing
/// more happened" count taken after it spans those polls, however slow the
/// machine (never vacuous).
pub async fn more_polls(exp: &Running, tenant: &str, n: u64) {
    let from = exp.feed_status(tenant).await.expect("a feed").polls;
    wait_for(
        &format!("{n} more polls of {tenant}'s feed"),
        Duration::from_secs(90),
        || async { (exp.feed_status(tenant).await?.polls >= from + n).then_some(()) },
    )
    .await;
}
