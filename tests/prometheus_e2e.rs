//! End to end with real components: `m365-exporter demo` (built-in simulator, `incident`
//! scenario) ← a real Prometheus (Debian's /usr/bin/prometheus) scraping it every second
//! with a copy of alerts/m365-exporter.rules.yml whose `for` durations are shortened →
//! a real Alertmanager (/usr/bin/prometheus-alertmanager) configured with the route of
//! docs/alerting.md → a webhook receiver served by this test.
//!
//! Checks: every Grafana panel query (variables substituted) is accepted by Prometheus and
//! returns data; the `tenant`/`job`/`service_id` variable queries find the demo; the
//! default service alerts fire; the interruption alert is delivered to the paging receiver
//! with labels `tenant`, `service_id`, `severity` and annotations `summary`, `description`,
//! `runbook_url`; the incident and app-credential warnings reach the ticket receiver; the
//! service with an advisory only (SharePoint in the demo) raises nothing from the default
//! rules (quiet defaults), while the optional not-operational rule, loaded too, warns.
//! A second test scrapes the demo with the documented `/probe` job: the series keep
//! their `tenant` label (no `exported_tenant`) and `up` carries the tenant.
//!
//! Needs prometheus, prometheus-alertmanager and amtool: `bash scripts/install-test-deps.sh`.
//! The test fails (it does not skip) when they are missing. Override the paths with
//! PROMETHEUS_BIN, ALERTMANAGER_BIN, AMTOOL_BIN. Every process it starts is stopped when
//! the test ends, also on failure (see tests/support/procs.rs).

mod support;

use support::grafana;
use support::procs;

use axum::extract::{Path as UrlPath, State};
use axum::routing::post;
use axum::{Json, Router};
use procs::{free_port, require_binary, ChildGuard};
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const JOB: &str = "m365-exporter";
const TENANT: &str = "contoso";
const RATE_INTERVAL: &str = "15s";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
const DATA_TIMEOUT: Duration = Duration::from_secs(120);
const ALERT_TIMEOUT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(500);
/// The runbook links' base: `repository` of Cargo.toml (scripts/runbook-url.sh).
const RUNBOOK_BASE: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/docs/runbook.md#");

/// Panel targets that legitimately have no data in the demo, with the reason.
const NO_DATA_IN_DEMO: &[(&str, &str, &str, &str)] = &[
    (
        "m365-exporter.json",
        "Token and certificate expiry",
        "B",
        "the demo tenant authenticates with a client secret, so there is no certificate expiry",
    ),
    (
        "m365-exporter.json",
        "Virtual memory",
        "B",
        "the limit line shows only a set RLIMIT_AS; a test runner usually has none",
    ),
];

type Received = Arc<Mutex<Vec<(String, Value)>>>;

async fn webhook(
    State(received): State<Received>,
    UrlPath(receiver): UrlPath<String>,
    Json(body): Json<Value>,
) -> &'static str {
    received.lock().unwrap().push((receiver, body));
    "ok"
}

