//! Static checks of the shipped Grafana dashboards (dashboards/*.json) and of the alert
//! rules' conventions (alerts/m365-exporter.rules.yml, docs/runbook.md). No network:
//! tests/prometheus_e2e.rs proves the expressions against a real Prometheus and
//! scripts/check-alerts.sh runs promtool.

mod support;

use support::grafana;
use support::markdown;

use grafana::{
    is_counter, is_known_metric, is_row, is_service_scoped, is_tenant_scoped, load_dashboards,
    panel_title, panels, repo_root, scan_promql, target_exprs, DASHBOARDS, RANGE_FUNCTIONS,
};
use m365_exporter::metrics::catalog;
use markdown::github_anchor;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};

const DS_VARIABLE_UIDS: &[&str] = &["${datasource}", "$datasource"];

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Walk every JSON value; call `f` with (json path, key, value) for each object member.
fn walk(v: &Value, path: &str, f: &mut dyn FnMut(&str, &str, &Value)) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                f(path, k, child);
                walk(child, &format!("{path}.{k}"), f);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, &format!("{path}[{i}]"), f);
            }
        }
        _ => {}
    }
}

#[test]
fn every_dashboard_has_a_fixed_uid_null_id_and_current_schema() {
    let mut uids = HashSet::new();
    for ((file, dash), (_, expected_uid)) in load_dashboards().iter().zip(DASHBOARDS) {
        assert_eq!(str_of(dash, "uid"), Some(*expected_uid), "{file}: uid");
        assert!(uids.insert(expected_uid), "{file}: duplicate uid");
        assert!(
            dash.get("id").is_some_and(Value::is_null),
            "{file}: id must be null"
        );
        let schema = dash
            .get("schemaVersion")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        assert!(
            (36..=41).contains(&schema),
            "{file}: schemaVersion {schema}"
        );
        assert!(
            str_of(dash, "title").is_some_and(|t| t.starts_with("M365 ")),
            "{file}: title"
        );
        assert!(
            str_of(dash, "description").is_some_and(|d| !d.is_empty()),
            "{file}: description"
        );
        assert!(
            dash.get("panels")
                .and_then(Value::as_array)
                .is_some_and(|p| !p.is_empty()),
            "{file}: no panels"
        );
    }
}

