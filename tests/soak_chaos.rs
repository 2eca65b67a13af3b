//! The audit feed under every fault at once, with a live feed: connection
//! resets, hangs, truncated bodies, 5xx storms, 429/AF429 with
//! Retry-After, half the continuation pages failing, webhook notifications
//! late, duplicated and dropped, and a `kill -9` of the exporter process
//! halfway, restarted on the same files. Then the faults stop, the live
//! feed ends and drains, and the outcome is judged: the sink holds every
//! record the (in-process) simulator published exactly once, byte for byte;
//! the restarted exporter's `m365_activity_records_total` equals the lines
//! it added to the sink; the backlog never held more than 10 minutes of the
//! feed; the lag is back under two polls.
//!
//! In `make test` it runs one minute of faults on the debug binary;
//! `make soak-chaos` runs ten on the release binary (`SOAK_CHAOS_EXPORTER`)
//! and also holds the exporter's
//! RSS flat within 2 MiB from each process' third minute on and prints the
//! figures BENCHMARKS.md quotes. Outcomes only: every wait is on a
//! condition with a generous deadline, nothing asserts on wall time.

mod support;

use m365_exporter::simulator::{AuditOptions, Faults, SimOptions, SimState, Simulator};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::activity::{all_types, assert_sink_exactly_once, now_ms, tenant_yaml, PUBLISHER};
use support::procs::{self, ChildGuard};
use support::{parse, select, sum, Sample};

const TENANT: &str = "chaos";
const AUTH_ID: &str = "soak-chaos-auth-id";
const MIB: f64 = 1024.0 * 1024.0;

/// One soak: how long the faults last, how fast the feed flows, which
/// exporter binary runs, and whether RSS is judged.
struct Plan {
    chaos: Duration,
    /// One new blob per content type this often.
    live_every: Duration,
    /// `activity.interval` (and the webhook's poll interval), seconds.
    interval: u64,
    /// `activity.overlap`: the trailing window every poll lists again.
    overlap: &'static str,
    /// Items per listing page.
    page_size: usize,
    exporter: PathBuf,
    /// Judge RSS flatness (the long run only: a minute is all warm-up).
    rss: bool,
    /// Generous: the feed's drain after the faults, hung requests included
    /// (the exporter's 60 s request timeout must fire first).
    drain_limit: Duration,
}

/// One minute on the debug binary (`make test`), or, when
/// `SOAK_CHAOS_EXPORTER` names a binary (`make soak-chaos` sets it to the
/// release build), `SOAK_CHAOS_MINUTES` (default 10) on it with RSS judged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_soak() {
    let plan = match std::env::var_os("SOAK_CHAOS_EXPORTER") {
        None => Plan {
            chaos: Duration::from_secs(60),
            live_every: Duration::from_secs(2),
            interval: 2,
            overlap: "1m",
            page_size: 8,
            exporter: PathBuf::from(env!("CARGO_BIN_EXE_m365-exporter")),
            rss: false,
            drain_limit: Duration::from_secs(360),
        },
        Some(exporter) => {
            let minutes: u64 = std::env::var("SOAK_CHAOS_MINUTES")
                .ok()
                .and_then(|m| m.parse().ok())
                .unwrap_or(10);
            Plan {
                chaos: Duration::from_secs(60 * minutes),
                live_every: Duration::from_secs(3),
                interval: 5,
                overlap: "2m",
                page_size: 10,
                exporter: PathBuf::from(exporter),
                rss: true,
                drain_limit: Duration::from_secs(600),
            }
        }
    };
    soak(plan).await;
}

/// What one exporter process did while it ran.
#[derive(Default)]
struct Run {
    started: Option<Instant>,
    /// (since the process started, RSS bytes), every sample.
    rss: Vec<(Duration, f64)>,
    cpu_s: f64,
}

impl Run {
    /// RSS samples from the process' third minute on: (min, max, count).
    fn settled_rss(&self) -> (f64, f64, usize) {
        let late: Vec<f64> = self
            .rss
            .iter()
            .filter(|(t, _)| *t >= Duration::from_secs(180))
            .map(|(_, r)| *r)
            .collect();
        let min = late.iter().copied().fold(f64::INFINITY, f64::min);
        let max = late.iter().copied().fold(0.0, f64::max);
        (min, max, late.len())
    }
}

