//! Helpers of the `activity.reconcile` tests: a simulator whose Audit Log
//! Query API searches the records its Management API serves, an exporter
//! reconciling every day (`window: 24h`, `settle: 0s`) into a sink, and what
//! the reconciler must count, worked out from the simulator's blobs.
#![allow(dead_code)]

use super::activity::{all_types, now_ms, scrape, sim_with, start};
use super::{sum, value, wait_for, Sample};
use m365_exporter::activity::records::parse_blob;
use m365_exporter::cli::app::Running;
use m365_exporter::simulator::audit::SimBlob;
use m365_exporter::simulator::{AuditOptions, Faults, Simulator};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const TENANT: &str = "rec";

/// Midnight UTC today: with `window: 24h` and `settle: 0s`, the windows
/// reconciled in a test end here (the one after it has not ended yet).
/// There are two: from the feed's `lookback` (2 d) to yesterday's
/// midnight, then to today's.
pub fn midnight() -> i64 {
    (now_ms() / 1_000).div_euclid(86_400) * 86_400
}

/// Which of the two windows `t` (Unix seconds) falls in.
pub fn window_of(t: i64) -> usize {
    usize::from(t >= midnight() - 86_400)
}

/// The simulator's defaults, no blob expired.
pub fn opts() -> AuditOptions {
    AuditOptions {
        expired_blobs: 0,
        ..AuditOptions::default()
    }
}

/// The state file and the sink, in a directory of their own.
pub struct Files {
    _dir: tempfile::TempDir,
    pub state: PathBuf,
    pub out: PathBuf,
}

pub fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    Files {
        state: dir.path().join("state.json"),
        out: dir.path().join("audit.ndjson"),
        _dir: dir,
    }
}

/// The `activity` keys of a reconciling tenant; `reconcile`: more keys of
/// `activity.reconcile` (`, repair: false`).
pub fn keys(f: &Files, reconcile: &str) -> String {
    format!(
        // The feed's own interval too: `interval:` in `extra` replaces the default.
        ", interval: 300ms, state_file: {}, output: {}, reconcile: {{enabled: true, interval: 10s, settle: 0s, window: 24h{reconcile}}}",
        f.state.display(),
        f.out.display()
    )
}

pub fn sink_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A simulator with these audit options (no faults), the files, and every
/// record id it holds (its truth, taken before anything is started).
pub struct Setup {
    pub sim: Simulator,
    pub files: Files,
    pub truth: BTreeSet<String>,
}

pub async fn setup(audit: AuditOptions) -> Setup {
    let sim = sim_with(audit, Faults::default()).await;
    let truth = sim.audit().truth(&all_types(), 0, now_ms()).ids;
    Setup {
        sim,
        files: files(),
        truth,
    }
}

impl Setup {
    /// An exporter reconciling into this setup's files.
    pub async fn start(&self) -> Running {
        start(&self.sim, TENANT, &keys(&self.files, "")).await
    }

    /// Wait for the first audit-log query.
    pub async fn query_submitted(&self) {
        wait_for("a query submitted", Duration::from_secs(60), || async {
            (!self.sim.audit().queries.is_empty()).then_some(())
        })
        .await;
    }

    /// Let the queries finish from now on.
    pub fn queries_done(&self) {
        self.sim.audit().opts.query_delay = Duration::ZERO;
    }

    /// The blob the Management API has never listed, listed from now on:
    /// `backfilled`, under a contentCreated of now (a blob Microsoft
    /// publishes days late); else under its old one, which the feed's
    /// listing is past. How many records it holds.
    pub fn list_the_unlisted_blob(&self, backfilled: bool) -> usize {
        let mut a = self.sim.audit();
        let b = a
            .blobs
            .iter_mut()
            .find(|b| b.listed_from_ms == i64::MAX)
            .expect("a blob never listed");
        if backfilled {
            b.created_ms = now_ms() + 1_000;
        }
        b.listed_from_ms = b.created_ms;
        b.published_ms = b.created_ms;
        b.records.len()
    }

    /// The sink holds the simulator's truth exactly once, byte for byte.
    pub fn assert_sink(&self) {
        super::activity::assert_sink_exactly_once(
            &sink_lines(&self.files.out),
            &self.sim,
            &self.truth,
        );
    }
}

pub fn windows(m: &[Sample], result: &str) -> f64 {
    value(
        m,
        "m365_activity_reconcile_windows_total",
        &[("tenant", TENANT), ("result", result)],
    )
}

pub fn records(m: &[Sample], ct: &str, result: &str) -> f64 {
    value(
        m,
        "m365_activity_reconcile_records_total",
        &[("tenant", TENANT), ("content_type", ct), ("result", result)],
    )
}