#[test]
fn variables_datasource_job_and_tenant() {
    for (file, dash) in load_dashboards() {
        let vars = dash["templating"]["list"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: templating.list missing"));
        let var = |name: &str| {
            vars.iter()
                .find(|v| str_of(v, "name") == Some(name))
                .unwrap_or_else(|| panic!("{file}: variable `{name}` missing"))
        };
        let ds = var("datasource");
        assert_eq!(
            str_of(ds, "type"),
            Some("datasource"),
            "{file}: datasource type"
        );
        assert_eq!(
            str_of(ds, "query"),
            Some("prometheus"),
            "{file}: datasource query"
        );
        for name in ["job", "tenant"] {
            let v = var(name);
            assert_eq!(str_of(v, "type"), Some("query"), "{file}: {name} type");
            assert_eq!(
                v.get("multi"),
                Some(&Value::Bool(true)),
                "{file}: {name} multi"
            );
            assert_eq!(
                v.get("includeAll"),
                Some(&Value::Bool(true)),
                "{file}: {name} includeAll"
            );
            assert_eq!(str_of(v, "allValue"), Some(".*"), "{file}: {name} allValue");
            let uid = v["datasource"]["uid"].as_str().unwrap_or_default();
            assert!(
                DS_VARIABLE_UIDS.contains(&uid),
                "{file}: {name} must query ${{datasource}}, not {uid:?}"
            );
            // label_values(metric{...}, label): the metric must exist
            let query = v["query"]["query"]
                .as_str()
                .or_else(|| v["query"].as_str())
                .unwrap_or_default();
            let inner = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .unwrap_or_else(|| panic!("{file}: {name} query {query:?}"));
            let (selector, label) = inner.rsplit_once(',').expect("label_values(metric, label)");
            assert_eq!(label.trim(), name, "{file}: {name} query label");
            let metric = selector.split('{').next().unwrap_or_default().trim();
            assert!(
                is_known_metric(metric),
                "{file}: {name} query metric {metric}"
            );
        }
    }
}

/// The service-health dashboard's `service_id` variable lists the exported services
/// (so it follows `service_health.services`), and every service-scoped query honours it.
#[test]
fn service_health_dashboard_has_a_service_selector_that_follows_the_exported_set() {
    let (file, dash) = load_dashboards()
        .into_iter()
        .find(|(f, _)| f == "m365-service-health.json")
        .expect("service-health dashboard");
    let vars = dash["templating"]["list"].as_array().expect("variables");
    let v = vars
        .iter()
        .find(|v| str_of(v, "name") == Some("service_id"))
        .unwrap_or_else(|| panic!("{file}: variable `service_id` missing"));
    assert_eq!(str_of(v, "type"), Some("query"));
    assert_eq!(v.get("multi"), Some(&Value::Bool(true)));
    assert_eq!(v.get("includeAll"), Some(&Value::Bool(true)));
    assert_eq!(str_of(v, "allValue"), Some(".*"));
    assert_eq!(
        v["query"]["query"].as_str(),
        Some(r#"label_values(m365_service_info{job=~"$job", tenant=~"$tenant"}, service_id)"#)
    );
    let mut seen = 0;
    for panel in panels(&dash).into_iter().filter(|p| !is_row(p)) {
        for (ref_id, expr) in target_exprs(panel) {
            for m in scan_promql(&expr).metrics {
                if is_service_scoped(&m.name) {
                    seen += 1;
                    assert!(
                        m.matchers.contains(r#"service_id=~"$service_id""#),
                        "{file}: {:?} {ref_id}: {} must filter service_id=~\"$service_id\"",
                        panel_title(panel),
                        m.name
                    );
                }
            }
        }
    }
    assert!(seen >= 5, "{file}: only {seen} service-scoped selectors");
    // The other dashboards have no service-scoped panel, hence no selector.
    for (file, dash) in load_dashboards() {
        if file != "m365-service-health.json" {
            let vars = dash["templating"]["list"].as_array().unwrap();
            assert!(vars.iter().all(|v| str_of(v, "name") != Some("service_id")));
        }
    }
}

#[test]
fn no_hard_coded_datasource_anywhere() {
    for (file, dash) in load_dashboards() {
        walk(&dash, "$", &mut |path, key, value| {
            if key != "datasource" || path == "$.templating.list[0]" {
                return;
            }
            match value {
                Value::Object(_) => {
                    let uid = str_of(value, "uid").unwrap_or_default();
                    assert!(
                        DS_VARIABLE_UIDS.contains(&uid),
                        "{file}: {path}.datasource has uid {uid:?}: use ${{datasource}}"
                    );
                    assert_eq!(str_of(value, "type"), Some("prometheus"), "{file}: {path}");
                }
                Value::String(s) => assert!(
                    DS_VARIABLE_UIDS.contains(&s.as_str()),
                    "{file}: {path}.datasource is {s:?}: use ${{datasource}}"
                ),
                other => panic!("{file}: {path}.datasource is {other}"),
            }
        });
    }
}

#[test]
fn every_panel_has_datasource_unit_description_gridpos_and_targets() {
    for (file, dash) in load_dashboards() {
        let mut ids = HashSet::new();
        let mut rects = Vec::new();
        for panel in panels(&dash) {
            let title = panel_title(panel);
            let id = panel.get("id").and_then(Value::as_i64);
            assert!(id.is_some(), "{file}: panel {title:?} has no id");
            assert!(ids.insert(id), "{file}: duplicate panel id {id:?}");
            let g = &panel["gridPos"];
            let dims: Vec<i64> = ["x", "y", "w", "h"]
                .iter()
                .map(|k| {
                    g.get(k)
                        .and_then(Value::as_i64)
                        .unwrap_or_else(|| panic!("{file}: {title:?} gridPos.{k}"))
                })
                .collect();
            let (x, y, w, h) = (dims[0], dims[1], dims[2], dims[3]);
            assert!(
                x >= 0 && w > 0 && h > 0 && x + w <= 24,
                "{file}: {title:?} gridPos"
            );
            for (other, ox, oy, ow, oh) in &rects {
                let overlap = x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h;
                assert!(!overlap, "{file}: {title:?} overlaps {other:?}");
            }
            rects.push((title.clone(), x, y, w, h));
            if is_row(panel) {
                continue;
            }
            assert!(
                str_of(panel, "description").is_some_and(|d| d.len() > 10),
                "{file}: panel {title:?} needs a description"
            );
            let unit = panel["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .unwrap_or_default();
            assert!(!unit.is_empty(), "{file}: panel {title:?} needs a unit");
            let ds = panel["datasource"]["uid"].as_str().unwrap_or_default();
            assert!(
                DS_VARIABLE_UIDS.contains(&ds),
                "{file}: panel {title:?} datasource {ds:?}"
            );
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            assert!(!targets.is_empty(), "{file}: panel {title:?} has no target");
            let mut refs = HashSet::new();
            for t in &targets {
                let uid = t["datasource"]["uid"].as_str().unwrap_or_default();
                assert!(
                    DS_VARIABLE_UIDS.contains(&uid),
                    "{file}: {title:?} target datasource {uid:?}"
                );
                assert!(
                    str_of(t, "expr").is_some_and(|e| !e.trim().is_empty()),
                    "{file}: {title:?} target without expr"
                );
                assert!(refs.insert(str_of(t, "refId")), "{file}: {title:?} refId");
            }
        }
    }
}

#[test]
fn queries_use_known_metrics_counters_in_rate_and_rate_interval() {
    let mut used = BTreeSet::new();
    for (file, dash) in load_dashboards() {
        for panel in panels(&dash).into_iter().filter(|p| !is_row(p)) {
            let title = panel_title(panel);
            for (ref_id, expr) in target_exprs(panel) {
                let at = format!("{file}: panel {title:?} target {ref_id}");
                let scan = scan_promql(&expr);
                assert!(!scan.metrics.is_empty(), "{at}: no metric in {expr}");
                for m in &scan.metrics {
                    assert!(
                        is_known_metric(&m.name),
                        "{at}: metric {:?} is not in the metric catalog (docs/metrics.md)",
                        m.name
                    );
                    used.insert(m.name.clone());
                    if is_counter(&m.name) {
                        let inner = m.functions.last().map(String::as_str).unwrap_or("");
                        assert!(
                            RANGE_FUNCTIONS.contains(&inner),
                            "{at}: counter {} must be read through rate()/increase(), not {inner:?}",
                            m.name
                        );
                    }
                    // Every selector honours the job variable; tenant-scoped ones the tenant variable.
                    assert!(
                        m.matchers.contains(r#"job=~"$job""#),
                        "{at}: {} must filter job=~\"$job\"",
                        m.name
                    );
                    // Exporter-wide series (build info, config reload, the request
                    // duration histogram) carry no tenant.
                    if is_tenant_scoped(&m.name) {
                        assert!(
                            m.matchers.contains(r#"tenant=~"$tenant""#),
                            "{at}: {} must filter tenant=~\"$tenant\"",
                            m.name
                        );
                    }
                }
                // Ranges: see counts_over_fixed_windows_rates_with_units.
            }
        }
    }
    // The dashboards together show every metric of the catalog.
    for d in catalog::all() {
        let shown = used.iter().any(|u| d.series_names().contains(u));
        assert!(shown, "no dashboard panel shows {}", d.name);
    }
}

#[test]
fn promql_scanner_understands_our_expressions() {
    let scan = scan_promql(
        r#"histogram_quantile(0.9, sum by (tenant, le) (rate(m365_activity_record_delay_seconds_bucket{job=~"$job"}[$__rate_interval])))
        or max without (instance) (time() - m365_collector_last_success_timestamp_seconds{a="b"}) * on (tenant) group_left (x) up"#,
    );
    let names: Vec<_> = scan.metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "m365_activity_record_delay_seconds_bucket",
            "m365_collector_last_success_timestamp_seconds",
            "up"
        ]
    );
    assert_eq!(
        scan.metrics[0].functions,
        ["histogram_quantile", "sum", "rate"]
    );
    assert_eq!(scan.range_calls.len(), 1);
    assert_eq!(scan.range_calls[0].ranges, ["$__rate_interval"]);
    let bad = scan_promql("rate(m365_api_requests_total[5m])");
    assert_eq!(bad.range_calls[0].ranges, ["5m"]);
    let bare = scan_promql("m365_api_requests_total");
    assert!(bare.metrics[0].functions.is_empty());
}

// ---- alert rules ---------------------------------------------------------------------

/// The runbook links' base: `repository` of Cargo.toml (scripts/runbook-url.sh).
const RUNBOOK_BASE: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/docs/runbook.md#");

/// The default rules (alerts/m365-exporter.rules.yml).
const REQUIRED_ALERTS: &[&str] = &[
    "M365ServiceIncident",
    "M365ServiceInterruption",
    "M365AuditFeedStalled",
    "M365AuditBlobLagHigh",
    "M365AuditBacklogGrowing",
    "M365AuditContentExpired",
    "M365AuditSubscriptionDisabled",
    "M365APIThrottled",
    "M365CollectorFailing",
    "M365CollectorStale",
    "M365ExporterDown",
    "M365ExporterRestarting",
    "M365TokenRenewalFailing",
    "M365CertificateExpiringSoon",
    "M365AppCredentialExpiringSoon",
];

/// Rules an operator loads on purpose (alerts/optional/*.rules.yml).
const OPTIONAL_ALERTS: &[&str] = &["M365ServiceNotOperational"];

const DEFAULT_RULES: &str = "alerts/m365-exporter.rules.yml";

fn load_yaml(rel: &str) -> serde_norway::Value {
    let path = repo_root().join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not YAML: {e}"))
}

/// Files under `dir` (relative to the repository) ending in `suffix`, sorted.
fn files_in(dir: &str, suffix: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(repo_root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    out.sort();
    out
}

/// The alerting rules of one rule file.
fn rules_of(rel: &str) -> Vec<serde_norway::Value> {
    let doc = load_yaml(rel);
    doc["groups"]
        .as_sequence()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_sequence().cloned().unwrap_or_default())
        .filter(|r| r.get("alert").is_some())
        .collect()
}

/// Every shipped alerting rule: the default file and the optional ones.
fn alert_rules() -> Vec<serde_norway::Value> {
    let mut files = vec![DEFAULT_RULES.to_string()];
    files.extend(files_in("alerts/optional", ".rules.yml"));
    files.iter().flat_map(|f| rules_of(f)).collect()
}

fn names(rules: &[serde_norway::Value]) -> BTreeSet<String> {
    rules
        .iter()
        .filter_map(|r| r["alert"].as_str().map(str::to_string))
        .collect()
}

fn parse_duration_secs(d: &str) -> u64 {
    let (num, unit) = d.split_at(d.find(|c: char| !c.is_ascii_digit()).unwrap_or(d.len()));
    let n: u64 = num.parse().unwrap_or_else(|_| panic!("bad duration {d}"));
    n * match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => panic!("unsupported duration {d}"),
    }
}

#[test]
fn alert_rules_follow_conventions_and_link_the_runbook() {
    let runbook =
        std::fs::read_to_string(repo_root().join("docs/runbook.md")).expect("docs/runbook.md");
    let anchors: HashSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## ").or_else(|| l.strip_prefix("### ")))
        .map(github_anchor)
        .collect();
    let rules = alert_rules();
    let names: HashSet<&str> = rules.iter().filter_map(|r| r["alert"].as_str()).collect();
    for required in REQUIRED_ALERTS.iter().chain(OPTIONAL_ALERTS) {
        assert!(names.contains(required), "alert {required} missing");
    }
    for rule in &rules {
        let name = rule["alert"].as_str().unwrap();
        assert!(
            name.starts_with("M365")
                && name.chars().all(|c| c.is_ascii_alphanumeric())
                && name[4..].starts_with(|c: char| c.is_ascii_uppercase()),
            "{name}: CamelCase with prefix M365"
        );
        let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "{name}: severity {severity:?}"
        );
        let for_secs = parse_duration_secs(rule["for"].as_str().unwrap_or("0s"));
        assert!(
            for_secs >= 60,
            "{name}: `for` must be at least 1m so a blip never pages"
        );
        let ann = &rule["annotations"];
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                ann[key].as_str().is_some_and(|s| !s.trim().is_empty()),
                "{name}: annotation {key}"
            );
        }
        assert!(
            ann["description"].as_str().unwrap().contains("{{"),
            "{name}: description must be templated"
        );
        let url = ann["runbook_url"].as_str().unwrap();
        let anchor = url
            .strip_prefix(RUNBOOK_BASE)
            .unwrap_or_else(|| panic!("{name}: runbook_url must start with {RUNBOOK_BASE}"));
        assert_eq!(anchor, name.to_lowercase(), "{name}: runbook anchor");
        assert!(
            anchors.contains(anchor),
            "{name}: docs/runbook.md has no heading for #{anchor}"
        );
        let expr = rule["expr"].as_str().unwrap();
        let scan = scan_promql(expr);
        for m in &scan.metrics {
            assert!(
                is_known_metric(&m.name),
                "{name}: unknown metric {}",
                m.name
            );
            if is_counter(&m.name) {
                let inner = m.functions.last().map(String::as_str).unwrap_or("");
                assert!(
                    RANGE_FUNCTIONS.contains(&inner),
                    "{name}: counter {} outside rate()",
                    m.name
                );
            }
        }
        // Tenant-scoped alerts keep the tenant label: no aggregation that drops it.
        if scan.metrics.iter().any(|m| m.name.starts_with("m365_")) {
            for agg in ["sum by", "max by", "min by", "avg by", "count by"] {
                if let Some(pos) = expr.find(agg) {
                    let clause = &expr[pos..expr[pos..].find(')').map_or(expr.len(), |e| pos + e)];
                    assert!(
                        clause.contains("tenant"),
                        "{name}: `{agg}` must keep tenant"
                    );
                }
            }
        }
        if name.starts_with("M365Service") {
            assert!(
                !expr.contains(" by (") && !expr.contains("without"),
                "{name}: service alerts keep tenant and service_id"
            );
        }
    }
}

