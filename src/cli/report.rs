//! `m365-exporter report`: Microsoft's track record per tenant and service,
//! fetched once and printed for a service review — a text table, a
//! Markdown table to paste into a monthly review, or CSV for a spreadsheet.
//!
//! Same clients and same computation as the `service_health` collector
//! (healthOverviews and issues through the tenant's API client, the service
//! selection, [`crate::collect::history::compute`]), so the figures are
//! those `/metrics` serves for the same window.

use crate::api::graph::GraphClient;
use crate::api::ApiError;
use crate::collect::build::{api_client, http_client};
use crate::collect::history::{self, percent, Figures, ServiceRecord, TrackRecord, Window};
use crate::collect::services::ServiceFilter;
use crate::collect::RuntimeOptions;
use crate::config::{format_duration, TenantConfig};
use crate::metrics::Live;
use crate::timefmt::rfc3339;
use futures::stream::{self, StreamExt};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    /// Markdown tables, to paste into a review.
    Markdown,
    /// One row per tenant and service, in the metrics' units (seconds, ratio).
    Csv,
}

/// Tenants fetched at once (an MSP's hundreds finish in minutes, and no
/// tenant sees more than its two list calls at a time).
const CONCURRENCY: usize = 8;

/// One tenant's track record, or why it could not be read.
pub struct TenantReport {
    pub tenant: String,
    pub result: Result<TrackRecord, String>,
}

/// Fetch every tenant's lists once and compute their track records over
/// `window` (None: each tenant's `service_health.history_window`), in the
/// order given.
pub async fn fetch_all(
    tenants: &[TenantConfig],
    window: Option<Duration>,
    opts: &RuntimeOptions,
) -> Vec<TenantReport> {
    let http = http_client(opts);
    let live = Arc::new(Live::new());
    stream::iter(tenants)
        .map(|t| {
            let (http, live) = (http.clone(), live.clone());
            async move {
                let length = window.unwrap_or(t.service_health.history_window);
                TenantReport {
                    tenant: t.name.clone(),
                    result: fetch(t, length, &http, &live, opts).await,
                }
            }
        })
        .buffered(CONCURRENCY)
        .collect()
        .await
}

async fn fetch(
    t: &TenantConfig,
    length: Duration,
    http: &reqwest::Client,
    live: &Arc<Live>,
    opts: &RuntimeOptions,
) -> Result<TrackRecord, String> {
    let graph = GraphClient::new(api_client(t, http, live, opts), &t.endpoints.graph);
    let (overviews, issues) = tokio::try_join!(graph.health_overviews(), graph.issues())
        .map_err(|e| explain(&t.name, &e))?;
    let filter = ServiceFilter::new(&t.name, t.service_health.services.clone());
    let (overviews, issues) = filter.health(overviews, issues);
    let window = Window {
        end: crate::timefmt::now_unix(),
        length: length.as_secs_f64(),
    };
    Ok(history::compute(&overviews, &issues, window))
}

/// One line saying what failed, and what to do about a missing permission.
fn explain(tenant: &str, e: &ApiError) -> String {
    match e {
        ApiError::Status { status: 403, .. } => format!(
            "tenant {tenant}: {e}: the app registration needs the Microsoft Graph application \
             permission ServiceHealth.Read.All, with admin consent"
        ),
        _ => format!("tenant {tenant}: {e}"),
    }
}

/// The report of every tenant that could be read.
pub fn render(reports: &[TenantReport], format: Format) -> String {
    let ok = reports
        .iter()
        .filter_map(|r| r.result.as_ref().ok().map(|t| (r.tenant.as_str(), t)));
    match format {
        Format::Table => ok.map(|(n, t)| table(n, t)).collect::<Vec<_>>().join("\n"),
        Format::Markdown => ok
            .map(|(n, t)| markdown(n, t))
            .collect::<Vec<_>>()
            .join("\n"),
        Format::Csv => {
            let mut out = csv_line(&CSV_COLUMNS.map(String::from));
            for (n, t) in ok {
                for s in by_availability(t) {
                    out.push_str(&csv_line(&csv_row(n, t, s)));
                }
            }
            out
        }
    }
}