/// `name` summed over the tenant's series.
pub fn total(m: &[Sample], name: &str) -> f64 {
    sum(m, name, &[("tenant", TENANT)])
}

/// Wait until `n` windows ended other than failed, the last at midnight,
/// with the backlog empty.
pub async fn reconciled(exp: &Running, n: f64) -> Vec<Sample> {
    wait_for(
        "windows reconciled",
        Duration::from_secs(90),
        || async move {
            let m = scrape(exp).await;
            let done = ["complete", "repaired", "incomplete"]
                .iter()
                .map(|r| windows(&m, r))
                .sum::<f64>();
            let backlog = total(&m, "m365_activity_backlog_blobs");
            // The gauges come with the feed's status, after its poll; the
            // counters at once.
            let until = total(&m, "m365_activity_reconciled_until_timestamp_seconds");
            (done >= n && backlog == 0.0 && until == midnight() as f64).then_some(m)
        },
    )
    .await
}

/// Wait until the feed fetched more blobs than `before`.
pub async fn fetched_more(exp: &Running, before: f64) -> Vec<Sample> {
    wait_for("the late blob fetched", Duration::from_secs(60), || async {
        let m = scrape(exp).await;
        (total(&m, "m365_activity_content_fetched_total") > before).then_some(m)
    })
    .await
}

/// Per content type, the records the query API holds before `until`
/// (each id once) and which of them sit in a blob the Management API lists.
#[derive(Debug, Default)]
pub struct Expected {
    pub matched: BTreeMap<String, u64>,
    pub missing: BTreeMap<String, u64>,
    /// Of the missing, those only the query's `auditData` can deliver.
    pub repaired: BTreeMap<String, u64>,
    /// Ids of the records missing from every listed blob.
    pub missing_ids: BTreeSet<String>,
}

/// [`Expected`] with the blobs the simulator lists (now or later) as the
/// feed's, the never-listed ones repaired.
pub fn expected(sim: &Simulator, until: i64) -> Expected {
    expected_with(sim, until, |b| b.listed_from_ms == i64::MAX, |_| true)
}

/// [`Expected`] with the blobs `unlisted` says as not listed when the
/// feed listed their windows; of their records, those `repaired(record's
/// time)` says are counted repaired, the others found by re-listing.
pub fn expected_with(
    sim: &Simulator,
    until: i64,
    unlisted: impl Fn(&SimBlob) -> bool,
    repaired: impl Fn(i64) -> bool,
) -> Expected {
    let audit = sim.audit();
    // id → (content type, its time, in a listed blob)
    let mut all: BTreeMap<String, (String, i64, bool)> = BTreeMap::new();
    for b in audit.blobs.iter().filter(|b| !b.poison) {
        let listed = !unlisted(b) && !b.expired;
        for r in parse_blob(b.body.as_bytes()).unwrap() {
            let t = r.creation_time.unwrap() as i64;
            if t >= until {
                continue;
            }
            let e =
                all.entry(r.id.unwrap().to_string())
                    .or_insert((b.content_type.clone(), t, false));
            e.2 |= listed;
        }
    }
    let mut x = Expected::default();
    for (id, (ct, t, listed)) in all {
        if listed {
            *x.matched.entry(ct).or_default() += 1;
            continue;
        }
        if repaired(t) {
            *x.repaired.entry(ct.clone()).or_default() += 1;
        }
        *x.missing.entry(ct).or_default() += 1;
        x.missing_ids.insert(id);
    }
    x
}

/// The reconciler's counters are `x`, nothing is left missing, and it is
/// reconciled until midnight.
pub fn assert_counts(m: &[Sample], x: &Expected) {
    for ct in all_types() {
        let n = |by: &BTreeMap<String, u64>| by.get(ct).copied().unwrap_or(0) as f64;
        assert_eq!(records(m, ct, "matched"), n(&x.matched), "{ct} matched");
        assert_eq!(records(m, ct, "missing"), n(&x.missing), "{ct} missing");
        assert_eq!(records(m, ct, "repaired"), n(&x.repaired), "{ct} repaired");
        assert_eq!(
            value(
                m,
                "m365_activity_reconcile_missing_records",
                &[("tenant", TENANT), ("content_type", ct)]
            ),
            0.0,
            "{ct}: nothing left missing"
        );
    }
    assert_eq!(
        value(
            m,
            "m365_activity_reconciled_until_timestamp_seconds",
            &[("tenant", TENANT)]
        ),
        midnight() as f64
    );
}
