//! `service_health`: Graph healthOverviews and issues → service status,
//! operational flag, active issues by classification, issue info, and the
//! track record over `history_window` (computed in [`super::history`]).

use super::history::{self, TrackRecord, Window};
use super::services::ServiceFilter;
use super::{CollectError, Collector, CollectorKind, IssueRow, Outcome, ServiceRow, ServiceTrack};
use crate::api::graph::{GraphClient, HealthOverview, Issue};
use crate::metrics::{Family, SnapshotWriter};
use crate::timefmt::parse_unix;
use futures::future::BoxFuture;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Statuses under which a service counts as operational (listed in
/// docs/metrics.md under `m365_service_operational`).
pub const OPERATIONAL: [&str; 8] = [
    "serviceOperational",
    "serviceRestored",
    "falsePositive",
    "postIncidentReviewPublished",
    "resolved",
    "resolvedExternal",
    "mitigated",
    "mitigatedExternal",
];

/// Always reported per service, with 0 when none are active.
pub const CLASSIFICATIONS: [&str; 2] = ["incident", "advisory"];

pub fn is_operational(status: &str) -> bool {
    OPERATIONAL.contains(&status)
}

pub struct ServiceHealthCollector {
    pub tenant: String,
    pub graph: Arc<GraphClient>,
    pub interval: Duration,
    /// The tenant's service selection (shared with its `messages` collector).
    pub services: Arc<ServiceFilter>,
    /// `service_health.history_window`.
    pub history_window: Duration,
}

impl Collector for ServiceHealthCollector {
    fn kind(&self) -> CollectorKind {
        CollectorKind::ServiceHealth
    }
    fn interval(&self) -> Duration {
        self.interval
    }
    fn collect(&self) -> BoxFuture<'_, Result<Outcome, CollectError>> {
        Box::pin(async move {
            let (overviews, issues) =
                tokio::try_join!(self.graph.health_overviews(), self.graph.issues())?;
            let (overviews, issues) = self.services.health(overviews, issues);
            let window = Window {
                end: crate::timefmt::now_unix(),
                length: self.history_window.as_secs_f64(),
            };
            let track = history::compute(&overviews, &issues, window);
            Ok(render(&self.tenant, &overviews, &issues, &track))
        })
    }
}

