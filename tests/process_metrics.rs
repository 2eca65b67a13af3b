//! The `process_*` families, as a real exporter process serves them:
//! `m365-exporter demo` started by this test, scraped over HTTP. Present on
//! `/metrics` with sane values (its start time between the test's start
//! and the scrape, RSS above 0, open fds within the limit), typed as
//! client_golang types them, `promtool check metrics` clean, and absent
//! from `/probe` with `m365_exporter_build_info` (exporter-wide, like every
//! family without a tenant: a probe serves its tenant's samples only).
//!
//! Needs promtool (`bash scripts/install-test-deps.sh`; PROMTOOL_BIN
//! overrides the path): the test fails, it does not skip, without it.
#![cfg(target_os = "linux")]

mod support;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::procs::{free_port, promtool_check_metrics, require_binary, ChildGuard};
use support::{get, parse, value};

const PROCESS: &[(&str, &str)] = &[
    ("process_cpu_seconds_total", "counter"),
    ("process_open_fds", "gauge"),
    ("process_max_fds", "gauge"),
    ("process_virtual_memory_bytes", "gauge"),
    ("process_virtual_memory_max_bytes", "gauge"),
    ("process_resident_memory_bytes", "gauge"),
    ("process_start_time_seconds", "gauge"),
];

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_metrics_on_metrics_sane_typed_clean_and_not_on_probe() {
    // Fails now, before the exporter starts, without promtool.
    require_binary(
        "promtool",
        "PROMTOOL_BIN",
        &["/usr/bin/promtool", "promtool"],
    );
    let dir = tempfile::tempdir().unwrap();
    let started = now();
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_m365-exporter"));
    cmd.arg("demo")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let mut exporter = ChildGuard::spawn("m365-exporter", cmd, dir.path());
    let base = format!("http://127.0.0.1:{port}");

    // Ready, and every collector tried once: a full scrape.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Err(e) = exporter.check_running() {
            panic!("{e}");
        }
        let ready = reqwest::get(format!("{base}/-/ready")).await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the demo not ready after 60 s: {}",
            exporter.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _, body) = get(&format!("{base}/metrics")).await;
    let scraped = now();
    assert_eq!(status, 200);

    // Typed and helped as client_golang serves them, each once, no labels.
    for (name, kind) in PROCESS {
        let typed = format!("\n# TYPE {name} {kind}\n");
        assert_eq!(body.matches(&typed).count(), 1, "{name}: {typed:?}");
        let samples: Vec<_> = parse(&body)
            .into_iter()
            .filter(|s| s.name == *name)
            .collect();
        assert_eq!(samples.len(), 1, "{name}");
        assert!(samples[0].labels.is_empty(), "{name}: {:?}", samples[0]);
    }

    let s = parse(&body);
    let v = |name: &str| value(&s, name, &[]);
    let start = v("process_start_time_seconds");
    // Between the test's start and this scrape, however long the machine
    // took (1 s of slack: the kernel's boot time is in whole seconds).
    assert!(
        start >= started - 1.0 && start <= scraped + 1.0,
        "start time {start}, test started at {started}, scraped at {scraped}"
    );
    let rss = v("process_resident_memory_bytes");
    assert!(rss > 0.0, "RSS {rss}");
    assert!(v("process_virtual_memory_bytes") >= rss);
    let (open, max) = (v("process_open_fds"), v("process_max_fds"));
    assert!(open >= 3.0 && open <= max, "open fds {open}, max {max}");
    assert!(v("process_virtual_memory_max_bytes") > 0.0);
    let cpu = v("process_cpu_seconds_total");
    assert!(cpu >= 0.0 && cpu < now() - started + 60.0, "cpu {cpu}");

    // The next scrape: the same start, CPU time never backwards.
    let (_, _, again) = get(&format!("{base}/metrics")).await;
    let again = parse(&again);
    assert_eq!(value(&again, "process_start_time_seconds", &[]), start);
    assert!(value(&again, "process_cpu_seconds_total", &[]) >= cpu);

    // promtool's linter is clean on the whole scrape.
    promtool_check_metrics(&body);

    // /probe is one tenant's: no process families, no build info (both on
    // /metrics), no exporter-wide family at all: every sample is contoso's.
    assert_eq!(value(&s, "m365_exporter_build_info", &[]), 1.0);
    let (status, _, probe) = get(&format!("{base}/probe?target=contoso")).await;
    assert_eq!(status, 200);
    assert!(probe.contains("tenant=\"contoso\""), "{probe}");
    assert!(!probe.contains("process_"), "{probe}");
    assert!(!probe.contains("m365_exporter_build_info"), "{probe}");
    for s in parse(&probe) {
        assert_eq!(
            s.labels.get("tenant").map(String::as_str),
            Some("contoso"),
            "{} on /probe",
            s.name
        );
    }
    exporter.check_running().unwrap();
}
