//! `messages`: Graph message-center posts → counts by category and severity,
//! major changes, action-required deadlines.

use super::services::ServiceFilter;
use super::{ActionRow, CollectError, Collector, CollectorKind, Outcome};
use crate::api::graph::{GraphClient, Message};
use crate::metrics::{Family, SnapshotWriter};
use crate::timefmt::{now_unix, parse_unix};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Graph's documented values; each is reported (0 when none) so graphs and
/// alerts see a series rather than nothing. New values pass through too.
pub const CATEGORIES: [&str; 3] = ["preventOrFixIssue", "planForChange", "stayInformed"];
pub const SEVERITIES: [&str; 3] = ["normal", "high", "critical"];

pub struct MessagesCollector {
    pub tenant: String,
    pub graph: Arc<GraphClient>,
    pub interval: Duration,
    /// The tenant's service selection (shared with its `service_health` collector).
    pub services: Arc<ServiceFilter>,
}

impl Collector for MessagesCollector {
    fn kind(&self) -> CollectorKind {
        CollectorKind::Messages
    }
    fn interval(&self) -> Duration {
        self.interval
    }
    fn collect(&self) -> BoxFuture<'_, Result<Outcome, CollectError>> {
        Box::pin(async move {
            let messages = if self.services.is_all() {
                self.graph.messages().await?
            } else {
                // Posts name services by display name: healthOverviews maps
                // them to the ids the selection uses (one more small call).
                let (overviews, messages) =
                    tokio::try_join!(self.graph.health_overviews(), self.graph.messages())?;
                self.services.messages(&overviews, messages)
            };
            Ok(render(&self.tenant, &messages, now_unix()))
        })
    }
}

/// Pure: posts (and the current time) → metric text.
pub fn render(tenant: &str, messages: &[Message], now: f64) -> Outcome {
    let mut by_cat: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    let mut major: BTreeMap<&str, u32> = BTreeMap::new();
    let mut action: BTreeMap<&str, u32> = BTreeMap::new();
    for c in CATEGORIES {
        for s in SEVERITIES {
            by_cat.insert((c, s), 0);
        }
    }
    for s in SEVERITIES {
        major.insert(s, 0);
        action.insert(s, 0);
    }
    let mut next_deadline: Option<f64> = None;
    let mut actions = Vec::new();
    for m in messages {
        let sev = m.severity.as_str();
        *by_cat.entry((m.category.as_str(), sev)).or_default() += 1;
        if m.is_major_change == Some(true) {
            *major.entry(sev).or_default() += 1;
        }
        if let Some(t) = m
            .action_required_by_date_time
            .as_deref()
            .and_then(parse_unix)
        {
            if t > now {
                *action.entry(sev).or_default() += 1;
                next_deadline = Some(next_deadline.map_or(t, |n: f64| n.min(t)));
                actions.push(ActionRow {
                    id: m.id.clone(),
                    title: m.title.clone().unwrap_or_default(),
                    category: m.category.clone(),
                    severity: m.severity.clone(),
                    deadline_unix: t,
                });
            }
        }
    }
    let mut w = SnapshotWriter::new();
    for ((category, severity), n) in &by_cat {
        w.sample(
            Family::Messages,
            &[
                ("tenant", tenant),
                ("category", category),
                ("severity", severity),
            ],
            f64::from(*n),
        );
    }
    for (severity, n) in &major {
        w.sample(
            Family::MessagesMajorChange,
            &[("tenant", tenant), ("severity", severity)],
            f64::from(*n),
        );
    }
    for (severity, n) in &action {
        w.sample(
            Family::MessagesActionRequired,
            &[("tenant", tenant), ("severity", severity)],
            f64::from(*n),
        );
    }
    if let Some(t) = next_deadline {
        w.sample(Family::MessagesNextAction, &[("tenant", tenant)], t);
    }
    // Soonest deadline first, as the status page lists them.
    actions.sort_by(|a, b| a.deadline_unix.total_cmp(&b.deadline_unix));
    Outcome {
        rendered: w.finish(),
        actions,
        ..Outcome::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(cat: &str, sev: &str, major: bool, deadline: Option<&str>) -> Message {
        Message {
            id: "MC1".into(),
            category: cat.into(),
            severity: sev.into(),
            is_major_change: Some(major),
            action_required_by_date_time: deadline.map(str::to_string),
            services: None,
            title: Some(format!("{cat} {sev}")),
        }
    }

    #[test]
    fn counts_and_deadlines() {
        let now = 1_000_000.0;
        let ms = [
            msg("planForChange", "high", true, Some("1970-01-13T00:00:00Z")), // 1,036,800: future
            msg("planForChange", "high", false, Some("1970-01-12T00:00:00Z")), // 950,400: past
            msg(
                "stayInformed",
                "normal",
                false,
                Some("1970-01-14T00:00:00Z"),
            ),
            msg("brandNewCategory", "normal", false, None),
        ];
        let o = render("t", &ms, now);
        let get = |f| String::from_utf8(o.rendered.get(f).unwrap().to_vec()).unwrap();
        let m = get(Family::Messages);
        assert!(m.contains("category=\"planForChange\",severity=\"high\"} 2\n"));
        assert!(m.contains("category=\"preventOrFixIssue\",severity=\"critical\"} 0\n"));
        assert!(m.contains("category=\"brandNewCategory\",severity=\"normal\"} 1\n"));
        assert_eq!(m.lines().count(), 10);
        assert!(get(Family::MessagesMajorChange).contains("severity=\"high\"} 1\n"));
        let a = get(Family::MessagesActionRequired);
        assert!(a.contains("severity=\"high\"} 1\n") && a.contains("severity=\"normal\"} 1\n"));
        assert_eq!(
            get(Family::MessagesNextAction),
            "m365_service_message_next_action_required_timestamp_seconds{tenant=\"t\"} 1036800\n"
        );
        let deadlines: Vec<(f64, &str)> = o
            .actions
            .iter()
            .map(|a| (a.deadline_unix, a.title.as_str()))
            .collect();
        assert_eq!(
            deadlines,
            [
                (1_036_800.0, "planForChange high"),
                (1_123_200.0, "stayInformed normal")
            ]
        );
    }
}