/// Pure: Graph's lists (and their track record) → metric text and
/// status-page rows.
pub fn render(
    tenant: &str,
    overviews: &[HealthOverview],
    issues: &[Issue],
    track: &TrackRecord,
) -> Outcome {
    let mut w = SnapshotWriter::new();
    // Issues name their service by display name; healthOverviews maps it to the id.
    let id_by_name: HashMap<&str, &str> = overviews
        .iter()
        .map(|o| (o.service.as_str(), o.id.as_str()))
        .collect();
    let service_id_of = |name: &str| -> String {
        id_by_name
            .get(name)
            .map(|s| s.to_string())
            .unwrap_or_else(|| name.to_string())
    };

    // (service_id, classification) → active count; zero rows first.
    let mut active: BTreeMap<(String, String), u32> = BTreeMap::new();
    for o in overviews {
        for c in CLASSIFICATIONS {
            active.insert((o.id.clone(), c.to_string()), 0);
        }
    }
    let mut issue_rows = Vec::new();
    for i in issues.iter().filter(|i| !i.is_resolved) {
        let sid = service_id_of(&i.service);
        *active
            .entry((sid.clone(), i.classification.clone()))
            .or_default() += 1;
        let labels = [
            ("tenant", tenant),
            ("issue_id", i.id.as_str()),
            ("service_id", sid.as_str()),
            ("classification", i.classification.as_str()),
            ("status", i.status.as_str()),
            ("origin", i.origin.as_deref().unwrap_or("")),
            ("feature_group", i.feature_group.as_deref().unwrap_or("")),
            ("title", i.title.as_deref().unwrap_or("")),
        ];
        w.sample(Family::IssueInfo, &labels, 1.0);
        let id = [("tenant", tenant), ("issue_id", i.id.as_str())];
        let start = i.start_date_time.as_deref().and_then(parse_unix);
        let last_update = i.last_modified_date_time.as_deref().and_then(parse_unix);
        if let Some(t) = start {
            w.sample(Family::IssueStart, &id, t);
        }
        if let Some(t) = last_update {
            w.sample(Family::IssueLastUpdate, &id, t);
        }
        issue_rows.push(IssueRow {
            id: i.id.clone(),
            service_id: sid.clone(),
            service: i.service.clone(),
            classification: i.classification.clone(),
            status: i.status.clone(),
            title: i.title.clone().unwrap_or_default(),
            start_unix: start,
            last_update_unix: last_update,
        });
    }

    let mut rows = Vec::with_capacity(overviews.len());
    for o in overviews {
        let sid = [("tenant", tenant), ("service_id", o.id.as_str())];
        w.sample(
            Family::ServiceInfo,
            &[
                ("tenant", tenant),
                ("service_id", &o.id),
                ("service_name", &o.service),
            ],
            1.0,
        );
        w.sample(
            Family::ServiceStatus,
            &[
                ("tenant", tenant),
                ("service_id", &o.id),
                ("status", &o.status),
            ],
            1.0,
        );
        let operational = is_operational(&o.status);
        w.sample(
            Family::ServiceOperational,
            &sid,
            if operational { 1.0 } else { 0.0 },
        );
        let count = |c: &str| {
            active
                .get(&(o.id.clone(), c.to_string()))
                .copied()
                .unwrap_or(0)
        };
        rows.push(ServiceRow {
            service_id: o.id.clone(),
            name: o.service.clone(),
            status: o.status.clone(),
            operational,
            incidents: count("incident"),
            advisories: count("advisory"),
            track: track
                .services
                .iter()
                .find(|r| r.service_id == o.id)
                .map(|r| ServiceTrack {
                    window_seconds: track.window.length,
                    availability: r.availability(&track.window),
                    incidents: r.incident.in_window,
                    incident_seconds: r.incident.impact_seconds,
                }),
        });
    }
    for ((service_id, classification), n) in &active {
        w.sample(
            Family::IssuesActive,
            &[
                ("tenant", tenant),
                ("service_id", service_id),
                ("classification", classification),
            ],
            f64::from(*n),
        );
    }
    history::write(&mut w, tenant, track);
    Outcome {
        rendered: w.finish(),
        services: rows,
        issues: issue_rows,
        ..Outcome::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ov(id: &str, name: &str, status: &str) -> HealthOverview {
        HealthOverview {
            id: id.into(),
            service: name.into(),
            status: status.into(),
        }
    }

    /// `render` with the track record of the last 30 days to 1970-01-02.
    fn render(tenant: &str, overviews: &[HealthOverview], issues: &[Issue]) -> Outcome {
        let window = Window {
            end: 86_400.0,
            length: 30.0 * 86_400.0,
        };
        let track = history::compute(overviews, issues, window);
        super::render(tenant, overviews, issues, &track)
    }

    fn text(o: &Outcome, f: Family) -> String {
        String::from_utf8(o.rendered.get(f).unwrap_or_default().to_vec()).unwrap()
    }

    /// Every serviceHealthStatus value Graph documents, and its mapping.
    #[test]
    fn every_status_maps() {
        let all = [
            ("serviceOperational", 1),
            ("investigating", 0),
            ("restoringService", 0),
            ("verifyingService", 0),
            ("serviceRestored", 1),
            ("postIncidentReviewPublished", 1),
            ("serviceDegradation", 0),
            ("serviceInterruption", 0),
            ("extendedRecovery", 0),
            ("falsePositive", 1),
            ("investigationSuspended", 0),
            ("resolved", 1),
            ("mitigatedExternal", 1),
            ("mitigated", 1),
            ("resolvedExternal", 1),
            ("confirmed", 0),
            ("reported", 0),
            ("unknownFutureValue", 0),
            ("someStatusFrom2030", 0),
        ];
        let overviews: Vec<_> = all
            .iter()
            .enumerate()
            .map(|(i, (s, _))| ov(&format!("S{i}"), &format!("Service {i}"), s))
            .collect();
        let o = render("t", &overviews, &[]);
        let status = text(&o, Family::ServiceStatus);
        let op = text(&o, Family::ServiceOperational);
        for (i, (s, want)) in all.iter().enumerate() {
            assert!(
                status.contains(&format!(
                    "m365_service_status{{tenant=\"t\",service_id=\"S{i}\",status=\"{s}\"}} 1\n"
                )),
                "{s}"
            );
            assert!(
                op.contains(&format!(
                    "m365_service_operational{{tenant=\"t\",service_id=\"S{i}\"}} {want}\n"
                )),
                "{s}"
            );
        }
    }

    #[test]
    fn issues_counted_by_service_id_and_resolved_ignored() {
        let overviews = [
            ov("Exchange", "Exchange Online", "serviceDegradation"),
            ov("SharePoint", "SharePoint Online", "serviceOperational"),
        ];
        let issue = |id: &str, svc: &str, class: &str, resolved: bool| Issue {
            id: id.into(),
            service: svc.into(),
            classification: class.into(),
            origin: Some("microsoft".into()),
            status: "serviceDegradation".into(),
            is_resolved: resolved,
            feature: None,
            feature_group: Some("Mail".into()),
            title: Some("Users can't \"send\"".into()),
            start_date_time: Some("1970-01-01T00:01:00Z".into()),
            end_date_time: None,
            last_modified_date_time: None,
        };
        let issues = [
            issue("EX1", "Exchange Online", "incident", false),
            issue("EX2", "Exchange Online", "incident", false),
            issue("EX3", "Exchange Online", "advisory", true),
            issue("XX9", "Brand New Service", "advisory", false),
        ];
        let o = render("t", &overviews, &issues);
        let active = text(&o, Family::IssuesActive);
        for line in [
            "m365_service_issues_active{tenant=\"t\",service_id=\"Exchange\",classification=\"incident\"} 2",
            "m365_service_issues_active{tenant=\"t\",service_id=\"Exchange\",classification=\"advisory\"} 0",
            "m365_service_issues_active{tenant=\"t\",service_id=\"SharePoint\",classification=\"incident\"} 0",
            "m365_service_issues_active{tenant=\"t\",service_id=\"Brand New Service\",classification=\"advisory\"} 1",
        ] {
            assert!(active.contains(line), "{line}\n{active}");
        }
        let info = text(&o, Family::IssueInfo);
        assert!(!info.contains("EX3"));
        assert!(info.contains("title=\"Users can't \\\"send\\\"\""));
        assert_eq!(text(&o, Family::IssueStart).lines().count(), 3);
        assert_eq!(o.services[0].incidents, 2);
        let ids: Vec<&str> = o.issues.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["EX1", "EX2", "XX9"]);
        assert_eq!(o.issues[0].title, "Users can't \"send\"");
        assert_eq!(o.issues[0].service_id, "Exchange");
        assert_eq!(o.issues[0].start_unix, Some(60.0));
        assert!(o.rendered.get(Family::IssueLastUpdate).is_none());
    }
}