/// Least available first (what a review discusses), then by name.
fn by_availability(t: &TrackRecord) -> Vec<&ServiceRecord> {
    let mut rows: Vec<&ServiceRecord> = t.services.iter().collect();
    rows.sort_by(|a, b| {
        a.availability(&t.window)
            .total_cmp(&b.availability(&t.window))
            .then(b.incident.in_window.cmp(&a.incident.in_window))
            .then(a.name.cmp(&b.name))
    });
    rows
}

/// `30 days to 2026-12-01T00:00:00Z`.
fn heading(t: &TrackRecord) -> String {
    format!(
        "{} to {}",
        format_duration(Duration::from_secs_f64(t.window.length.max(0.0))),
        rfc3339(t.window.end as i64)
    )
}

fn minutes(secs: f64) -> String {
    format!("{:.0}", secs / 60.0)
}

/// `2d 4h`, `3h 20m`, `45m`, or `—` when there is nothing to say.
fn duration(secs: Option<f64>) -> String {
    match secs {
        None => "—".into(),
        Some(s) => {
            let s = s.max(0.0).round() as u64;
            let (d, h, m) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60);
            match (d, h) {
                (0, 0) => format!("{m}m"),
                (0, h) => format!("{h}h {m}m"),
                (d, h) => format!("{d}d {h}h"),
            }
        }
    }
}

/// `started/resolved`.
fn counts(f: &Figures) -> String {
    format!("{}/{}", f.started, f.resolved)
}

/// The columns of the service tables (text and Markdown).
const HEADERS: [&str; 8] = [
    "Service",
    "Availability",
    "Incident min",
    "Advisory min",
    "Incidents started/resolved",
    "Advisories started/resolved",
    "Incident time to resolve mean/max",
    "Post-incident reviews",
];

fn service_cells(t: &TrackRecord, s: &ServiceRecord) -> [String; 8] {
    [
        s.name.clone(),
        percent(s.availability(&t.window)),
        minutes(s.incident.impact_seconds),
        minutes(s.advisory.impact_seconds),
        counts(&s.incident),
        counts(&s.advisory),
        format!(
            "{} / {}",
            duration(s.incident.time_to_resolve_mean()),
            duration(s.incident.time_to_resolve_max())
        ),
        s.post_incident_reviews.to_string(),
    ]
}

/// The incidents of the window, oldest first: service, id, title, start,
/// end (or `ongoing`), duration.
fn incidents(t: &TrackRecord) -> Vec<[String; 6]> {
    let mut rows: Vec<(f64, [String; 6])> = Vec::new();
    for s in &t.services {
        for i in s.issues.iter().filter(|i| i.classification == "incident") {
            let end = i.end.unwrap_or(t.window.end);
            rows.push((
                i.start,
                [
                    s.name.clone(),
                    i.id.clone(),
                    i.title.clone(),
                    rfc3339(i.start as i64),
                    i.end
                        .map(|e| rfc3339(e as i64))
                        .unwrap_or_else(|| "ongoing".into()),
                    duration(Some(end - i.start)),
                ],
            ));
        }
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1[1].cmp(&b.1[1])));
    rows.into_iter().map(|(_, r)| r).collect()
}

const INCIDENT_HEADERS: [&str; 6] = ["Service", "Incident", "Title", "Start", "End", "Duration"];

