//! The status page's tables: one renderer per section of a tenant
//! (services, issues, actions, audit feed, collectors), each a table whose
//! cells carry their column name so narrow screens stack them into lines.

use super::{
    availability, badge, esc, feed_state, human_duration, lag, service_level, when, window_words,
    Level, FEED_BEHIND_SECONDS,
};
use crate::collect::{ActionRow, CollectorKind, CollectorState, FeedRow, IssueRow, ServiceRow};
use std::fmt::Write as _;

/// One table cell: its HTML (already escaped) and CSS class.
struct Cell(&'static str, String);

fn cell(html: String) -> Cell {
    Cell("", html)
}

/// A table whose cells carry their column name, so that on a narrow screen
/// each row stacks into labelled lines instead of scrolling sideways.
fn table(h: &mut String, class: &str, headers: &[&str], rows: Vec<Vec<Cell>>) {
    let _ = write!(h, "<div class=\"scroll\"><table class=\"{class}\"><tr>");
    for head in headers {
        let _ = write!(h, "<th>{head}</th>");
    }
    h.push_str("</tr>");
    for row in rows {
        h.push_str("<tr>");
        for (Cell(class, html), head) in row.iter().zip(headers) {
            let _ = write!(h, "<td class=\"{class}\" data-label=\"{head}\">{html}</td>");
        }
        h.push_str("</tr>");
    }
    h.push_str("</table></div>");
}

pub(super) fn services(h: &mut String, rows: &[ServiceRow]) {
    h.push_str("<h3>Services</h3>");
    if rows.is_empty() {
        h.push_str("<p class=\"muted\">No service health yet.</p>");
        return;
    }
    // Today's status, then the track record over the window beside it.
    let window = rows
        .iter()
        .find_map(|r| r.track.as_ref())
        .map(window_words)
        .unwrap_or_else(|| "window".into());
    let rows = rows
        .iter()
        .map(|r| {
            let (ratio, count) = match &r.track {
                Some(t) => (availability(t), t.incidents.to_string()),
                None => ("—".into(), "—".into()),
            };
            vec![
                cell(format!(
                    "<span title=\"{}\">{}</span>",
                    esc(&r.service_id),
                    esc(&r.name)
                )),
                cell(badge(service_level(r), &r.status)),
                Cell("num", r.incidents.to_string()),
                Cell("num", r.advisories.to_string()),
                Cell("num", ratio),
                Cell("num", count),
            ]
        })
        .collect();
    let (avail, count) = (
        format!("Availability ({window})"),
        format!("Incidents ({window})"),
    );
    table(
        h,
        "services",
        &[
            "Service",
            "Status",
            "Incidents",
            "Advisories",
            &avail,
            &count,
        ],
        rows,
    );
}

pub(super) fn issues(h: &mut String, rows: &[IssueRow], now: f64) {
    h.push_str("<h3>Active incidents and advisories</h3>");
    if rows.is_empty() {
        h.push_str("<p class=\"muted\">None.</p>");
        return;
    }
    let rows = rows
        .iter()
        .map(|r| {
            let level = match r.classification.as_str() {
                "incident" => Level::Bad,
                _ => Level::Warn,
            };
            vec![
                cell(format!(
                    "{} <small>{}</small>",
                    badge(level, &r.classification),
                    esc(&r.id)
                )),
                Cell("title", esc(&r.title)),
                cell(esc(&r.service)),
                cell(esc(&r.status)),
                cell(when(r.start_unix, now)),
                cell(when(r.last_update_unix, now)),
            ]
        })
        .collect();
    table(
        h,
        "issues",
        &[
            "Issue",
            "Title",
            "Service",
            "Status",
            "Started",
            "Last update",
        ],
        rows,
    );
}

pub(super) fn actions(h: &mut String, rows: &[ActionRow], now: f64) {
    h.push_str("<h3>Message-center posts with action required</h3>");
    if rows.is_empty() {
        h.push_str("<p class=\"muted\">No upcoming deadlines.</p>");
        return;
    }
    let rows = rows
        .iter()
        .map(|r| {
            let level = match r.severity.as_str() {
                "critical" => Level::Bad,
                "high" => Level::Warn,
                _ => Level::Unknown,
            };
            vec![
                cell(when(Some(r.deadline_unix), now)),
                Cell("title", esc(&r.title)),
                cell(badge(level, &r.severity)),
                cell(format!(
                    "{} <small>{}</small>",
                    esc(&r.id),
                    esc(&r.category)
                )),
            ]
        })
        .collect();
    table(h, "actions", &["Act by", "Title", "Severity", "Post"], rows);
}

pub(super) fn audit(h: &mut String, rows: &[FeedRow], now: f64) {
    let (level, text) = feed_state(rows, now);
    let _ = write!(
        h,
        "<h3 id=\"audit\">Audit feed {}</h3>",
        badge(level, &text)
    );
    let rows = rows
        .iter()
        .map(|r| {
            let sub = match r.subscribed {
                Some(true) => badge(Level::Ok, "enabled"),
                Some(false) => badge(Level::Bad, "not enabled"),
                None => badge(Level::Unknown, "unknown"),
            };
            let l = lag(r, now);
            let lag_level = match l > FEED_BEHIND_SECONDS {
                true => Level::Warn,
                false => Level::Ok,
            };
            vec![
                cell(esc(&r.content_type)),
                cell(sub),
                Cell("num", r.backlog_blobs.to_string()),
                cell(badge(lag_level, &human_duration(l))),
                cell(when(r.newest_content_unix.map(|t| t as f64), now)),
                Cell("title", r.problem.as_deref().map(esc).unwrap_or_default()),
            ]
        })
        .collect();
    table(
        h,
        "feed",
        &[
            "Content type",
            "Subscription",
            "Backlog (blobs)",
            "Blob lag",
            "Newest content",
            "Problem",
        ],
        rows,
    );
}

pub(super) fn collectors(
    h: &mut String,
    rows: &[(CollectorKind, std::sync::Arc<CollectorState>)],
    now: f64,
) {
    h.push_str("<h3>Collectors</h3>");
    let rows = rows
        .iter()
        .map(|(kind, st)| {
            let (level, word) = match (st.attempted, st.success) {
                (false, _) => (Level::Unknown, "pending"),
                (true, true) => (Level::Ok, "ok"),
                (true, false) => (Level::Bad, "failing"),
            };
            vec![
                cell(kind.as_str().to_string()),
                Cell(level.class(), word.to_string()),
                cell(when(st.last_success_unix, now)),
                Cell("num", format!("{:.3}s", st.duration_seconds)),
                Cell("title", esc(st.last_error.as_deref().unwrap_or(""))),
            ]
        })
        .collect();
    table(
        h,
        "collectors",
        &[
            "Collector",
            "State",
            "Last success",
            "Duration",
            "Last error",
        ],
        rows,
    );
}