#[test]
fn every_alert_has_a_firing_and_a_quiet_unit_test() {
    let mut fires = HashSet::new();
    let mut quiet = HashSet::new();
    let mut test_files = files_in("alerts/tests", ".yml");
    test_files.extend(files_in("alerts/optional/tests", ".yml"));
    for rel in test_files {
        let doc = load_yaml(&rel);
        for test in doc["tests"].as_sequence().cloned().unwrap_or_default() {
            for case in test["alert_rule_test"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
            {
                let name = case["alertname"].as_str().unwrap_or_default().to_string();
                let expected = case["exp_alerts"].as_sequence().map_or(0, Vec::len);
                if expected > 0 {
                    fires.insert(name);
                } else {
                    quiet.insert(name);
                }
            }
        }
    }
    for rule in alert_rules() {
        let name = rule["alert"].as_str().unwrap().to_string();
        assert!(
            fires.contains(&name),
            "{name}: no promtool test where it fires"
        );
        assert!(
            quiet.contains(&name),
            "{name}: no promtool test where it must not fire"
        );
    }
}

/// Quiet by default: the default rules page on incidents and interruptions, never on
/// an advisory or a bare "not operational"; that rule is optional, and the list of
/// paging alerts in docs/alerting.md is the default file's critical alerts.
#[test]
fn default_rules_are_quiet_and_the_readme_lists_what_pages() {
    let default = rules_of(DEFAULT_RULES);
    let default_names = names(&default);
    for name in OPTIONAL_ALERTS {
        assert!(
            !default_names.contains(*name),
            "{name} is optional: it belongs in alerts/optional/, not {DEFAULT_RULES}"
        );
    }
    for rule in &default {
        let name = rule["alert"].as_str().unwrap();
        let expr = rule["expr"].as_str().unwrap();
        assert!(
            !expr.contains("m365_service_operational") && !expr.contains("advisory"),
            "{name}: a default rule must not alert on advisories or bare non-operational status"
        );
    }
    let incident = default
        .iter()
        .find(|r| r["alert"] == "M365ServiceIncident")
        .unwrap();
    assert!(incident["expr"]
        .as_str()
        .unwrap()
        .contains(r#"classification="incident""#));
    assert_eq!(incident["for"].as_str(), Some("10m"));
    assert_eq!(incident["labels"]["severity"].as_str(), Some("warning"));
    let optional: BTreeSet<String> = files_in("alerts/optional", ".rules.yml")
        .iter()
        .flat_map(|f| names(&rules_of(f)))
        .collect();
    assert_eq!(
        optional,
        OPTIONAL_ALERTS.iter().map(|s| s.to_string()).collect()
    );
    let app = default
        .iter()
        .filter(|r| r["alert"] == "M365AppCredentialExpiringSoon")
        .map(|r| r["labels"]["severity"].as_str().unwrap_or_default())
        .collect::<BTreeSet<_>>();
    assert_eq!(app, BTreeSet::from(["critical", "warning"]));

    let doc =
        std::fs::read_to_string(repo_root().join("docs/alerting.md")).expect("docs/alerting.md");
    let line = doc
        .lines()
        .find(|l| l.starts_with("Critical alerts (they page):"))
        .expect("docs/alerting.md: a line starting with `Critical alerts (they page):`");
    let listed: BTreeSet<String> = line
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    let critical: BTreeSet<String> = default
        .iter()
        .filter(|r| r["labels"]["severity"] == "critical")
        .filter_map(|r| r["alert"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        listed, critical,
        "docs/alerting.md's paging list vs {DEFAULT_RULES}"
    );
}

// ---- dashboards a Grafana user can trust ---------------------------------------------

/// Severities of the default rules' alerts, by name (an alert may have several rules).
fn alert_severities() -> Vec<(String, String, String)> {
    rules_of(DEFAULT_RULES)
        .iter()
        .map(|r| {
            (
                r["alert"].as_str().unwrap_or_default().to_string(),
                r["labels"]["severity"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                r["expr"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// (file name, dashboard) of one shipped dashboard.
fn dashboard_named(file: &str) -> (String, Value) {
    load_dashboards()
        .into_iter()
        .find(|(f, _)| f == file)
        .unwrap_or_else(|| panic!("no dashboard {file}"))
}

/// `1h`, `10m`, `30s`, `1d`: a literal PromQL duration (not a Grafana variable).
fn is_fixed_window(range: &str) -> bool {
    let digits = range.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && ["s", "m", "h", "d", "w"].contains(&&range[digits.len()..])
}

/// Units of a per-second rate, and of a share of two rates.
const RATE_UNITS: &[&str] = &["reqps", "ops", "cps", "rps", "wps", "iops", "percentunit"];

/// Counts do not change with the zoom: increase() only over a fixed window that the
/// title names ("per hour"); rates (rate()/irate()) are shown in rate units (or as a
/// share), never as a bare number.
#[test]
fn counts_over_fixed_windows_rates_with_units() {
    let mut counts = 0;
    for (file, dash) in load_dashboards() {
        for panel in panels(&dash).into_iter().filter(|p| !is_row(p)) {
            let title = panel_title(panel);
            let unit = panel["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .unwrap_or_default();
            for (ref_id, expr) in target_exprs(panel) {
                let at = format!("{file}: panel {title:?} target {ref_id}");
                let scan = scan_promql(&expr);
                for call in &scan.range_calls {
                    for range in &call.ranges {
                        match call.function.as_str() {
                            "increase" => {
                                assert!(
                                    is_fixed_window(range),
                                    "{at}: increase(…[{range}]) changes value with the zoom: \
                                     count over a fixed window (e.g. [1h], \"per hour\") or show a rate"
                                );
                                let per = match range.as_str() {
                                    "1h" => "per hour",
                                    "1d" | "24h" => "per day",
                                    other => panic!("{at}: name the window [{other}] in the title"),
                                };
                                assert!(
                                    title.contains(per),
                                    "{at}: increase(…[{range}]): the title must say {per:?}"
                                );
                                counts += 1;
                            }
                            _ => assert!(
                                range == "$__rate_interval" || is_fixed_window(range),
                                "{at}: {}(…[{range}]): use [$__rate_interval] or an alert's window",
                                call.function
                            ),
                        }
                    }
                }
                // A rate outside histogram_quantile() is per second: it needs a rate unit.
                let shows_rate = scan.metrics.iter().any(|m| {
                    matches!(
                        m.functions.last().map(String::as_str),
                        Some("rate" | "irate")
                    ) && !m.functions.iter().any(|f| f == "histogram_quantile")
                });
                if shows_rate {
                    assert!(
                        RATE_UNITS.contains(&unit),
                        "{at}: shows a rate in unit {unit:?}: use one of {RATE_UNITS:?}"
                    );
                }
            }
        }
    }
    assert!(counts >= 4, "only {counts} hourly counts");
}

/// The M365APIThrottled ratio is on a panel: the same expression and window, in
/// percentunit, with the alert's line drawn.
#[test]
fn throttled_share_panel_shows_what_the_alert_watches() {
    let (_, _, alert_expr) = alert_severities()
        .into_iter()
        .find(|(name, _, _)| name == "M365APIThrottled")
        .expect("M365APIThrottled");
    let (ratio, line) = alert_expr
        .rsplit_once('>')
        .expect("M365APIThrottled: `ratio > threshold`");
    let line: f64 = line.trim().parse().expect("threshold");
    let normalise = |e: &str| {
        e.replace(r#"{job=~"$job", tenant=~"$tenant"}"#, "")
            .split_whitespace()
            .collect::<String>()
    };
    let (file, dash) = dashboard_named("m365-exporter.json");
    let panel = panels(&dash)
        .into_iter()
        .find(|p| {
            target_exprs(p)
                .iter()
                .any(|(_, e)| normalise(e).starts_with(&normalise(ratio)))
        })
        .unwrap_or_else(|| panic!("{file}: no panel shows the M365APIThrottled ratio {ratio}"));
    let title = panel_title(panel);
    let d = &panel["fieldConfig"]["defaults"];
    assert_eq!(d["unit"], "percentunit", "{title}");
    let steps = d["thresholds"]["steps"].as_array().expect("thresholds");
    assert!(
        steps.iter().any(|s| s["value"].as_f64() == Some(line)),
        "{title}: no threshold step at the alert's {line}"
    );
    let style = d["custom"]["thresholdsStyle"]["mode"]
        .as_str()
        .unwrap_or("off");
    assert!(style != "off", "{title}: the threshold is not drawn");
    assert!(
        str_of(panel, "description").is_some_and(|t| t.contains("M365APIThrottled")),
        "{title}: the description names the alert"
    );
}

/// Stat colours follow the alert policy: red only where a critical alert pages,
/// orange or yellow where a warning alert fires, each alert named in the panel's
/// description. The service-health headline is what pages (an interruption), not
/// advisories or a bare "not operational", which never colour a stat.
#[test]
fn headline_stats_follow_the_alert_policy() {
    let alerts = alert_severities();
    let has =
        |name: &str, severity: &str| alerts.iter().any(|(n, s, _)| n == name && s == severity);
    let mut coloured = 0;
    for (file, dash) in load_dashboards() {
        for panel in panels(&dash) {
            let kind = str_of(panel, "type").unwrap_or_default();
            if !["stat", "gauge", "bargauge"].contains(&kind) {
                continue;
            }
            let title = panel_title(panel);
            let description = str_of(panel, "description").unwrap_or_default();
            let named: Vec<&str> = description
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| w.starts_with("M365") && w.len() > 4)
                .collect();
            let exprs: Vec<String> = target_exprs(panel).into_iter().map(|(_, e)| e).collect();
            let informational = exprs
                .iter()
                .any(|e| e.contains("m365_service_operational") || e.contains("advisory"));
            let steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for step in steps {
                let colour = step["color"].as_str().unwrap_or_default();
                let severity = match colour {
                    "red" | "dark-red" | "semi-dark-red" => "critical",
                    "orange" | "yellow" | "dark-orange" | "dark-yellow" => "warning",
                    _ => continue,
                };
                coloured += 1;
                assert!(
                    !informational,
                    "{file}: {title:?} is {colour} on advisories or bare non-operational \
                     status, which no default alert pages on"
                );
                assert!(
                    named.iter().any(|n| has(n, severity)),
                    "{file}: {title:?} turns {colour}: its description must name the {severity} \
                     alert that fires there (named: {named:?})"
                );
            }
        }
    }
    assert!(coloured >= 8, "only {coloured} coloured steps");
    // The first thing on the service-health dashboard is what pages.
    let (file, dash) = dashboard_named("m365-service-health.json");
    let first = panels(&dash)
        .into_iter()
        .find(|p| p["gridPos"]["x"] == 0 && p["gridPos"]["y"] == 0)
        .expect("a panel at the top left");
    assert_eq!(str_of(first, "type"), Some("stat"), "{file}: headline");
    let exprs: String = target_exprs(first).into_iter().map(|(_, e)| e).collect();
    assert!(
        exprs.contains(r#"status="serviceInterruption""#),
        "{file}: the headline {:?} is not the interruption that pages: {exprs}",
        panel_title(first)
    );
}

/// Grafana's import asks for the data source (`__inputs`), which becomes the default of
/// the `datasource` variable; panels keep using the variable, so a provisioned dashboard
/// (provisioning ignores `__inputs`) still works. `__requires` names every panel type.
#[test]
fn dashboards_import_with_a_data_source_prompt() {
    for (file, dash) in load_dashboards() {
        let inputs = dash["__inputs"].as_array().unwrap_or_else(|| {
            panic!("{file}: no __inputs: import would not ask for a data source")
        });
        assert_eq!(inputs.len(), 1, "{file}: one data source input");
        let input = &inputs[0];
        assert_eq!(input["type"], "datasource", "{file}");
        assert_eq!(input["pluginId"], "prometheus", "{file}");
        let name = input["name"].as_str().expect("input name");
        let placeholder = format!("${{{name}}}");
        let var = &dash["templating"]["list"][0];
        assert_eq!(var["name"], "datasource", "{file}");
        assert_eq!(
            var["current"]["value"].as_str(),
            Some(placeholder.as_str()),
            "{file}: the datasource variable must default to the imported data source"
        );
        // Only the variable's default names the input: panels go through the variable.
        let text = serde_json::to_string(&dash["panels"]).unwrap();
        assert!(
            !text.contains(&placeholder),
            "{file}: a panel uses {placeholder} directly (breaks provisioning)"
        );
        let requires = dash["__requires"].as_array().expect("__requires");
        let required =
            |kind: &str, id: &str| requires.iter().any(|r| r["type"] == kind && r["id"] == id);
        assert!(required("grafana", "grafana"), "{file}: __requires grafana");
        assert!(
            required("datasource", "prometheus"),
            "{file}: __requires prometheus"
        );
        for panel in panels(&dash).into_iter().filter(|p| !is_row(p)) {
            let kind = str_of(panel, "type").unwrap_or_default();
            assert!(
                required("panel", kind),
                "{file}: __requires lacks panel {kind}"
            );
        }
    }
}
