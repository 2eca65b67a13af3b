//! The HTML status page at `/`: answers "is Microsoft 365 OK for my tenants,
//! and is the audit feed keeping up?" at a glance.
//!
//! Server-rendered from the same collector snapshots as `/metrics` (never a
//! call to Microsoft), no scripts (it reloads itself with a meta refresh),
//! readable on a phone (narrow screens stack each table row into labelled
//! lines; nothing scrolls the page sideways).
//! Everything that comes from outside (names, titles, statuses, errors) is
//! HTML-escaped; state is shown as a word and a symbol, not by colour alone.

use crate::collect::history::percent;
use crate::collect::{
    ActionRow, CollectorKind, CollectorState, CompletenessRow, FeedRow, IssueRow, ServiceRow,
    ServiceTrack, Store, TenantRuntime,
};
use crate::timefmt::rfc3339;
use std::fmt::Write as _;

mod tables;
use tables::{actions, audit, collectors, issues, services};

/// The page reloads itself this often (seconds).
pub const REFRESH_SECONDS: u32 = 30;
/// Blob lag above this shows the feed as behind (the `M365AuditBlobLagHigh`
/// alert's threshold).
pub const FEED_BEHIND_SECONDS: i64 = 2 * 3600;

/// How bad something is; orders rows worst first and picks the colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Bad,
    Warn,
    Ok,
    Unknown,
}

impl Level {
    fn class(self) -> &'static str {
        match self {
            Level::Bad => "bad",
            Level::Warn => "warn",
            Level::Ok => "ok",
            Level::Unknown => "unknown",
        }
    }
    /// A symbol beside the word, so the state reads without colour.
    fn mark(self) -> &'static str {
        match self {
            Level::Bad => "✖",
            Level::Warn => "▲",
            Level::Ok => "✔",
            Level::Unknown => "…",
        }
    }
}

fn service_level(s: &ServiceRow) -> Level {
    match (s.operational, s.status.as_str()) {
        (true, _) => Level::Ok,
        (false, "serviceInterruption") => Level::Bad,
        (false, _) => Level::Warn,
    }
}

/// Not operational before operational, interruptions first; then the most
/// incidents, the most advisories, and the name.
fn worst_first(a: &ServiceRow, b: &ServiceRow) -> std::cmp::Ordering {
    (service_level(a), b.incidents, b.advisories, &a.name).cmp(&(
        service_level(b),
        a.incidents,
        a.advisories,
        &b.name,
    ))
}

/// Everything one tenant's collectors last produced.
#[derive(Default)]
struct TenantView {
    services: Vec<ServiceRow>,
    issues: Vec<IssueRow>,
    actions: Vec<ActionRow>,
    feed: Option<Vec<FeedRow>>,
    /// With `activity.reconcile`.
    completeness: Option<CompletenessRow>,
    collectors: Vec<(CollectorKind, std::sync::Arc<CollectorState>)>,
}

/// The audit section's source: the activity collector's latest rows, or
/// None when the tenant does not follow its feed. Kept in one place so the
/// page follows wherever the audit pipeline publishes its state.
fn audit_feed(kind: CollectorKind, state: &CollectorState) -> Option<Vec<FeedRow>> {
    (kind == CollectorKind::Activity).then(|| {
        state
            .outcome
            .as_ref()
            .map(|o| o.feed.clone())
            .unwrap_or_default()
    })
}

fn view(t: &TenantRuntime) -> TenantView {
    let mut v = TenantView::default();
    for slot in &t.slots {
        let kind = slot.collector.kind();
        let st = slot.state.load_full();
        if let Some(rows) = audit_feed(kind, &st) {
            v.feed = Some(rows);
        }
        if let Some(o) = &st.outcome {
            if o.completeness.is_some() {
                v.completeness = o.completeness.clone();
            }
            v.services.extend(o.services.iter().cloned());
            v.issues.extend(o.issues.iter().cloned());
            v.actions.extend(o.actions.iter().cloned());
        }
        v.collectors.push((kind, st));
    }
    v.services.sort_by(worst_first);
    // Incidents before advisories, then the most recently started first.
    v.issues.sort_by(|a, b| {
        (a.classification != "incident")
            .cmp(&(b.classification != "incident"))
            .then(
                b.start_unix
                    .unwrap_or(0.0)
                    .total_cmp(&a.start_unix.unwrap_or(0.0)),
            )
            .then(a.id.cmp(&b.id))
    });
    v.actions
        .sort_by(|a, b| a.deadline_unix.total_cmp(&b.deadline_unix));
    v
}