async fn soak(plan: Plan) {
    let sim = Simulator::start(SimOptions {
        audit: AuditOptions {
            live_every: Some(plan.live_every),
            // Enough live blobs for the whole run; the rest is cut when the
            // feed ends.
            live_for: plan.chaos + plan.drain_limit + Duration::from_secs(600),
            page_size: plan.page_size,
            // Records lost to expiry are not the soak's subject.
            expired_blobs: 0,
            ..AuditOptions::default()
        },
        faults: chaos_faults(),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::Builder::new()
        .prefix("soak-chaos")
        .tempdir()
        .unwrap();
    let files = Files::new(dir.path());
    let hook_port = procs::free_port();
    std::fs::write(&files.config, config(&sim.url(), &files, hook_port, &plan)).unwrap();

    let driver = tokio::spawn(drive_faults(sim.state().clone()));
    let started = Instant::now();
    let mut port = procs::free_port();
    let mut exporter = spawn(&plan.exporter, &files, "first", port, hook_port);
    let mut runs = vec![Run {
        started: Some(Instant::now()),
        ..Run::default()
    }];
    let mut max_backlog = 0.0f64;
    let mut baseline = None;
    let mut killed_at: Option<Duration> = None;
    loop {
        let elapsed = started.elapsed();
        // The second process gets its half of the chaos too.
        if elapsed >= killed_at.map_or(plan.chaos, |k| plan.chaos.max(k + plan.chaos / 2)) {
            break;
        }
        // Halfway, once the first process has saved records (a kill
        // before that proves nothing): kill -9, then restart on the same
        // files at once (the same webhook port: it is the registered
        // address).
        if killed_at.is_none() && elapsed >= plan.chaos / 2 {
            if files.saved_sink_lines().is_some_and(|n| n > 0) {
                runs.last_mut().unwrap().cpu_s = cpu_seconds(exporter.pid());
                exporter.sigkill();
                killed_at = Some(elapsed);
                baseline = files.saved_sink_lines();
                port = procs::free_port();
                exporter = spawn(&plan.exporter, &files, "second", port, hook_port);
                runs.push(Run {
                    started: Some(Instant::now()),
                    ..Run::default()
                });
            } else {
                assert!(
                    elapsed < plan.chaos + plan.drain_limit,
                    "the first exporter saved no record in {elapsed:?}; its log:\n{}",
                    exporter.log_tail(40)
                );
            }
        }
        sample(
            &mut exporter,
            port,
            runs.last_mut().unwrap(),
            &mut max_backlog,
        )
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // The faults stop and the feed ends: from here on the truth is fixed.
    driver.abort();
    let _ = driver.await;
    sim.set_faults(Faults::default());
    let ended_s = now_ms() / 1_000;
    sim.audit().end_live_feed(ended_s * 1_000);
    let truth = sim.audit().truth(&all_types(), 0, i64::MAX);
    let injected = sim.injected();

    let drain_started = Instant::now();
    let drained = loop {
        let run = runs.last_mut().unwrap();
        if let Some(m) = sample(&mut exporter, port, run, &mut max_backlog).await {
            if files.sink_lines().len() >= truth.ids.len() && caught_up(&m, ended_s) {
                break m;
            }
        }
        assert!(
            drain_started.elapsed() < plan.drain_limit,
            "the feed did not drain within {:?} after the faults stopped: {} of {} records in the sink; exporter log:\n{}",
            plan.drain_limit,
            files.sink_lines().len(),
            truth.ids.len(),
            exporter.log_tail(40)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    // The last RSS samples come from a drained, idle feed (the long run's
    // third-minute window reaches them either way).
    let run = runs.last_mut().unwrap();
    run.cpu_s = cpu_seconds(exporter.pid());
    let lines = files.sink_lines();
    drop(exporter);

    // The figures first: a failed run is measured too.
    let ten_minutes = all_types().len() as f64 * 600.0 / plan.live_every.as_secs_f64();
    let lags = select(
        &drained,
        "m365_activity_blob_lag_seconds",
        &[("tenant", TENANT)],
    );
    let max_lag = lags.iter().map(|s| s.value).fold(0.0, f64::max);
    let rss: Vec<String> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (min, max, n) = r.settled_rss();
            if n == 0 {
                format!("process {}: no sample after minute 3", i + 1)
            } else {
                format!(
                    "process {}: {:.1}-{:.1} MiB over {n} samples after minute 3",
                    i + 1,
                    min / MIB,
                    max / MIB
                )
            }
        })
        .collect();
    println!(
        "figures: chaos {}s, drain {:.0}s; records {} (sink lines {}, duplicates {}); blobs {}; faults injected {injected:?}; max backlog {max_backlog} blobs (10 minutes of the feed: {ten_minutes}); lag after drain {max_lag:.1}s (interval {}s); RSS {}; exporter CPU {:.2}s ({:.2} + {:.2})",
        plan.chaos.as_secs(),
        drain_started.elapsed().as_secs_f64(),
        truth.ids.len(),
        lines.len(),
        lines.len() as i64 - truth.ids.len() as i64,
        truth.blobs,
        plan.interval,
        rss.join("; "),
        runs.iter().map(|r| r.cpu_s).sum::<f64>(),
        runs[0].cpu_s,
        runs.get(1).map_or(0.0, |r| r.cpu_s),
    );

    // Every record of the truth in the sink exactly once, byte for byte.
    assert_sink_exactly_once(&lines, &sim, &truth.ids);
    // The restarted process counted what it added to the sink, no more.
    let baseline = baseline.expect("the exporter was killed halfway");
    let counted = sum(
        &drained,
        "m365_activity_records_total",
        &[("tenant", TENANT)],
    );
    assert_eq!(
        counted as usize,
        lines.len() - baseline,
        "m365_activity_records_total of the restarted exporter equals the lines it added to the sink ({} after the cut to the saved mark, {} at the end)",
        baseline,
        lines.len()
    );
    // The backlog stayed bounded: never more than 10 minutes of the feed.
    assert!(
        max_backlog <= ten_minutes,
        "the backlog reached {max_backlog} blobs, more than the {ten_minutes} 10 minutes of the feed produce"
    );
    // The lag is back under two polls, for every content type.
    assert_eq!(lags.len(), all_types().len(), "{lags:?}");
    assert!(
        max_lag < 2.0 * plan.interval as f64,
        "lag after the drain: {lags:?}"
    );
    // The faults were injected (the soak proved something): every kind in
    // the long run; in the short one those a minute surely brings (blob
    // throttling and the once-a-minute hang depend on how many requests
    // the exporter made).
    let kinds: &[&str] = if plan.rss {
        &ALL_KINDS
    } else {
        &ALL_KINDS[..7]
    };
    for &kind in kinds {
        assert!(
            injected.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} injected: {injected:?}"
        );
    }

    if plan.rss {
        for (i, r) in runs.iter().enumerate() {
            let (min, max, n) = r.settled_rss();
            assert!(n > 0, "process {}: no RSS sample after minute 3", i + 1);
            assert!(
                max - min <= 2.0 * MIB,
                "process {}: RSS not flat after minute 3: {:.2}-{:.2} MiB",
                i + 1,
                min / MIB,
                max / MIB
            );
        }
    }
}

/// The kinds of fault the soak injects, those every minute brings first.
const ALL_KINDS: [&str; 11] = [
    "throttled_429",
    "server_error_503",
    "truncated_body",
    "connection_reset",
    "next_page_503",
    "webhook_late",
    "webhook_duplicate",
    "listing_af429",
    "webhook_dropped",
    "blob_af429",
    "hang",
];

/// The standing faults of the chaos phase; [`drive_faults`] adds the
/// one-shot kinds (resets, hangs, 5xx storms) on a schedule.
fn chaos_faults() -> Faults {
    Faults {
        // Every 7th data request 429 with Retry-After: 1, every 11th 503,
        // every 13th a truncated body.
        chaos: true,
        retry_after_secs: 2,
        // Blob GETs: HTTP 403 AF429; listings: 429 AF429 with Retry-After.
        blob_af429_every: 9,
        listing_429_every: 10,
        next_page_fail_percent: 50,
        webhook_delay: Duration::from_secs(8),
        webhook_duplicate: true,
        webhook_drop_every: 5,
        ..Faults::default()
    }
}

/// Adds one-shot faults while the chaos lasts (until aborted), in
/// proportion to the data requests the simulator answers, as a flaky
/// upstream does (faults per second would starve a client that backs off:
/// every request it still makes would fail): a reset every 25 requests, a
/// 429 with `Retry-After: 2` every 60, a storm of six 503s in a row every
/// 200, and a hang (which holds a download slot for the exporter's 60 s
/// request timeout) every 100 but at most one a minute.
async fn drive_faults(st: std::sync::Arc<SimState>) {
    let requests = || st.api_requests.load(std::sync::atomic::Ordering::SeqCst);
    let (mut reset, mut throttle, mut storm, mut hang) = (0, 0, 0, 0);
    let mut hung_at: Option<Instant> = None;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n = requests();
        let mut f = st.faults();
        if n >= reset + 25 {
            reset = n;
            f.reset_next += 1;
        }
        if n >= throttle + 60 {
            throttle = n;
            f.throttle_next += 1;
        }
        if n >= storm + 200 {
            storm = n;
            f.server_error_next += 6;
        }
        if n >= hang + 100 && hung_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            hang = n;
            hung_at = Some(Instant::now());
            f.hang_next += 1;
        }
    }
}