/// Columns padded to their widest cell (by characters).
fn aligned(out: &mut String, headers: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..headers.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([headers[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |out: &mut String, cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        let _ = writeln!(out, "  {}", padded.join("  ").trim_end());
    };
    line(out, headers.to_vec());
    for r in rows {
        line(out, r.iter().map(String::as_str).collect());
    }
}

fn table(tenant: &str, t: &TrackRecord) -> String {
    let mut out = format!(
        "Tenant {tenant}: Microsoft 365 track record, {}\n\n",
        heading(t)
    );
    let rows: Vec<Vec<String>> = by_availability(t)
        .into_iter()
        .map(|s| service_cells(t, s).to_vec())
        .collect();
    aligned(&mut out, &HEADERS, &rows);
    let list = incidents(t);
    let _ = writeln!(out, "\nIncidents of the window: {}", list.len());
    if !list.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = list.into_iter().map(|r| r.to_vec()).collect();
        aligned(&mut out, &INCIDENT_HEADERS, &rows);
    }
    out
}

/// A Markdown table cell: one line, `|` escaped.
fn md(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn md_table(out: &mut String, headers: &[&str], numeric_from: usize, rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", headers.join(" | "));
    let align: Vec<&str> = (0..headers.len())
        .map(|c| if c >= numeric_from { "---:" } else { "---" })
        .collect();
    let _ = writeln!(out, "|{}|", align.join("|"));
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| md(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
}

fn markdown(tenant: &str, t: &TrackRecord) -> String {
    let mut out = format!(
        "## {}: Microsoft 365 track record, {}\n\n\
         Availability is the share of the window without a Microsoft incident, from \
         Microsoft's own service-health issue history (advisories and false positives \
         excluded); minutes are the time under at least one issue.\n\n",
        md(tenant),
        heading(t)
    );
    let rows: Vec<Vec<String>> = by_availability(t)
        .into_iter()
        .map(|s| service_cells(t, s).to_vec())
        .collect();
    md_table(&mut out, &HEADERS, 1, &rows);
    let list = incidents(t);
    let _ = writeln!(out, "\n### Incidents ({})\n", list.len());
    if list.is_empty() {
        out.push_str("None in the window.\n");
    } else {
        let rows: Vec<Vec<String>> = list.into_iter().map(|r| r.to_vec()).collect();
        md_table(&mut out, &INCIDENT_HEADERS, 5, &rows);
    }
    out
}

/// The CSV header: the metrics' figures, in their units.
pub const CSV_COLUMNS: [&str; 17] = [
    "tenant",
    "service_id",
    "service_name",
    "window_seconds",
    "availability_ratio",
    "incident_impact_seconds",
    "advisory_impact_seconds",
    "incidents_started",
    "incidents_resolved",
    "advisories_started",
    "advisories_resolved",
    "incident_time_to_resolve_mean_seconds",
    "incident_time_to_resolve_max_seconds",
    "advisory_time_to_resolve_mean_seconds",
    "advisory_time_to_resolve_max_seconds",
    "post_incident_reviews",
    "incident_ids",
];

fn csv_row(tenant: &str, t: &TrackRecord, s: &ServiceRecord) -> [String; 17] {
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let ids: Vec<&str> = s
        .issues
        .iter()
        .filter(|i| i.classification == "incident")
        .map(|i| i.id.as_str())
        .collect();
    [
        tenant.to_string(),
        s.service_id.clone(),
        s.name.clone(),
        t.window.length.to_string(),
        s.availability(&t.window).to_string(),
        s.incident.impact_seconds.to_string(),
        s.advisory.impact_seconds.to_string(),
        s.incident.started.to_string(),
        s.incident.resolved.to_string(),
        s.advisory.started.to_string(),
        s.advisory.resolved.to_string(),
        opt(s.incident.time_to_resolve_mean()),
        opt(s.incident.time_to_resolve_max()),
        opt(s.advisory.time_to_resolve_mean()),
        opt(s.advisory.time_to_resolve_max()),
        s.post_incident_reviews.to_string(),
        ids.join(" "),
    ]
}

/// One RFC 4180 line: a field with a comma, quote or line break is quoted,
/// its quotes doubled.
fn csv_line(fields: &[String]) -> String {
    let cells: Vec<String> = fields
        .iter()
        .map(|f| match f.contains([',', '"', '\n', '\r']) {
            true => format!("\"{}\"", f.replace('"', "\"\"")),
            false => f.clone(),
        })
        .collect();
    format!("{}\r\n", cells.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::graph::{HealthOverview, Issue};

    const NOW: f64 = 1_796_083_200.0;

    fn record() -> TrackRecord {
        let ov = |id: &str, name: &str| HealthOverview {
            id: id.into(),
            service: name.into(),
            status: "serviceOperational".into(),
        };
        let issue = |id: &str, start: f64, end: Option<f64>| Issue {
            id: id.into(),
            service: "Exchange Online".into(),
            classification: "incident".into(),
            origin: None,
            status: "serviceRestored".into(),
            is_resolved: end.is_some(),
            feature: None,
            feature_group: None,
            title: Some("Mail, \"delayed\" | queued".into()),
            start_date_time: Some(rfc3339((NOW + start) as i64)),
            end_date_time: end.map(|e| rfc3339((NOW + e) as i64)),
            last_modified_date_time: None,
        };
        history::compute(
            &[
                ov("SharePoint", "SharePoint Online"),
                ov("Exchange", "Exchange Online"),
            ],
            &[
                issue("EX1", -86_400.0, Some(-86_400.0 + 5_400.0)),
                issue("EX2", -600.0, None),
            ],
            Window {
                end: NOW,
                length: 30.0 * 86_400.0,
            },
        )
    }

    fn reports() -> Vec<TenantReport> {
        vec![
            TenantReport {
                tenant: "contoso".into(),
                result: Ok(record()),
            },
            TenantReport {
                tenant: "broken".into(),
                result: Err("tenant broken: HTTP 403".into()),
            },
        ]
    }

    #[test]
    fn markdown_is_a_pasteable_table() {
        let md = render(&reports(), Format::Markdown);
        assert!(
            md.starts_with("## contoso: Microsoft 365 track record, 30d to 2026-12-01T00:00:00Z"),
            "{md}"
        );
        assert!(!md.contains("broken"));
        // Least available first; the title's pipe escaped.
        let exchange = md
            .find("| Exchange Online | 99.768 % | 100 | 0 | 2/1 | 0/0 | 1h 30m / 1h 30m | 0 |")
            .expect(&md);
        assert!(exchange < md.find("| SharePoint Online | 100 %").expect(&md));
        assert!(md.contains("### Incidents (2)"));
        assert!(md.contains("| Exchange Online | EX2 | Mail, \"delayed\" \\| queued | 2026-11-30T23:50:00Z | ongoing | 10m |"), "{md}");
    }

    #[test]
    fn csv_quotes_and_keeps_units() {
        let csv = render(&reports(), Format::Csv);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], CSV_COLUMNS.join(","));
        assert_eq!(
            lines[1],
            "contoso,Exchange,Exchange Online,2592000,0.9976851851851852,6000,0,2,1,0,0,5400,5400,,,0,EX1 EX2"
        );
        assert!(lines[2]
            .starts_with("contoso,SharePoint,SharePoint Online,2592000,1,0,0,0,0,0,0,,,,,0,"));
        assert_eq!(lines.len(), 4, "{csv}");
        assert_eq!(
            csv_line(&["a,b".into(), "say \"x\"".into()]),
            "\"a,b\",\"say \"\"x\"\"\"\r\n"
        );
    }

    #[test]
    fn table_aligns_and_lists_incidents() {
        let text = render(&reports(), Format::Table);
        assert!(text.starts_with("Tenant contoso: Microsoft 365 track record, 30d to "));
        assert!(text.contains("Incidents of the window: 2"));
        let header = text
            .lines()
            .find(|l| l.trim_start().starts_with("Service "))
            .unwrap();
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("SharePoint Online"))
            .unwrap();
        assert_eq!(header.find("Availability"), row.find("100 %"));
    }

    #[test]
    fn a_forbidden_answer_names_the_permission() {
        let e = ApiError::Status {
            operation: "healthOverviews",
            status: 403,
            code: Some("Forbidden".into()),
            message: "Access denied".into(),
        };
        let text = explain("contoso", &e);
        assert!(
            text.starts_with("tenant contoso: healthOverviews: HTTP 403 Forbidden"),
            "{text}"
        );
        assert!(text.contains("ServiceHealth.Read.All"));
    }
}