/// HTML-escape text and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `3d 4h`, `2h 5m`, `40s`: the two largest units.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m) = (s / 86400, s % 86400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// A time as `<time>` with its distance from now.
fn when(unix: Option<f64>, now: f64) -> String {
    match unix {
        None => "—".into(),
        Some(t) => {
            let iso = rfc3339(t as i64);
            let delta = (t - now) as i64;
            let rel = match delta {
                d if d > 0 => format!("in {}", human_duration(d)),
                d => format!("{} ago", human_duration(-d)),
            };
            format!("<time datetime=\"{iso}\" title=\"{iso}\">{rel}</time>")
        }
    }
}

fn badge(level: Level, text: &str) -> String {
    format!(
        "<span class=\"badge {}\">{} {}</span>",
        level.class(),
        level.mark(),
        esc(text)
    )
}

const STYLE: &str = "\
:root{color-scheme:light dark;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--muted:#6e7781;--line:#d0d7de}\
*{box-sizing:border-box}\
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;padding:1em;max-width:80em}\
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.25em;margin:1.6em 0 .4em;border-bottom:2px solid var(--line)}\
h3{font-size:1.05em;margin:1.1em 0 .3em}\
nav a{margin-right:1em}small,.muted{color:var(--muted)}\
.scroll{overflow-x:auto;max-width:100%}\
table{border-collapse:collapse;width:100%;margin:.2em 0 .8em}\
th,td{border-bottom:1px solid var(--line);padding:.3em .5em;text-align:left;vertical-align:top}\
th{font-size:.85em;color:var(--muted);white-space:nowrap}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
td.title{min-width:12em;overflow-wrap:anywhere}\
.badge{display:inline-block;padding:0 .45em;border-radius:.8em;font-weight:600;white-space:nowrap;border:1px solid currentColor}\
.ok{color:var(--ok)}.warn{color:var(--warn)}.bad{color:var(--bad)}.unknown{color:var(--muted)}\
ul.summary{list-style:none;padding:0}ul.summary li{margin:.35em 0;overflow-wrap:anywhere}\
.badge{white-space:normal}td .badge{white-space:nowrap}\
@media (max-width:40em){table,tbody,tr,td{display:block}tr:first-child{display:none}\
tr{border-bottom:1px solid var(--line);padding:.3em 0}td{border:0;padding:.1em 0}td.num{text-align:left}\
td[data-label]::before{content:attr(data-label) \": \";color:var(--muted);font-size:.85em}}\
code{overflow-wrap:anywhere}";

/// The whole page.
pub fn render(store: &Store, telemetry_path: &str, now: f64) -> String {
    let tenants = store.tenants();
    let views: Vec<(&str, TenantView)> =
        tenants.iter().map(|t| (t.name.as_str(), view(t))).collect();
    let mut h = String::with_capacity(16 * 1024 + 4 * 1024 * views.len());
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
<title>m365-exporter status</title><style>{STYLE}</style></head><body>\
<header><h1>Microsoft 365 status <small>m365-exporter {}</small></h1>\
<nav><a href=\"{p}\">Metrics</a><a href=\"/-/healthy\">Health</a><a href=\"/-/ready\">Readiness</a></nav>\
<p class=\"muted\">As of {} (the page reloads every {REFRESH_SECONDS}s).</p></header><main>",
        esc(crate::VERSION),
        rfc3339(now as i64),
        p = esc(telemetry_path),
    );
    h.push_str("<section><h2 id=\"summary\">At a glance</h2><ul class=\"summary\">");
    // Worst tenants first: with many tenants, the ones that need a look lead.
    let mut order: Vec<&(&str, TenantView)> = views.iter().collect();
    order.sort_by_key(|(name, v)| (tenant_level(v, now), *name));
    for (name, v) in order {
        summary(&mut h, name, v, now);
    }
    h.push_str("</ul></section>");
    for (name, v) in &views {
        tenant(&mut h, name, v, now);
    }
    h.push_str("</main></body></html>");
    h
}

/// A tenant's worst state: its worst service, its audit feed, its collectors.
fn tenant_level(v: &TenantView, now: f64) -> Level {
    let services = v.services.first().map_or(Level::Unknown, service_level);
    let feed = v
        .feed
        .as_deref()
        .map_or(Level::Ok, |f| feed_state(f, now).0);
    let collectors = match v.collectors.iter().any(|(_, s)| s.attempted && !s.success) {
        true => Level::Bad,
        false => Level::Ok,
    };
    let completeness = v
        .completeness
        .as_ref()
        .map_or(Level::Ok, |c| completeness_state(c, now).0);
    services.min(feed).min(collectors).min(completeness)
}

/// One line per tenant: services, issues, deadlines, audit feed.
fn summary(h: &mut String, name: &str, v: &TenantView, now: f64) {
    let down = v
        .services
        .iter()
        .filter(|s| service_level(s) != Level::Ok)
        .count();
    let incidents = v
        .issues
        .iter()
        .filter(|i| i.classification == "incident")
        .count();
    let advisories = v.issues.len() - incidents;
    let failing = v
        .collectors
        .iter()
        .filter(|(_, s)| s.attempted && !s.success)
        .count();
    let services = match (v.services.is_empty(), down) {
        (true, _) => badge(Level::Unknown, "services unknown"),
        (false, 0) => badge(Level::Ok, "all services operational"),
        (false, n) => {
            let worst = v.services.first().map(service_level).unwrap_or(Level::Warn);
            badge(
                worst,
                &format!("{n} of {} services not operational", v.services.len()),
            )
        }
    };
    let _ = write!(
        h,
        "<li><a href=\"#tenant-{n}\"><strong>{n}</strong></a> {services} · {incidents} incident{} · {advisories} advisor{}",
        if incidents == 1 { "" } else { "s" },
        if advisories == 1 { "y" } else { "ies" },
        n = esc(name),
    );
    if let Some(text) = least_available(&v.services) {
        let _ = write!(h, " · {text}");
    }
    if !v.actions.is_empty() {
        let _ = write!(
            h,
            " · {} action{} required, next {}",
            v.actions.len(),
            if v.actions.len() == 1 { "" } else { "s" },
            when(v.actions.first().map(|a| a.deadline_unix), now)
        );
    }
    if let Some(feed) = &v.feed {
        let (level, text) = feed_state(feed, now);
        let _ = write!(h, " · audit feed {}", badge(level, &text));
    }
    if let Some(c) = &v.completeness {
        let (level, text) = completeness_state(c, now);
        let _ = write!(h, " · {}", badge(level, &text));
    }
    if failing > 0 {
        let _ = write!(
            h,
            " · {}",
            badge(
                Level::Bad,
                &format!(
                    "{failing} collector{} failing",
                    if failing == 1 { "" } else { "s" }
                )
            )
        );
    }
    h.push_str("</li>");
}

/// Availability under this reads below target (the default of the optional
/// `M365ServiceAvailabilityBelowTarget` alert).
pub const AVAILABILITY_TARGET: f64 = 0.999;

/// `30d`: the track record's window as the page names it.
fn window_words(t: &ServiceTrack) -> String {
    crate::config::format_duration(std::time::Duration::from_secs(
        t.window_seconds.max(0.0) as u64
    ))
}

/// The summary's word on the track record: the least available service
/// over the window, or that no incident touched it.
fn least_available(services: &[ServiceRow]) -> Option<String> {
    let tracked: Vec<(&ServiceRow, &ServiceTrack)> = services
        .iter()
        .filter_map(|s| s.track.as_ref().map(|t| (s, t)))
        .collect();
    let window = window_words(tracked.first()?.1);
    let worst = tracked
        .iter()
        .filter(|(_, t)| t.incident_seconds > 0.0)
        .min_by(|a, b| {
            a.1.availability
                .total_cmp(&b.1.availability)
                .then(a.0.name.cmp(&b.0.name))
        });
    Some(match worst {
        None => format!("no incident time in the last {window}"),
        Some((s, t)) => format!(
            "least available over {window}: <strong>{}</strong> {} ({} incident{})",
            esc(&s.name),
            availability(t),
            t.incidents,
            if t.incidents == 1 { "" } else { "s" }
        ),
    })
}

/// An availability as the page shows it: a percentage, marked below target.
fn availability(t: &ServiceTrack) -> String {
    match t.availability < AVAILABILITY_TARGET {
        true => format!(
            "<span class=\"warn\" title=\"below the {} target\">▲ {}</span>",
            percent(AVAILABILITY_TARGET),
            percent(t.availability)
        ),
        false => percent(t.availability),
    }
}

/// The blob lag of a content type, now.
fn lag(f: &FeedRow, now: f64) -> i64 {
    f.oldest_pending_unix.map_or(0, |o| (now as i64 - o).max(0))
}

/// Is the audit feed keeping up? The worst content type decides.
fn feed_state(feed: &[FeedRow], now: f64) -> (Level, String) {
    if feed.is_empty() {
        return (Level::Unknown, "not polled yet".into());
    }
    let problems = feed.iter().filter(|f| f.problem.is_some()).count();
    let worst_lag = feed.iter().map(|f| lag(f, now)).max().unwrap_or(0);
    let backlog: u64 = feed.iter().map(|f| f.backlog_blobs).sum();
    // Its first seconds: the rows are the configured types (and the
    // backlog resumed from the state file), the subscriptions not known yet.
    if problems == 0 && feed.iter().all(|f| f.subscribed.is_none()) {
        return (
            Level::Unknown,
            format!("starting ({backlog} blobs waiting)"),
        );
    }
    if problems > 0 {
        return (
            Level::Bad,
            format!("{problems} of {} content types failing", feed.len()),
        );
    }
    if worst_lag > FEED_BEHIND_SECONDS {
        return (
            Level::Warn,
            format!(
                "behind: blob lag {}, {backlog} blobs waiting",
                human_duration(worst_lag)
            ),
        );
    }
    (Level::Ok, format!("keeping up ({backlog} blobs waiting)"))
}

/// How far the audit feed is proven complete: "reconciled until …, N
/// missing"; a warning when records stay missing, reconciling fails, or it
/// trails now by more than it should.
fn completeness_state(c: &CompletenessRow, now: f64) -> (Level, String) {
    let mut text = format!(
        "reconciled until {}, {} missing",
        rfc3339(c.reconciled_until_unix),
        c.missing
    );
    let behind = now as i64 - c.reconciled_until_unix > c.stalled_after_secs;
    if behind {
        text.push_str(" (stalled)");
    }
    let level = match c.missing > 0 || c.problem.is_some() || behind {
        true => Level::Warn,
        false => Level::Ok,
    };
    (level, text)
}

fn tenant(h: &mut String, name: &str, v: &TenantView, now: f64) {
    let _ = write!(
        h,
        "<section class=\"tenant\"><h2 id=\"tenant-{n}\">Tenant {n} <small><a href=\"/probe?target={n}\">probe</a></small></h2>",
        n = esc(name)
    );
    services(h, &v.services);
    issues(h, &v.issues, now);
    actions(h, &v.actions, now);
    if let Some(feed) = &v.feed {
        audit(h, feed, now);
    }
    if let Some(c) = &v.completeness {
        let (level, text) = completeness_state(c, now);
        let _ = write!(
            h,
            "<p class=\"completeness\">Completeness {}{}</p>",
            badge(level, &text),
            c.problem
                .as_deref()
                .map(|p| format!(" {}", esc(p)))
                .unwrap_or_default()
        );
    }
    collectors(h, &v.collectors, now);
    h.push_str("</section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every string from outside, hostile, in every section: none reaches
    /// the page as markup.
    #[test]
    fn nothing_from_outside_becomes_markup() {
        use crate::collect::{build, Outcome, RuntimeOptions};
        use std::sync::Arc;
        const X: &str = "<script>alert(1)</script>\"'&";
        let config = crate::cli::demo::config("http://127.0.0.1:1", None);
        let (live, opts) = (
            Arc::new(crate::metrics::Live::new()),
            RuntimeOptions::default(),
        );
        let tenant = build::tenant(&config.tenants[0], &build::http_client(&opts), &live, &opts);
        let store = Store::new(vec![Arc::new(tenant.runtime)], live);
        for slot in &store.tenants()[0].slots {
            let outcome = Outcome {
                services: vec![ServiceRow {
                    service_id: X.into(),
                    name: X.into(),
                    status: X.into(),
                    operational: false,
                    incidents: 1,
                    advisories: 0,
                    track: None,
                }],
                issues: vec![IssueRow {
                    id: X.into(),
                    service_id: X.into(),
                    service: X.into(),
                    classification: X.into(),
                    status: X.into(),
                    title: X.into(),
                    start_unix: Some(0.0),
                    last_update_unix: None,
                }],
                actions: vec![ActionRow {
                    id: X.into(),
                    title: X.into(),
                    category: X.into(),
                    severity: X.into(),
                    deadline_unix: 2e9,
                }],
                feed: vec![FeedRow {
                    content_type: X.into(),
                    subscribed: Some(false),
                    backlog_blobs: 1,
                    oldest_pending_unix: Some(0),
                    newest_content_unix: None,
                    problem: Some(X.into()),
                }],
                ..Outcome::default()
            };
            slot.state.store(Arc::new(CollectorState {
                attempted: true,
                success: false,
                last_error: Some(X.into()),
                outcome: Some(Arc::new(outcome)),
                ..CollectorState::default()
            }));
        }
        let page = render(&store, "/metrics\"><script>", 1e9);
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("\"'&\""));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"));
        // Each section is there, with the hostile text in it as text.
        for class in ["services", "issues", "actions", "feed", "collectors"] {
            assert!(
                page.contains(&format!("<table class=\"{class}\">")),
                "{class}"
            );
        }
    }

    #[test]
    fn escapes_everything_html_cares_about() {
        assert_eq!(
            esc("<script>alert(1)</script> & \"x\" 'y'"),
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot; &#39;y&#39;"
        );
    }

    #[test]
    fn durations_read_as_two_units() {
        assert_eq!(human_duration(-5), "0s");
        assert_eq!(human_duration(42), "42s");
        assert_eq!(human_duration(125), "2m");
        assert_eq!(human_duration(3 * 3600 + 7 * 60), "3h 7m");
        assert_eq!(human_duration(2 * 86400 + 5 * 3600 + 1), "2d 5h");
    }

    fn svc(name: &str, status: &str, operational: bool, incidents: u32) -> ServiceRow {
        ServiceRow {
            service_id: name.into(),
            name: name.into(),
            status: status.into(),
            operational,
            incidents,
            advisories: 0,
            track: None,
        }
    }

    #[test]
    fn worst_services_first() {
        let mut rows = [
            svc("A ok", "serviceOperational", true, 0),
            svc("B degraded", "serviceDegradation", false, 0),
            svc("C down", "serviceInterruption", false, 1),
            svc("D degraded, incidents", "serviceDegradation", false, 2),
        ];
        rows.sort_by(worst_first);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["C down", "D degraded, incidents", "B degraded", "A ok"]
        );
    }

    #[test]
    fn completeness_line() {
        let mut c = CompletenessRow {
            reconciled_until_unix: 1_800_000_000,
            missing: 0,
            stalled_after_secs: 100_000,
            problem: None,
        };
        let now = 1_800_050_000.0;
        assert_eq!(
            completeness_state(&c, now),
            (
                Level::Ok,
                "reconciled until 2027-01-15T08:00:00Z, 0 missing".to_string()
            )
        );
        c.missing = 4;
        assert_eq!(completeness_state(&c, now).0, Level::Warn);
        c.missing = 0;
        let (l, t) = completeness_state(&c, now + 60_000.0);
        assert_eq!(l, Level::Warn);
        assert!(t.ends_with("(stalled)"), "{t}");
        let v = TenantView {
            completeness: Some(c),
            ..TenantView::default()
        };
        let mut h = String::new();
        summary(&mut h, "t", &v, now);
        assert!(
            h.contains("reconciled until 2027-01-15T08:00:00Z, 0 missing"),
            "{h}"
        );
    }

    #[test]
    fn tenant_level_is_its_worst_part() {
        let now = 100_000.0;
        let ok = TenantView {
            services: vec![svc("A", "serviceOperational", true, 0)],
            feed: Some(vec![feed(None, None)]),
            ..TenantView::default()
        };
        assert_eq!(tenant_level(&ok, now), Level::Ok);
        let lagging = TenantView {
            feed: Some(vec![feed(None, Some(0))]),
            ..TenantView::default()
        };
        assert_eq!(tenant_level(&lagging, now), Level::Warn);
        let down = TenantView {
            services: vec![svc("C", "serviceInterruption", false, 1)],
            ..TenantView::default()
        };
        assert_eq!(tenant_level(&down, now), Level::Bad);
    }

    fn feed(problem: Option<&str>, oldest: Option<i64>) -> FeedRow {
        FeedRow {
            content_type: "Audit.Exchange".into(),
            subscribed: Some(true),
            backlog_blobs: 3,
            oldest_pending_unix: oldest,
            newest_content_unix: None,
            problem: problem.map(str::to_string),
        }
    }

    #[test]
    fn feed_state_worst_decides() {
        let now = 100_000.0;
        assert_eq!(feed_state(&[], now).0, Level::Unknown);
        let starting = FeedRow {
            subscribed: None,
            ..feed(None, Some(1))
        };
        assert_eq!(
            feed_state(&[starting], now),
            (Level::Unknown, "starting (3 blobs waiting)".into())
        );
        assert_eq!(feed_state(&[feed(None, Some(99_000))], now).0, Level::Ok);
        let (l, t) = feed_state(&[feed(None, Some(90_000))], now);
        assert_eq!(
            (l, t.as_str()),
            (Level::Warn, "behind: blob lag 2h 46m, 3 blobs waiting")
        );
        let (l, t) = feed_state(
            &[feed(None, None), feed(Some("no subscription"), None)],
            now,
        );
        assert_eq!(
            (l, t.as_str()),
            (Level::Bad, "1 of 2 content types failing")
        );
    }

    fn tracked(name: &str, availability: f64, incidents: u32) -> ServiceRow {
        ServiceRow {
            track: Some(ServiceTrack {
                window_seconds: 30.0 * 86_400.0,
                availability,
                incidents,
                incident_seconds: (1.0 - availability) * 30.0 * 86_400.0,
            }),
            ..svc(name, "serviceOperational", true, 0)
        }
    }

    /// The summary names the least available service over the window (its
    /// name escaped, marked below 99.9 %), or says no incident touched it.
    #[test]
    fn summary_names_the_least_available_service() {
        let rows = [
            tracked("Teams", 0.99, 2),
            tracked("<Exchange>", 0.95, 1),
            tracked("Forms", 1.0, 0),
        ];
        let text = least_available(&rows).unwrap();
        assert!(
            text.starts_with("least available over 30d: <strong>&lt;Exchange&gt;</strong> "),
            "{text}"
        );
        assert!(
            text.contains("▲ 95.000 %") && text.ends_with("(1 incident)"),
            "{text}"
        );
        assert_eq!(
            least_available(&[tracked("Forms", 1.0, 0)]).as_deref(),
            Some("no incident time in the last 30d")
        );
        assert_eq!(
            least_available(&[svc("x", "serviceOperational", true, 0)]),
            None
        );
        // The services table: today's status, then the window beside it.
        let mut h = String::new();
        services(&mut h, &rows);
        assert!(
            h.contains("Availability (30d)") && h.contains("Incidents (30d)"),
            "{h}"
        );
        assert!(h.contains("▲ 99.000 %"), "{h}");
        assert!(h.contains(">100 %<"), "{h}");
    }
}