/// The tempdir's files: config, state, sink.
struct Files {
    dir: PathBuf,
    config: PathBuf,
    state: PathBuf,
    sink: PathBuf,
}

impl Files {
    fn new(dir: &Path) -> Files {
        Files {
            dir: dir.to_path_buf(),
            config: dir.join("config.yml"),
            state: dir.join("state.json"),
            sink: dir.join("audit.ndjson"),
        }
    }

    fn sink_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.sink)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Lines of the sink up to the mark of the saved state: what a restart
    /// keeps (bytes past it belong to blobs it fetches again).
    fn saved_sink_lines(&self) -> Option<usize> {
        let state: serde_json::Value = serde_json::from_slice(&std::fs::read(&self.state).ok()?)
            .expect("the state file is JSON");
        let len = state["state"]["sink"]["len"].as_u64()?;
        let sink = std::fs::read(&self.sink).expect("the sink the state names");
        Some(
            sink.get(..len as usize)
                .unwrap_or(&sink)
                .iter()
                .filter(|b| **b == b'\n')
                .count(),
        )
    }
}

fn config(url: &str, files: &Files, hook_port: u16, plan: &Plan) -> String {
    let address = format!("http://127.0.0.1:{hook_port}/webhook/{TENANT}");
    format!(
        "tenants:\n{}",
        tenant_yaml(
            TENANT,
            url,
            &format!(
                "interval: {i}s, overlap: {overlap}, lookback: 2d, publisher_id: {PUBLISHER}, requests_per_minute: 2000, start_subscriptions: true, state_file: \"{state}\", output: \"{sink}\", webhook: {{address: \"{address}\", auth_id: {AUTH_ID}, poll_interval: {i}s}}",
                i = plan.interval,
                overlap = plan.overlap,
                state = files.state.display(),
                sink = files.sink.display(),
            )
        )
    )
}

