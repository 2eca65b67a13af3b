//! Helpers shared by the dashboard and alert-rule tests: loading the shipped Grafana
//! dashboards, walking their panels and targets, substituting Grafana variables, and a
//! small PromQL scanner that finds metric names, the functions around them and the
//! range of every `rate()`/`irate()`/`increase()`.
#![allow(dead_code)]

use m365_exporter::metrics::catalog::{self, Def, Kind};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The shipped dashboards and their fixed uids.
pub const DASHBOARDS: &[(&str, &str)] = &[
    ("m365-service-health.json", "m365-service-health"),
    ("m365-audit-feed.json", "m365-audit-feed"),
    ("m365-exporter.json", "m365-exporter"),
    ("m365-track-record.json", "m365-track-record"),
];

/// Series Prometheus itself records for every target.
pub const PROMETHEUS_METRICS: &[&str] = &[
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// The catalog family a series name belongs to (a histogram's `_bucket`,
/// `_sum` and `_count` belong to it).
pub fn family(name: &str) -> Option<&'static Def> {
    catalog::family_of(name)
}

/// Whether `name` is a series the exporter serves (by the metric catalog,
/// src/metrics/catalog.rs) or one Prometheus records itself.
pub fn is_known_metric(name: &str) -> bool {
    family(name).is_some() || PROMETHEUS_METRICS.contains(&name)
}

/// Whether the family of `name` has a `service_id` label: the service-health
/// dashboard filters it by its `service_id` variable.
pub fn is_service_scoped(name: &str) -> bool {
    family(name).is_some_and(|d| d.labels.contains(&"service_id"))
}

/// Whether the family of `name` has a `tenant` label (else it is
/// exporter-wide: build info, config reload, the request duration histogram).
pub fn is_tenant_scoped(name: &str) -> bool {
    family(name).is_some_and(|d| d.per_tenant())
}

