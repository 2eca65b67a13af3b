//! An audit feed that never goes dark: its status is served from the first
//! seconds even when every download hangs, a listing whose continuation
//! pages keep failing still brings every record in, and the feed files'
//! locks follow the configuration through reloads.

mod support;

use m365_exporter::api::RetryPolicy;
use m365_exporter::cli::app::{Running, WebOptions};
use m365_exporter::collect::RuntimeOptions;
use m365_exporter::config::{Config, ConfigSource};
use m365_exporter::simulator::{AuditOptions, Faults};
use std::path::Path;
use std::time::Duration;
use support::activity::*;
use support::{select, value, wait_for, Sample};

fn sink_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn lag(m: &[Sample], tenant: &str, ct: &str) -> Option<f64> {
    select(
        m,
        "m365_activity_blob_lag_seconds",
        &[("tenant", tenant), ("content_type", ct)],
    )
    .first()
    .map(|s| s.value)
}

/// The first scrape in which `ok(scrape, content_type)` holds for every
/// content type (60 s deadline: it only stops a hung test).
async fn until_every_type(
    exp: &Running,
    what: &str,
    ok: impl Fn(&[Sample], &str) -> bool,
) -> Vec<Sample> {
    wait_for(what, Duration::from_secs(60), || async {
        let m = scrape(exp).await;
        all_types().into_iter().all(|ct| ok(&m, ct)).then_some(m)
    })
    .await
}

/// Every blob GET hangs from the start: the feed's first poll never
/// completes, yet backlog and lag are served for every type, the lag
/// grows with the clock, and the collector says 0.
#[tokio::test]
async fn cold_start_into_hanging_downloads_is_seen() {
    let sim = sim_with(
        AuditOptions::default(),
        Faults {
            blob_delay: Duration::from_secs(3_600),
            ..Faults::default()
        },
    )
    .await;
    let exp = start(&sim, "cold", ", interval: 1m").await;
    let t = "cold";
    // Served while no download has ended (the first poll cannot complete:
    // asserted below); how soon is a figure, not a check here.
    let first = until_every_type(&exp, "backlog and lag for every type", |m, ct| {
        value(
            m,
            "m365_activity_backlog_blobs",
            &[("tenant", t), ("content_type", ct)],
        ) > 0.0
            && lag(m, t, ct).is_some_and(|l| l > 0.0)
    })
    .await;
    assert_eq!(success(&first, t), 0.0, "no poll has completed");
    // The lag is an age: it grows with the clock while nothing downloads
    // (by however long the wait takes; how fast is not the point).
    let second = until_every_type(&exp, "every lag grown by 2 s", |m, ct| {
        lag(m, t, ct).unwrap_or(0.0) >= lag(&first, t, ct).unwrap_or(0.0) + 2.0
    })
    .await;
    assert_eq!(success(&second, t), 0.0);
    exp.stop().await.unwrap();
}