/// Poll `probe` until it returns Ok or `timeout` passes; fail early when a child died.
async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: Duration,
    procs: &mut [ChildGuard],
    mut probe: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    let mut last: String;
    loop {
        for p in procs.iter_mut() {
            if let Err(e) = p.check_running() {
                panic!("while waiting for {what}: {e}");
            }
        }
        match probe().await {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        if start.elapsed() > timeout {
            let logs: Vec<String> = procs
                .iter()
                .map(|p| format!("--- {} (pid {}) ---\n{}", p.name(), p.pid(), p.log_tail(30)))
                .collect();
            panic!(
                "timed out after {timeout:?} waiting for {what}: {last}\n{}",
                logs.join("\n")
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn get_ok(http: &reqwest::Client, url: &str) -> Result<String, String> {
    let resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| format!("GET {url}: {e}"))?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("GET {url}: {status}: {body}"))
    }
}

/// Sample lines of a text exposition.
fn sample_lines(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

/// Result of one PromQL query: Err(message) when Prometheus rejected it.
async fn prom_query(
    http: &reqwest::Client,
    prom: &str,
    expr: &str,
    instant: bool,
) -> Result<Result<Vec<Value>, String>, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let (path, params) = if instant {
        ("query", vec![("query", expr.to_string())])
    } else {
        (
            "query_range",
            vec![
                ("query", expr.to_string()),
                ("start", format!("{:.3}", now - 30.0)),
                ("end", format!("{now:.3}")),
                ("step", "1".to_string()),
            ],
        )
    };
    let resp = http
        .post(format!("{prom}/api/v1/{path}"))
        .form(&params)
        .send()
        .await
        .map_err(|e| format!("POST {path}: {e}"))?;
    let body: Value = resp
        .json()
        .await
        .map_err(|e| format!("{path}: invalid JSON: {e}"))?;
    if body["status"] != "success" {
        return Ok(Err(format!(
            "{}: {}",
            body["errorType"].as_str().unwrap_or("?"),
            body["error"].as_str().unwrap_or("?")
        )));
    }
    Ok(Ok(body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()))
}

/// Where the documented Prometheus and Alertmanager examples live.
const ALERTING_DOC: &str = "docs/alerting.md";

/// The YAML block after `<!-- {marker}` in docs/alerting.md.
fn documented_yaml(marker: &str) -> String {
    let doc = std::fs::read_to_string(grafana::repo_root().join(ALERTING_DOC))
        .unwrap_or_else(|e| panic!("read {ALERTING_DOC}: {e}"));
    let at = doc
        .find(&format!("<!-- {marker}"))
        .unwrap_or_else(|| panic!("{ALERTING_DOC}: <!-- {marker} --> marker missing"));
    let rest = &doc[at..];
    let start = rest.find("```yaml\n").expect("yaml block after the marker") + "```yaml\n".len();
    let len = rest[start..].find("```").expect("end of yaml block");
    rest[start..start + len].to_string()
}

/// Alertmanager configuration of docs/alerting.md, with test timings and every receiver
/// replaced by this test's webhook (`/<receiver name>`). Returns (original YAML, test
/// YAML, name of the receiver that pages on severity="critical").
fn alertmanager_config(webhook_port: u16) -> (String, String, String) {
    let original = documented_yaml("alertmanager-example");

    let mut cfg: serde_norway::Value =
        serde_norway::from_str(&original).expect("docs Alertmanager YAML");
    fn speed_up(route: &mut serde_norway::Value) {
        if let Some(map) = route.as_mapping_mut() {
            for (key, value) in [
                ("group_wait", "1s"),
                ("group_interval", "1s"),
                ("repeat_interval", "1h"),
            ] {
                if map.contains_key(key) || key != "repeat_interval" {
                    map.insert(key.into(), value.into());
                }
            }
            if let Some(routes) = map.get_mut("routes").and_then(|r| r.as_sequence_mut()) {
                routes.iter_mut().for_each(speed_up);
            }
        }
    }
    speed_up(&mut cfg["route"]);
    let pager = cfg["route"]["routes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|r| {
            r["matchers"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(|m| m.as_str())
                .any(|m| m.replace(' ', "") == r#"severity="critical""#)
        })
        .and_then(|r| r["receiver"].as_str())
        .expect("docs/alerting.md: no route with matchers ['severity=\"critical\"']")
        .to_string();
    let receivers = cfg["receivers"].as_sequence_mut().expect("receivers");
    for r in receivers.iter_mut() {
        let name = r["name"].as_str().expect("receiver name").to_string();
        let replacement = format!(
            "name: {name}\nwebhook_configs:\n  - url: http://127.0.0.1:{webhook_port}/{name}\n    send_resolved: false\n"
        );
        *r = serde_norway::from_str(&replacement).unwrap();
    }
    (original, serde_norway::to_string(&cfg).unwrap(), pager)
}

/// A copy of the shipped rule file `file` (under alerts/) with every `for`
/// shortened to 2s.
fn fast_rules(file: &str) -> String {
    let path = grafana::repo_root().join("alerts").join(file);
    let mut rules: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(path).expect("read rules"))
            .expect("rules YAML");
    for group in rules["groups"].as_sequence_mut().expect("groups") {
        for rule in group["rules"].as_sequence_mut().expect("rules") {
            if let Some(map) = rule.as_mapping_mut() {
                if map.contains_key("for") {
                    map.insert("for".into(), "2s".into());
                }
            }
        }
    }
    serde_norway::to_string(&rules).unwrap()
}

/// The alert names of the shipped rule file `file` (under alerts/).
fn rule_names(file: &str) -> std::collections::BTreeSet<String> {
    let path = grafana::repo_root().join("alerts").join(file);
    let rules: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(path).expect("read rules"))
            .expect("rules YAML");
    rules["groups"]
        .as_sequence()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_sequence().expect("rules").iter())
        .filter_map(|r| r["alert"].as_str().map(str::to_string))
        .collect()
}

