//! The track record end to end: the simulator's `history` scenario (35 days
//! of Microsoft's issue history) → the exporter's track-record families, equal
//! to the figures docs/track-record.md works out by hand (open issues within
//! a minute: they grow with the clock); the scrape passes `promtool check
//! metrics`; the status page shows the window's availability; `m365-exporter
//! report --format csv` parses and matches the metrics; `report` exits 2 on a
//! bad flag, an unknown tenant and a 403 naming ServiceHealth.Read.All.

mod support;

use m365_exporter::simulator::{SimOptions, Simulator};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::procs::promtool_check_metrics;
use support::{
    get, parse, select, service_health_config, start_against_simulator, value, wait_for, Sample,
    SimTenant,
};

const BIN: &str = env!("CARGO_BIN_EXE_m365-exporter");
const H: f64 = 3_600.0;
const D: f64 = 86_400.0;
const WINDOW: f64 = 30.0 * D;
/// Open issues grow with the clock between the exporter's refresh, the
/// report's fetch and this test's reading of the clock.
const OPEN_SLACK: f64 = 60.0;

/// One (service, classification) of the scenario, worked out by hand:
/// (service, classification, seconds covered at the scenario's base, whether
/// an open issue grows that by the time since the base, issues started,
/// issues resolved, (mean, max) time to resolve or None: absent).
type Expected = (
    &'static str,
    &'static str,
    f64,
    bool,
    f64,
    f64,
    Option<(f64, f64)>,
);

/// docs/track-record.md's worked example. Exchange's incident time does not
/// grow: EX1001 (open) gains what EX2103 (clipped at the window's start) loses.
const EXPECTED: &[Expected] = &[
    // EX1001 open 3 h, EX2101 4 h, EX2103 33 → 29 days ago: 3 h + 4 h + 1 d.
    (
        "Exchange",
        "incident",
        31.0 * H,
        false,
        2.0,
        2.0,
        Some((50.0 * H, 4.0 * D)),
    ),
    // EX1002 open 5 h inside EX0990 (50 → 1 h ago), EX2102 2 d.
    (
        "Exchange",
        "advisory",
        98.0 * H,
        true,
        3.0,
        2.0,
        Some((48.5 * H, 49.0 * H)),
    ),
    // TM1004 open 1 h; TM2201 ∪ TM2202 8 h; TM2203 30 min; TM2204 a false positive.
    (
        "microsoftteams",
        "incident",
        9.5 * H,
        true,
        4.0,
        3.0,
        Some((12.5 * H / 3.0, 6.0 * H)),
    ),
    ("microsoftteams", "advisory", 4.0 * H, true, 1.0, 0.0, None),
    // SP2302 90 min; SP2300 ended before the window.
    (
        "SharePoint",
        "incident",
        1.5 * H,
        false,
        1.0,
        1.0,
        Some((1.5 * H, 1.5 * H)),
    ),
    // SP1003 open 2 h, SP2301 1 d.
    (
        "SharePoint",
        "advisory",
        26.0 * H,
        true,
        2.0,
        1.0,
        Some((D, D)),
    ),
    ("Intune", "incident", 20.0 * H, true, 1.0, 0.0, None),
    (
        "OneDriveForBusiness",
        "incident",
        29.0 * H,
        false,
        1.0,
        1.0,
        Some((29.0 * H, 29.0 * H)),
    ),
    // PB2401 is a falsePositive advisory: nothing.
    ("PowerBIcom", "advisory", 0.0, false, 0.0, 0.0, None),
];

const REVIEWS: &[(&str, f64)] = &[
    ("Exchange", 2.0),
    ("microsoftteams", 1.0),
    ("PowerBIcom", 0.0),
];

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn close(what: &str, got: f64, want: f64, slack: f64) {
    assert!(
        (got - want).abs() <= slack,
        "{what}: {got}, expected {want} (± {slack})"
    );
}

/// The impact expected `since_base` after the scenario's base, and its slack.
fn expected_impact(impact: f64, open: bool, since_base: f64) -> (f64, f64) {
    match open {
        true => (impact + since_base, OPEN_SLACK),
        false => (impact, 1.0),
    }
}

async fn history() -> (Simulator, m365_exporter::cli::app::Running) {
    let sim = SimOptions {
        scenario: "history".into(),
        ..SimOptions::default()
    };
    start_against_simulator(sim, |url| service_health_config(url, "1h")).await
}