fn spawn(bin: &Path, files: &Files, name: &str, port: u16, hook_port: u16) -> ChildGuard {
    let mut cmd = Command::new(bin);
    cmd.arg("--config.file")
        .arg(&files.config)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--webhook.listen-address=127.0.0.1:{hook_port}"));
    ChildGuard::spawn(name, cmd, &files.dir)
}

/// Scrape the exporter (None while it is not answering), note its backlog
/// and RSS; panics with its log if it died.
async fn sample(
    exporter: &mut ChildGuard,
    port: u16,
    run: &mut Run,
    max_backlog: &mut f64,
) -> Option<Vec<Sample>> {
    if let Err(why) = exporter.check_running() {
        panic!("{why}");
    }
    if let (Some(rss), Some(started)) = (rss_bytes(exporter.pid()), run.started) {
        run.rss.push((started.elapsed(), rss));
    }
    let m = scrape(port).await?;
    let backlog = sum(&m, "m365_activity_backlog_blobs", &[("tenant", TENANT)]);
    *max_backlog = max_backlog.max(backlog);
    Some(m)
}

async fn scrape(port: u16) -> Option<Vec<Sample>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .ok()?;
    let r = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .ok()?;
    Some(parse(&r.text().await.ok()?))
}

/// Nothing left that could still be written: every type listed past the
/// end of the feed, nothing waiting to be fetched.
fn caught_up(m: &[Sample], ended_s: i64) -> bool {
    let t = [("tenant", TENANT)];
    let listed = select(m, "m365_activity_listed_until_timestamp_seconds", &t);
    listed.len() == all_types().len()
        && listed.iter().all(|s| s.value >= ended_s as f64)
        && select(m, "m365_activity_backlog_blobs", &t).len() == all_types().len()
        && sum(m, "m365_activity_backlog_blobs", &t) == 0.0
}

/// VmRSS of `pid`, bytes.
fn rss_bytes(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024.0)
}

/// User + system CPU seconds of `pid` so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are
    // the 14th and 15th of the line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0);
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