/// 60% of continuation pages answer 503: each page's items go to the
/// backlog as they arrive and a failed page is resumed where it stopped,
/// so every record reaches the sink exactly once.
#[tokio::test]
async fn failing_continuation_pages_lose_nothing() {
    capture_logs();
    let sim = sim_with(
        AuditOptions {
            blobs_per_type: 200,
            page_size: 5,
            ..AuditOptions::default()
        },
        Faults {
            next_page_fail_percent: 60,
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("audit.ndjson");
    let types = ["Audit.Exchange", "Audit.SharePoint"];
    let config = config(
        &sim.url(),
        "pages",
        &format!(
            ", content_types: [{}], concurrency: 8, output: {}",
            types.join(", "),
            out.display()
        ),
    );
    // One attempt per request, so that pages fail for good often enough
    // for whole polls to end at a failed page.
    let opts = RuntimeOptions {
        retry: one_attempt(),
        ..RuntimeOptions::default()
    };
    let exp = Running::start(&config, &WebOptions::default(), &opts)
        .await
        .unwrap();
    let truth = sim.audit().truth(&types, 0, now_ms());
    wait_for(
        "every record in the sink",
        Duration::from_secs(120),
        || async { (sink_lines(&out).len() == truth.ids.len()).then_some(()) },
    )
    .await;
    exp.stop().await.unwrap();
    assert_sink_exactly_once(&sink_lines(&out), &sim, &truth.ids);
    let pages: Vec<_> = management_requests(&sim)
        .into_iter()
        .filter(|r| r.query.contains("nextPage"))
        .collect();
    let failed = pages.iter().filter(|r| r.status == 503).count();
    assert!(
        failed * 2 > pages.len(),
        "{failed} of {} continuation pages failed",
        pages.len()
    );
    assert!(
        !log_lines(&["content window listed over several polls"]).is_empty(),
        "some window needed more than one poll (the faults bit)"
    );
}

fn feed_tenant(name: &str, url: &str, state: &Path) -> String {
    tenant_yaml(
        name,
        url,
        &format!(
            "interval: 1m, lookback: 1h, publisher_id: {PUBLISHER}, state_file: {}",
            state.display()
        ),
    )
}

fn write(path: &Path, tenants: &[String]) {
    std::fs::write(path, format!("tenants:\n{}", tenants.concat())).unwrap();
}

/// A reload that adds a tenant with `activity` locks its state file before
/// its feed starts (a second exporter on it refuses to start); one that
/// removes it releases the lock; one whose added tenant's file is locked
/// elsewhere applies the rest and reports failure.
#[tokio::test]
async fn reload_takes_and_releases_the_feed_locks() {
    let sim = sim_with(AuditOptions::default(), Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    let (sa, sb, sc) = (
        dir.path().join("a.json"),
        dir.path().join("b.json"),
        dir.path().join("c.json"),
    );
    let (a, b, c) = (
        feed_tenant("a", &sim.url(), &sa),
        feed_tenant("b", &sim.url(), &sb),
        feed_tenant("c", &sim.url(), &sc),
    );
    write(&file, std::slice::from_ref(&a));
    let config = Config::load(&file).unwrap();
    let exp = Running::start_with(
        &config,
        ConfigSource::File(file.clone()),
        None,
        &WebOptions::default(),
        &fast(),
    )
    .await
    .unwrap();
    let only = |t: &str| Config::parse(&format!("tenants:\n{t}"), "second").unwrap();
    let second = || async { Running::start(&only(&b), &WebOptions::default(), &fast()).await };

    // Added by a reload: locked before its feed runs.
    write(&file, &[a.clone(), b.clone()]);
    let changes = exp.reload().await.unwrap();
    assert_eq!(changes.added, ["b"]);
    let err = match second().await {
        Ok(_) => panic!("a second exporter started on b's state file"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("in use by another m365-exporter"), "{err}");

    // Removed by a reload: released.
    write(&file, std::slice::from_ref(&a));
    let changes = exp.reload().await.unwrap();
    assert_eq!(changes.removed, ["b"]);
    let other = second().await.expect("b's files are free again");

    // Another process holds c's file: c is refused, b is added; the reload
    // reports failure and the next one (c free) adds c.
    let holder = Running::start(&only(&c), &WebOptions::default(), &fast())
        .await
        .unwrap();
    other.stop().await.unwrap();
    write(&file, &[a.clone(), b.clone(), c.clone()]);
    let err = exp.reload().await.unwrap_err().to_string();
    assert!(
        err.contains("tenants[c]") && err.contains("in use"),
        "{err}"
    );
    let m = support::scrape(&exp).await;
    assert_eq!(value(&m, "m365_config_last_reload_successful", &[]), 0.0);
    assert!(
        !select(&m, "m365_collector_success", &[("tenant", "b")]).is_empty()
            || !select(&m, "m365_collector_interval_seconds", &[("tenant", "b")]).is_empty()
    );
    assert!(select(&m, "m365_collector_interval_seconds", &[("tenant", "c")]).is_empty());
    holder.stop().await.unwrap();
    let changes = exp.reload().await.unwrap();
    assert_eq!(changes.added, ["c"]);
    let m = support::scrape(&exp).await;
    assert_eq!(value(&m, "m365_config_last_reload_successful", &[]), 1.0);
    exp.stop().await.unwrap();
}

fn last_success(m: &[Sample], tenant: &str) -> Option<f64> {
    select(
        m,
        "m365_collector_last_success_timestamp_seconds",
        &[("tenant", tenant), ("collector", "activity")],
    )
    .first()
    .map(|s| s.value)
}

/// A feed that has succeeded, then gets stuck (every blob GET hangs, so
/// each poll lists but downloads nothing): its last success stays at the
/// end of its last poll that moved, however often the collector renders
/// the status and however many polls end without progress, so
/// `M365CollectorStale` can fire; once downloads answer again, it moves.
#[tokio::test]
async fn a_feed_stuck_after_its_first_poll_stops_succeeding() {
    let sim = sim_with(AuditOptions::default(), Faults::default()).await;
    let t = "stuck";
    let config = support::activity::config(&sim.url(), t, "");
    // A hanging GET gives up after 1 s, once: polls end, without progress.
    let opts = RuntimeOptions {
        request_timeout: Duration::from_secs(1),
        retry: one_attempt(),
        ..RuntimeOptions::default()
    };
    let exp = Running::start(&config, &WebOptions::default(), &opts)
        .await
        .unwrap();
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    drained(&exp, t, truth.blobs).await;
    wait_for("a successful poll", Duration::from_secs(30), || async {
        let m = scrape(&exp).await;
        (success(&m, t) == 1.0 && last_success(&m, t).is_some()).then_some(())
    })
    .await;

    sim.set_faults(Faults {
        blob_delay: Duration::from_secs(3_600),
        ..Faults::default()
    });
    for ct in all_types() {
        sim.audit().add_blob(ct, Duration::from_secs(60), 3);
    }
    // Listed (the backlog shows them), never downloaded.
    let stuck_at = wait_for("the new blobs listed", Duration::from_secs(30), || async {
        let m = scrape(&exp).await;
        let backlog = select(&m, "m365_activity_backlog_blobs", &[("tenant", t)]);
        (backlog.len() == all_types().len() && backlog.iter().all(|s| s.value > 0.0))
            .then(|| last_success(&m, t))
            .flatten()
    })
    .await;
    // Polls keep ending (each lists every type), none moves a blob.
    more_polls(&exp, t, 3).await;
    let m = scrape(&exp).await;
    assert!(
        select(&m, "m365_activity_backlog_blobs", &[("tenant", t)])
            .iter()
            .all(|s| s.value > 0.0),
        "nothing downloaded"
    );
    assert_eq!(
        last_success(&m, t),
        Some(stuck_at),
        "no success while stuck (it would read {} s old by now)",
        m365_exporter::timefmt::now_unix() - stuck_at
    );

    // Downloads answer again: the next poll moves, and succeeds.
    sim.set_faults(Faults::default());
    wait_for(
        "a success after the stall",
        Duration::from_secs(60),
        || async {
            let m = scrape(&exp).await;
            last_success(&m, t)
                .is_some_and(|s| s > stuck_at)
                .then_some(())
        },
    )
    .await;
    exp.stop().await.unwrap();
}

/// One attempt per call and short waits: a failed page or blob shows at
/// once, as a failed poll, instead of behind the client's own retries.
fn one_attempt() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 1,
        base: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_millis(50),
    }
}