/// The first scrape with the service-health families.
async fn scrape(url: &str) -> Vec<Sample> {
    let url = format!("{url}/metrics");
    wait_for("the track record", Duration::from_secs(60), || async {
        let (status, _, body) = get(&url).await;
        (status == 200 && body.contains("m365_service_availability_ratio{")).then_some(body)
    })
    .await;
    parse(&get(&url).await.2)
}

fn run_report(config: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("report")
        .arg("--config.file")
        .arg(config)
        .args(args)
        .env_clear()
        .output()
        .expect("run report");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_scenario_figures_page_and_report() {
    let (sim, exp) = history().await;
    let base = sim.scenario().base as f64;
    let body = {
        let m = scrape(&exp.url()).await;
        let since_base = now() - base;
        let t = ("tenant", "contoso");
        assert_eq!(
            value(&m, "m365_service_history_window_seconds", &[t]),
            WINDOW
        );
        // Every service has its series: 12 ratios, 24 of each classified family.
        assert_eq!(
            select(&m, "m365_service_availability_ratio", &[t]).len(),
            12
        );
        for f in [
            "m365_service_impact_seconds",
            "m365_service_issues_started",
            "m365_service_issues_resolved",
        ] {
            assert_eq!(select(&m, f, &[t]).len(), 24, "{f}");
        }
        for &(service, class, impact, open, started, resolved, ttr) in EXPECTED {
            let l = [t, ("service_id", service), ("classification", class)];
            let what = |f: &str| format!("{f} {service} {class}");
            let (want, slack) = expected_impact(impact, open, since_base);
            close(
                &what("impact"),
                value(&m, "m365_service_impact_seconds", &l),
                want,
                slack,
            );
            assert_eq!(
                value(&m, "m365_service_issues_started", &l),
                started,
                "{}",
                what("started")
            );
            assert_eq!(
                value(&m, "m365_service_issues_resolved", &l),
                resolved,
                "{}",
                what("resolved")
            );
            let mean = select(&m, "m365_service_time_to_resolve_mean_seconds", &l);
            let max = select(&m, "m365_service_time_to_resolve_max_seconds", &l);
            match ttr {
                None => assert!(mean.is_empty() && max.is_empty(), "{}", what("ttr")),
                Some((want_mean, want_max)) => {
                    close(&what("ttr mean"), mean[0].value, want_mean, 1e-6);
                    close(&what("ttr max"), max[0].value, want_max, 1e-6);
                }
            }
            if class == "incident" {
                close(
                    &what("availability"),
                    value(
                        &m,
                        "m365_service_availability_ratio",
                        &[t, ("service_id", service)],
                    ),
                    1.0 - want / WINDOW,
                    slack / WINDOW,
                );
            }
        }
        // A quiet service is 1, not a gap.
        assert_eq!(
            value(
                &m,
                "m365_service_availability_ratio",
                &[t, ("service_id", "Forms")]
            ),
            1.0
        );
        for (service, n) in REVIEWS {
            assert_eq!(
                value(
                    &m,
                    "m365_service_post_incident_reviews",
                    &[t, ("service_id", service)]
                ),
                *n,
                "reviews {service}"
            );
        }
        get(&format!("{}/metrics", exp.url())).await.2
    };

    // promtool check metrics: clean.
    promtool_check_metrics(&body);

    // The status page: availability and incidents of the window beside
    // today's status; the summary names the least available service.
    let (status, _, page) = get(&format!("{}/", exp.url())).await;
    assert_eq!(status, 200);
    assert!(page.contains("Availability (30d)"), "{page}");
    assert!(page.contains("Incidents (30d)"), "{page}");
    assert!(
        page.contains("least available over 30d: <strong>Exchange Online</strong>"),
        "{page}"
    );
    assert!(page.contains("95.694 %"), "{page}");

    // `report --format csv` with the same configuration: it parses, one row
    // per service, and its figures are the metrics'.
    let dir = tempfile::tempdir().unwrap();
    let config = SimTenant::new("contoso", &sim.url()).config_file(dir.path());
    let (code, csv, err) = run_report(&config, &["--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    let m = parse(&get(&format!("{}/metrics", exp.url())).await.2);
    let mut lines = csv.split("\r\n").filter(|l| !l.is_empty());
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 12, "{csv}");
    let col = |row: &[&str], name: &str| -> f64 {
        let i = header.iter().position(|h| *h == name).expect(name);
        row[i]
            .parse()
            .unwrap_or_else(|_| panic!("{name}: {:?}", row[i]))
    };
    for row in &rows {
        assert_eq!(row.len(), header.len(), "{row:?}");
        assert_eq!(row[0], "contoso");
        let sid = row[1];
        let s = [("tenant", "contoso"), ("service_id", sid)];
        let c = |class| [s[0], s[1], ("classification", class)];
        assert_eq!(col(row, "window_seconds"), WINDOW);
        close(
            &format!("{sid} availability"),
            col(row, "availability_ratio"),
            value(&m, "m365_service_availability_ratio", &s),
            OPEN_SLACK / WINDOW,
        );
        for (class, prefix, plural) in [
            ("incident", "incident", "incidents"),
            ("advisory", "advisory", "advisories"),
        ] {
            close(
                &format!("{sid} {class} impact"),
                col(row, &format!("{prefix}_impact_seconds")),
                value(&m, "m365_service_impact_seconds", &c(class)),
                OPEN_SLACK,
            );
            assert_eq!(
                col(row, &format!("{plural}_started")),
                value(&m, "m365_service_issues_started", &c(class))
            );
            assert_eq!(
                col(row, &format!("{plural}_resolved")),
                value(&m, "m365_service_issues_resolved", &c(class))
            );
            for stat in ["mean", "max"] {
                let name = format!("{prefix}_time_to_resolve_{stat}_seconds");
                let i = header.iter().position(|h| *h == name).unwrap();
                let metric = select(
                    &m,
                    &format!("m365_service_time_to_resolve_{stat}_seconds"),
                    &c(class),
                );
                match metric.first() {
                    None => assert_eq!(row[i], "", "{sid} {name}"),
                    Some(v) => close(&format!("{sid} {name}"), col(row, &name), v.value, 1e-6),
                }
            }
        }
        assert_eq!(
            col(row, "post_incident_reviews"),
            value(&m, "m365_service_post_incident_reviews", &s)
        );
    }
    // Least available first.
    assert_eq!(rows[0][1], "Exchange");

    // Markdown: a table to paste, the incidents listed with their ids.
    let (code, md, err) = run_report(&config, &["--format", "markdown", "--tenant", "contoso"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        md.starts_with("## contoso: Microsoft 365 track record, 30d to "),
        "{md}"
    );
    assert!(md.contains("| Exchange Online | 95.694 % | 1860 |"), "{md}");
    for id in [
        "EX1001", "EX2101", "EX2103", "TM2201", "TM2202", "TM2203", "SP2302",
    ] {
        assert!(md.contains(&format!("| {id} |")), "{id}:\n{md}");
    }
    for id in ["TM2204", "SP2300", "PB2401"] {
        assert!(
            !md.contains(id),
            "{id} is not an incident of the window:\n{md}"
        );
    }
    // A shorter window: SharePoint's incident of 25 days ago drops out.
    let (code, csv7, err) = run_report(&config, &["--format", "csv", "--window", "7d"]);
    assert_eq!(code, 0, "{err}");
    let sp = csv7
        .lines()
        .find(|l| l.starts_with("contoso,SharePoint,"))
        .expect(&csv7);
    assert!(
        sp.starts_with("contoso,SharePoint,SharePoint Online,604800,1,0,"),
        "{sp}"
    );

    // Exit 2: a window out of bounds, an unknown tenant.
    let (code, _, err) = run_report(&config, &["--window", "91d"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--window") && err.contains("between 1d and 90d"),
        "{err}"
    );
    let (code, _, err) = run_report(&config, &["--tenant", "fabrikam"]);
    assert_eq!(code, 2);
    assert!(err.contains("fabrikam"), "{err}");
    drop(exp);
}

/// A tenant whose app registration lacks the permission: exit 2, and the
/// message names ServiceHealth.Read.All.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_forbidden_names_the_permission() {
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    support::mock_api::token_endpoint().mount(&server).await;
    Mock::given(method("GET"))
        .and(path_regex("^/v1.0/admin/serviceAnnouncement/.*"))
        .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!({
            "error": {"code": "Forbidden", "message": "Caller does not have access."}
        })))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = SimTenant::new("contoso", &server.uri()).config_file(dir.path());
    let (code, out, err) =
        tokio::task::spawn_blocking(move || run_report(&config, &["--format", "table"]))
            .await
            .unwrap();
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("contoso") && err.contains("403"), "{err}");
    assert!(err.contains("ServiceHealth.Read.All"), "{err}");
}

/// A configuration the exporter would refuse: exit 2 naming the key.
#[test]
fn report_bad_config_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = SimTenant::new("contoso", "http://127.0.0.1:9")
        .with("service_health: {history_window: 120d}")
        .config_file(dir.path());
    let (code, _, err) = run_report(&config, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("history_window"), "{err}");
}