/// Prometheus' alerts (pending or firing) named `name`; Err when Prometheus
/// does not answer, or not with an alert list.
async fn alerts_named(
    http: &reqwest::Client,
    prom: &str,
    name: &str,
) -> Result<Vec<Value>, String> {
    let body: Value = http
        .get(format!("{prom}/api/v1/alerts"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let all = body["data"]["alerts"]
        .as_array()
        .ok_or_else(|| format!("no alert list: {body}"))?;
    Ok(all
        .iter()
        .filter(|a| a["labels"]["alertname"] == name)
        .cloned()
        .collect())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path.to_string_lossy().into_owned()
}

fn prometheus_binary() -> std::path::PathBuf {
    require_binary(
        "Prometheus",
        "PROMETHEUS_BIN",
        &["/usr/bin/prometheus", "prometheus"],
    )
}

/// A client for the local processes (never through a proxy).
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// `m365-exporter demo` on a free port, once ready: its port.
async fn start_demo(dir: &Path, procs: &mut Vec<ChildGuard>, http: &reqwest::Client) -> u16 {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_m365-exporter"));
    cmd.arg("demo")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    procs.push(ChildGuard::spawn("m365-exporter", cmd, dir));
    let url = format!("http://127.0.0.1:{port}/-/ready");
    wait_for("the exporter to be ready", STARTUP_TIMEOUT, procs, || {
        get_ok(http, &url)
    })
    .await;
    port
}

/// Prometheus with `config` on a free port, once ready: its base URL.
async fn start_prometheus(
    bin: &Path,
    dir: &Path,
    config: &str,
    procs: &mut Vec<ChildGuard>,
    http: &reqwest::Client,
) -> String {
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.arg(format!(
        "--config.file={}",
        write(dir, "prometheus.yml", config)
    ))
    .arg(format!(
        "--storage.tsdb.path={}",
        dir.join("prom-data").display()
    ))
    .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    procs.push(ChildGuard::spawn("prometheus", cmd, dir));
    let prom = format!("http://127.0.0.1:{port}");
    let url = format!("{prom}/-/ready");
    wait_for("Prometheus to be ready", STARTUP_TIMEOUT, procs, || {
        get_ok(http, &url)
    })
    .await;
    prom
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alerts_work_against_real_prometheus_and_alertmanager() {
    let prometheus_bin = prometheus_binary();
    let alertmanager_bin = require_binary(
        "Alertmanager",
        "ALERTMANAGER_BIN",
        &[
            "/usr/bin/prometheus-alertmanager",
            "prometheus-alertmanager",
            "alertmanager",
        ],
    );
    let amtool_bin = require_binary("amtool", "AMTOOL_BIN", &["/usr/bin/amtool", "amtool"]);

    // Declared before the guards, so it is removed after every process has stopped.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut procs: Vec<ChildGuard> = Vec::new();
    let http = http_client();

    // Webhook receiver.
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let webhook_port = listener.local_addr().unwrap().port();
    let app = Router::new()
        .route("/{receiver}", post(webhook))
        .with_state(received.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // The exporter against its simulator.
    let exporter_port = start_demo(dir.path(), &mut procs, &http).await;
    let exporter = format!("http://127.0.0.1:{exporter_port}");

    // Alertmanager with the route of docs/alerting.md.
    let (documented, am_config, pager) = alertmanager_config(webhook_port);
    let documented_path = write(dir.path(), "alertmanager.documented.yml", &documented);
    let check = Command::new(&amtool_bin)
        .args(["check-config", &documented_path])
        .output()
        .expect("run amtool");
    assert!(
        check.status.success(),
        "amtool check-config rejects the Alertmanager example of docs/alerting.md:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let am_port = free_port();
    let alertmanager = format!("http://127.0.0.1:{am_port}");
    let mut cmd = Command::new(&alertmanager_bin);
    cmd.arg(format!(
        "--config.file={}",
        write(dir.path(), "alertmanager.yml", &am_config)
    ))
    .arg(format!(
        "--storage.path={}",
        dir.path().join("am-data").display()
    ))
    .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
    .arg("--cluster.listen-address=");
    procs.push(ChildGuard::spawn("alertmanager", cmd, dir.path()));
    let url = format!("{alertmanager}/-/ready");
    wait_for(
        "Alertmanager to be ready",
        STARTUP_TIMEOUT,
        &mut procs,
        || get_ok(&http, &url),
    )
    .await;

    // Prometheus with the (fast) rules.
    let rules = write(
        dir.path(),
        "m365-exporter.rules.yml",
        &fast_rules("m365-exporter.rules.yml"),
    );
    // The optional rule too: the test shows it fires where the defaults
    // stay quiet, so its quiet-default claim can fail.
    let optional = write(
        dir.path(),
        "m365-service-not-operational.rules.yml",
        &fast_rules("optional/m365-service-not-operational.rules.yml"),
    );
    let prom_config = format!(
        r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
  - {optional}
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:{am_port}']
scrape_configs:
  - job_name: {JOB}
    static_configs:
      - targets: ['127.0.0.1:{exporter_port}']
"#
    );
    let prom = start_prometheus(&prometheus_bin, dir.path(), &prom_config, &mut procs, &http).await;

    let up = format!(r#"up{{job="{JOB}"}} == 1"#);
    wait_for(
        "Prometheus to scrape the exporter",
        STARTUP_TIMEOUT,
        &mut procs,
        || async {
            match prom_query(&http, &prom, &up, true).await? {
                Ok(r) if !r.is_empty() => Ok(()),
                Ok(_) => Err("target not up yet".to_string()),
                Err(e) => Err(e),
            }
        },
    )
    .await;

    // gzip: the exporter compresses when asked, and Prometheus (which always asks for
    // gzip) stores every series of the scrape: as many as a plain scrape has.
    let (gz_encoding, gz_lines) = {
        let resp = http
            .get(format!("{exporter}/metrics"))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        let enc = resp
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_string());
        let body = resp.bytes().await.unwrap();
        // One gzip member holds everything (clients that read only the first
        // member, like `curl --compressed`, get every series).
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text)
            .expect("a gzip body");
        (enc, sample_lines(&text))
    };
    assert_eq!(gz_encoding.as_deref(), Some("gzip"));
    assert!(gz_lines > 100, "{gz_lines} samples in a gzip scrape");
    let scraped = format!(r#"scrape_samples_scraped{{job="{JOB}"}}"#);
    let stored = format!(r#"count({{job="{JOB}", __name__=~"m365_.+|process_.+"}})"#);
    wait_for(
        "Prometheus to store every series of a gzip scrape",
        DATA_TIMEOUT,
        &mut procs,
        || async {
            let plain = sample_lines(&get_ok(&http, &format!("{exporter}/metrics")).await?);
            let one = |r: Vec<Value>| {
                r.first()
                    .and_then(|v| v["value"][1].as_str())
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(-1.0) as usize
            };
            let n_scraped = one(prom_query(&http, &prom, &scraped, true).await??);
            let n_stored = one(prom_query(&http, &prom, &stored, true).await??);
            if n_scraped == plain && n_stored == plain {
                Ok(())
            } else {
                Err(format!(
                    "plain scrape has {plain} samples; Prometheus scraped {n_scraped}, stores {n_stored}"
                ))
            }
        },
    )
    .await;

    // The dashboards' job and tenant variables find the demo.
    let label_values = |label: &'static str, matcher: String| {
        let http = http.clone();
        let prom = prom.clone();
        async move {
            let body: Value = http
                .get(format!("{prom}/api/v1/label/{label}/values"))
                .query(&[("match[]", matcher)])
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            Ok::<Vec<Value>, String>(body["data"].as_array().cloned().unwrap_or_default())
        }
    };
    let jobs = label_values("job", "m365_collector_success".into())
        .await
        .unwrap();
    assert!(
        jobs.contains(&Value::from(JOB)),
        "job variable query finds {jobs:?}"
    );
    let tenants = label_values(
        "tenant",
        format!(r#"m365_collector_success{{job=~"{JOB}"}}"#),
    )
    .await
    .unwrap();
    assert!(
        tenants.contains(&Value::from(TENANT)),
        "tenant variable query finds {tenants:?}"
    );
    // The service selector lists the exported services (the demo exports all 12).
    let services = label_values(
        "service_id",
        format!(r#"m365_service_info{{job=~"{JOB}", tenant=~"{TENANT}"}}"#),
    )
    .await
    .unwrap();
    assert_eq!(
        services.len(),
        12,
        "service_id variable query finds {services:?}"
    );

    // Every panel query: accepted by Prometheus, and with data.
    let mut queries = Vec::new();
    for (file, dash) in grafana::load_dashboards() {
        for panel in grafana::panels(&dash)
            .into_iter()
            .filter(|p| !grafana::is_row(p))
        {
            let title = grafana::panel_title(panel);
            for target in panel["targets"].as_array().into_iter().flatten() {
                let ref_id = target["refId"].as_str().unwrap_or("?").to_string();
                let expr = grafana::substitute(
                    target["expr"].as_str().unwrap_or_default(),
                    JOB,
                    TENANT,
                    RATE_INTERVAL,
                );
                assert!(
                    !expr.contains('$'),
                    "{file} {title:?} {ref_id}: unsubstituted variable in {expr}"
                );
                let instant =
                    target["instant"] == Value::Bool(true) && target["range"] != Value::Bool(true);
                let optional = NO_DATA_IN_DEMO
                    .iter()
                    .find(|(f, t, r, _)| *f == file && *t == title && *r == ref_id)
                    .map(|(_, _, _, why)| *why);
                queries.push((
                    format!("{file}: {title:?} {ref_id}"),
                    expr,
                    instant,
                    optional,
                ));
            }
        }
    }
    assert!(
        queries.len() > 30,
        "only {} panel queries found",
        queries.len()
    );
    wait_for(
        "every dashboard panel to return data",
        DATA_TIMEOUT,
        &mut procs,
        || async {
            let mut empty = Vec::new();
            for (name, expr, instant, optional) in &queries {
                match prom_query(&http, &prom, expr, *instant).await? {
                    Err(e) => panic!("Prometheus rejects the query of {name}: {e}\n{expr}"),
                    Ok(r) if r.is_empty() && optional.is_none() => empty.push(name.clone()),
                    Ok(_) => {}
                }
            }
            if empty.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} panel queries without data:\n  {}",
                    empty.len(),
                    empty.join("\n  ")
                ))
            }
        },
    )
    .await;
    eprintln!(
        "e2e: {} dashboard queries accepted, all with data",
        queries.len()
    );

    // The service alerts fire in Prometheus...
    let firing = |name: &'static str| {
        let http = http.clone();
        let prom = prom.clone();
        async move {
            let alerts: Vec<Value> = alerts_named(&http, &prom, name)
                .await?
                .into_iter()
                .filter(|a| a["state"] == "firing")
                .collect();
            if alerts.is_empty() {
                Err(format!("{name} not firing yet"))
            } else {
                Ok(alerts)
            }
        }
    };
    for name in [
        "M365ServiceIncident",
        "M365ServiceInterruption",
        "M365AppCredentialExpiringSoon",
    ] {
        let alerts = wait_for(
            &format!("{name} to fire"),
            ALERT_TIMEOUT,
            &mut procs,
            || firing(name),
        )
        .await;
        eprintln!("e2e: {name} firing for {} series", alerts.len());
    }

    // ...and reach the webhook through Alertmanager: critical ones at the pager.
    let received_alerts = |receiver: String, alertname: &'static str| {
        let received = received.clone();
        async move {
            let got: Vec<Value> = received
                .lock()
                .unwrap()
                .iter()
                .filter(|(r, _)| *r == receiver)
                .flat_map(|(_, body)| body["alerts"].as_array().cloned().unwrap_or_default())
                .filter(|a| a["labels"]["alertname"] == alertname)
                .collect();
            if got.is_empty() {
                Err(format!("no {alertname} at receiver {receiver} yet"))
            } else {
                Ok(got)
            }
        }
    };
    let paged = wait_for(
        "the interruption alert at the pager webhook",
        ALERT_TIMEOUT,
        &mut procs,
        || received_alerts(pager.clone(), "M365ServiceInterruption"),
    )
    .await;
    for alert in &paged {
        let labels = &alert["labels"];
        assert_eq!(labels["tenant"], TENANT, "tenant label: {alert}");
        assert!(
            labels["service_id"].as_str().is_some_and(|s| !s.is_empty()),
            "service_id label: {alert}"
        );
        assert_eq!(labels["severity"], "critical", "severity label: {alert}");
        let ann = &alert["annotations"];
        for key in ["summary", "description", "runbook_url"] {
            let text = ann[key].as_str().unwrap_or_default();
            assert!(!text.is_empty(), "annotation {key} missing: {alert}");
            assert!(
                !text.contains("{{"),
                "annotation {key} not rendered: {text}"
            );
        }
        let service = labels["service_id"].as_str().unwrap();
        assert!(
            ann["summary"].as_str().unwrap().contains(service),
            "summary names the service: {alert}"
        );
        assert_eq!(
            ann["runbook_url"].as_str().unwrap(),
            format!("{RUNBOOK_BASE}m365serviceinterruption")
        );
    }
    eprintln!(
        "e2e: {} M365ServiceInterruption alert(s) delivered to receiver {pager:?}",
        paged.len()
    );
    // Warnings go to the default receiver, never to the pager.
    let default_receiver = serde_norway::from_str::<serde_norway::Value>(&am_config).unwrap()
        ["route"]["receiver"]
        .as_str()
        .unwrap()
        .to_string();
    for name in ["M365ServiceIncident", "M365AppCredentialExpiringSoon"] {
        let warned = wait_for(
            &format!("the {name} warning at the default receiver"),
            ALERT_TIMEOUT,
            &mut procs,
            || received_alerts(default_receiver.clone(), name),
        )
        .await;
        assert!(warned.iter().all(|a| a["labels"]["severity"] == "warning"));
        eprintln!(
            "e2e: {} {name} alert(s) delivered to receiver {default_receiver:?}",
            warned.len()
        );
    }
    // Quiet by default: SharePoint is degraded by an advisory only in the demo.
    // The optional rule, loaded here, warns about it (so the data to alert on
    // is there); no default rule alerts (nor is pending) about it.
    let not_operational = wait_for(
        "the optional M365ServiceNotOperational for SharePoint",
        ALERT_TIMEOUT,
        &mut procs,
        || firing("M365ServiceNotOperational"),
    )
    .await;
    assert!(
        not_operational
            .iter()
            .any(|a| a["labels"]["service_id"] == "SharePoint"),
        "{not_operational:?}"
    );
    let defaults = rule_names("m365-exporter.rules.yml");
    assert!(!defaults.contains("M365ServiceNotOperational"), "optional");
    let body: Value = http
        .get(format!("{prom}/api/v1/alerts"))
        .send()
        .await
        .expect("Prometheus answers /api/v1/alerts")
        .json()
        .await
        .expect("Prometheus' alerts as JSON");
    assert_eq!(body["status"], "success", "{body}");
    for a in body["data"]["alerts"].as_array().expect("an alert list") {
        let name = a["labels"]["alertname"].as_str().expect("an alertname");
        assert!(
            !defaults.contains(name) || a["labels"]["service_id"] != "SharePoint",
            "a default rule alerts for an advisory-only service: {a}"
        );
    }
    let by_receiver: BTreeMap<String, Vec<String>> = {
        let got = received.lock().unwrap();
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (receiver, body) in got.iter() {
            for a in body["alerts"].as_array().into_iter().flatten() {
                let severity = a["labels"]["severity"].as_str().unwrap_or_default();
                assert_eq!(
                    *receiver == pager,
                    severity == "critical",
                    "alert routed to {receiver} with severity {severity}: {a}"
                );
                map.entry(receiver.clone()).or_default().push(
                    a["labels"]["alertname"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
        }
        map
    };
    eprintln!("e2e: webhook deliveries by receiver: {by_receiver:?}");

    // The exporter is scraped fine: no exporter-down alert. (A failed query
    // is a failure here, not "not firing".)
    let down = alerts_named(&http, &prom, "M365ExporterDown")
        .await
        .expect("Prometheus answers /api/v1/alerts");
    assert!(
        down.iter().all(|a| a["state"] != "firing"),
        "M365ExporterDown fires although the exporter is up: {down:?}"
    );

    server.abort();
    drop(procs);
}

/// The one-scrape-per-tenant job of docs/alerting.md, scraped by a real Prometheus:
/// every series keeps the `tenant` label the exporter gives it (a target label of the
/// same name would rename it to `exported_tenant`), and `up` carries the tenant too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_probe_job_keeps_the_tenant_label() {
    let prometheus_bin = prometheus_binary();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut procs: Vec<ChildGuard> = Vec::new();
    let http = http_client();
    let exporter_port = start_demo(dir.path(), &mut procs, &http).await;

    // The documented job, scraping this exporter's demo tenant every second.
    let mut cfg: serde_norway::Value =
        serde_norway::from_str(&documented_yaml("probe-example")).expect("probe example YAML");
    let job_value = cfg["scrape_configs"][0].clone();
    let job_name = job_value["job_name"]
        .as_str()
        .expect("job_name")
        .to_string();
    let mut job = job_value.as_mapping().expect("a scrape job").clone();
    job.insert("scrape_interval".into(), "1s".into());
    job.insert(
        "static_configs".into(),
        serde_norway::from_str(&format!("[{{targets: [{TENANT}]}}]")).unwrap(),
    );
    let mut pointed = false;
    let relabel = job
        .get_mut("relabel_configs")
        .and_then(|r| r.as_sequence_mut())
        .expect("relabel_configs");
    for rule in relabel.iter_mut() {
        if rule["target_label"] == "__address__" {
            rule.as_mapping_mut().unwrap().insert(
                "replacement".into(),
                format!("127.0.0.1:{exporter_port}").into(),
            );
            pointed = true;
        }
    }
    assert!(pointed, "the probe example sets no __address__");
    cfg.as_mapping_mut().unwrap().insert(
        "scrape_configs".into(),
        vec![serde_norway::Value::Mapping(job)].into(),
    );
    let config = serde_norway::to_string(&cfg).unwrap();
    let prom = start_prometheus(&prometheus_bin, dir.path(), &config, &mut procs, &http).await;

    let up = format!(r#"up{{job="{job_name}", tenant="{TENANT}"}} == 1"#);
    let stored = format!(r#"count({{job="{job_name}", tenant="{TENANT}"}})"#);
    let renamed = format!(r#"count({{job="{job_name}", exported_tenant!=""}})"#);
    wait_for(
        "Prometheus to scrape the probe target",
        STARTUP_TIMEOUT,
        &mut procs,
        || async {
            for (query, want) in [(&up, "up with the tenant label"), (&stored, "series")] {
                match prom_query(&http, &prom, query, true).await? {
                    Ok(r) if !r.is_empty() => {}
                    Ok(_) => return Err(format!("no {want} yet: {query}")),
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        },
    )
    .await;
    match prom_query(&http, &prom, &renamed, true).await.unwrap() {
        Ok(r) => assert!(
            r.is_empty(),
            "the probe job renames the exporter's tenant label to exported_tenant: {r:?}"
        ),
        Err(e) => panic!("{renamed}: {e}"),
    }
}