/// Whether `name` is a counter-like series that must only be read through
/// rate()/increase(): a counter, or a histogram's series.
pub fn is_counter(name: &str) -> bool {
    family(name).is_some_and(|d| matches!(d.kind, Kind::Counter | Kind::Histogram))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn load_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// (file name, parsed dashboard) for every shipped dashboard.
pub fn load_dashboards() -> Vec<(String, Value)> {
    DASHBOARDS
        .iter()
        .map(|(file, _)| {
            let path = repo_root().join("dashboards").join(file);
            (file.to_string(), load_json(&path))
        })
        .collect()
}

/// All panels of a dashboard, rows flattened (panels nested in collapsed rows included).
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        if let Some(items) = list.as_array() {
            for p in items {
                out.push(p);
                if let Some(nested) = p.get("panels") {
                    walk(nested, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    if let Some(list) = dashboard.get("panels") {
        walk(list, &mut out);
    }
    out
}

pub fn is_row(panel: &Value) -> bool {
    panel.get("type").and_then(Value::as_str) == Some("row")
}

pub fn panel_title(panel: &Value) -> String {
    panel
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or("<untitled>")
        .to_string()
}

/// The PromQL expressions of a panel's targets, as (refId, expr).
pub fn target_exprs(panel: &Value) -> Vec<(String, String)> {
    panel
        .get("targets")
        .and_then(Value::as_array)
        .map(|targets| {
            targets
                .iter()
                .filter_map(|t| {
                    let expr = t.get("expr")?.as_str()?.to_string();
                    let ref_id = t
                        .get("refId")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string();
                    Some((ref_id, expr))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Replace Grafana's variables so that the expression can be sent to Prometheus as is.
/// `tenant` and `job` are regex values (they are used with `=~`); `service_id` is All.
pub fn substitute(expr: &str, job: &str, tenant: &str, rate_interval: &str) -> String {
    let mut out = expr.to_string();
    for (name, value) in [
        ("__rate_interval", rate_interval),
        ("__interval_ms", "15000"),
        ("__interval", rate_interval),
        ("__range_s", "3600"),
        ("__range_ms", "3600000"),
        ("__range", "1h"),
        ("datasource", "prometheus"),
        ("service_id", ".*"),
        ("tenant", tenant),
        ("job", job),
    ] {
        out = out.replace(&format!("${{{name}}}"), value);
        out = out.replace(&format!("${name}"), value);
    }
    out
}

/// One metric selector found in a PromQL expression.
#[derive(Debug, Clone)]
pub struct MetricUse {
    pub name: String,
    /// The label matchers between `{` and `}` (empty if none).
    pub matchers: String,
    /// Names of the functions enclosing the selector, innermost last.
    pub functions: Vec<String>,
}

/// One call of rate(), irate() or increase() and the range(s) inside it.
#[derive(Debug, Clone)]
pub struct RangeCall {
    pub function: String,
    pub ranges: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Scan {
    pub metrics: Vec<MetricUse>,
    pub range_calls: Vec<RangeCall>,
    pub functions: Vec<String>,
}

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
    "Inf",
    "NaN",
    "atan2",
];
const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];
pub const RANGE_FUNCTIONS: &[&str] = &["rate", "irate", "increase"];

/// Scan a PromQL expression (Grafana variables may still be in it). Not a full parser:
/// good enough for the well-formed expressions of our dashboards and rules, which a real
/// Prometheus also checks in tests/prometheus_e2e.rs and promtool in scripts/check-alerts.sh.
pub fn scan_promql(expr: &str) -> Scan {
    struct Frame {
        function: Option<String>,
        ranges: Vec<String>,
    }
    let chars: Vec<char> = expr.chars().collect();
    let mut scan = Scan::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    let is_ident_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';

    // Returns the index just past the bracket matching the one at `start`.
    let skip_balanced = |start: usize, open: char, close: char| -> (usize, String) {
        let mut depth = 0;
        let mut j = start;
        let mut quote: Option<char> = None;
        while j < chars.len() {
            let c = chars[j];
            if let Some(q) = quote {
                if c == '\\' {
                    j += 1;
                } else if c == q {
                    quote = None;
                }
            } else if c == '"' || c == '\'' || c == '`' {
                quote = Some(c);
            } else if c == open {
                depth += 1;
            } else if c == close {
                depth -= 1;
                if depth == 0 {
                    let inner: String = chars[start + 1..j].iter().collect();
                    return (j + 1, inner);
                }
            }
            j += 1;
        }
        panic!("unbalanced {open}{close} in PromQL: {expr}");
    };

    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != c {
                if chars[j] == '\\' {
                    j += 1;
                }
                j += 1;
            }
            i = j + 1;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '$' {
            // Grafana variable: $name or ${name}
            i += 1;
            if i < chars.len() && chars[i] == '{' {
                let (next, _) = skip_balanced(i, '{', '}');
                i = next;
            } else {
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit()
            || (c == '.' && i + 1 < chars.len() && chars[i + 1].is_ascii_digit())
        {
            while i < chars.len() && (is_ident(chars[i]) || chars[i] == '.') {
                i += 1;
            }
        } else if is_ident_start(c) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let ident: String = chars[start..i].iter().collect();
            let skip_ws = |mut k: usize| {
                while k < chars.len() && chars[k].is_whitespace() {
                    k += 1;
                }
                k
            };
            let mut k = skip_ws(i);
            // `sum by (a, b) (expr)`: skip the grouping clause between operator and `(`.
            if AGGREGATIONS.contains(&ident.as_str()) {
                let rest: String = chars[k..].iter().take(8).collect();
                for kw in ["by", "without"] {
                    let follows = rest.starts_with(kw)
                        && !rest[kw.len()..].starts_with(|c: char| is_ident(c));
                    if follows {
                        let open = skip_ws(k + kw.len());
                        assert_eq!(
                            chars.get(open),
                            Some(&'('),
                            "bad grouping in PromQL: {expr}"
                        );
                        let (after, _) = skip_balanced(open, '(', ')');
                        k = skip_ws(after);
                        break;
                    }
                }
            }
            let next = chars.get(k).copied();
            if LABEL_LIST_KEYWORDS.contains(&ident.as_str()) {
                if next == Some('(') {
                    let (after, _) = skip_balanced(k, '(', ')');
                    i = after;
                }
            } else if KEYWORDS.contains(&ident.as_str()) {
                // operator keyword
            } else if next == Some('(') {
                scan.functions.push(ident.clone());
                stack.push(Frame {
                    function: Some(ident),
                    ranges: Vec::new(),
                });
                i = k + 1;
            } else {
                let matchers = if next == Some('{') {
                    let (after, inner) = skip_balanced(k, '{', '}');
                    i = after;
                    inner
                } else {
                    String::new()
                };
                scan.metrics.push(MetricUse {
                    name: ident,
                    matchers,
                    functions: stack.iter().filter_map(|f| f.function.clone()).collect(),
                });
            }
        } else if c == '{' {
            // selector without a metric name: {__name__="..."}
            let (after, inner) = skip_balanced(i, '{', '}');
            scan.metrics.push(MetricUse {
                name: String::new(),
                matchers: inner,
                functions: stack.iter().filter_map(|f| f.function.clone()).collect(),
            });
            i = after;
        } else if c == '[' {
            let (after, inner) = skip_balanced(i, '[', ']');
            if let Some(top) = stack.last_mut() {
                top.ranges.push(inner);
            }
            i = after;
        } else if c == '(' {
            stack.push(Frame {
                function: None,
                ranges: Vec::new(),
            });
            i += 1;
        } else if c == ')' {
            let frame = stack
                .pop()
                .unwrap_or_else(|| panic!("unbalanced ) in PromQL: {expr}"));
            if let Some(f) = frame.function {
                if RANGE_FUNCTIONS.contains(&f.as_str()) {
                    scan.range_calls.push(RangeCall {
                        function: f,
                        ranges: frame.ranges,
                    });
                }
            }
            i += 1;
        } else {
            i += 1;
        }
    }
    assert!(stack.is_empty(), "unbalanced ( in PromQL: {expr}");
    scan
}
