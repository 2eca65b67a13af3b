//! Deterministic scenario data in Graph's shapes. Content is fixed per
//! scenario; timestamps are relative to the moment the scenario is built so
//! that deadlines stay in the future.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimOverview {
    pub service: String,
    pub status: String,
    pub id: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimIssue {
    pub start_date_time: String,
    pub end_date_time: Option<String>,
    pub last_modified_date_time: String,
    pub title: String,
    pub id: String,
    pub impact_description: String,
    pub classification: String,
    pub origin: String,
    pub status: String,
    pub service: String,
    pub feature: String,
    pub feature_group: String,
    pub is_resolved: bool,
    pub high_impact: Option<bool>,
    pub details: Vec<serde_json::Value>,
    pub posts: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimMessage {
    pub start_date_time: String,
    pub end_date_time: Option<String>,
    pub last_modified_date_time: String,
    pub title: String,
    pub id: String,
    pub category: String,
    pub severity: String,
    pub tags: Vec<String>,
    pub is_major_change: bool,
    pub action_required_by_date_time: Option<String>,
    pub services: Vec<String>,
    pub expiry_date_time: Option<String>,
    pub has_attachments: bool,
    pub view_point: Option<serde_json::Value>,
    pub details: Vec<serde_json::Value>,
    pub body: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct ScenarioData {
    pub name: String,
    /// Unix seconds the scenario's timestamps are relative to.
    pub base: i64,
    pub overviews: Vec<SimOverview>,
    pub issues: Vec<SimIssue>,
    pub messages: Vec<SimMessage>,
    /// The app registration's credentials (`applications(appId=…)`).
    pub application: super::applications::SimApplication,
}

pub const SCENARIOS: [&str; 4] = ["healthy", "incident", "outage", "history"];

/// The scenario `demo` runs: today's `incident` picture plus 35 days of
/// resolved history, so the track record has something to show at once.
pub const DEMO_SCENARIO: &str = "history";

/// (id, display name) as Graph lists them.
pub const SERVICES: [(&str, &str); 12] = [
    ("Exchange", "Exchange Online"),
    ("SharePoint", "SharePoint Online"),
    ("microsoftteams", "Microsoft Teams"),
    ("OneDriveForBusiness", "OneDrive for Business"),
    ("yammer", "Yammer Enterprise"),
    ("PowerBIcom", "Power BI"),
    ("Intune", "Microsoft Intune"),
    ("OSDPPlatform", "Microsoft 365 suite"),
    ("O365Client", "Microsoft 365 Apps"),
    ("Forms", "Microsoft Forms"),
    ("Planner", "Planner"),
    ("DynamicsCRM", "Dynamics 365 Apps"),
];

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

fn ts(unix: i64) -> String {
    crate::timefmt::rfc3339(unix)
}

fn name_of(id: &str) -> &'static str {
    SERVICES
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, n)| *n)
        .unwrap_or("Unknown")
}

struct IssueSpec<'a> {
    id: &'a str,
    service_id: &'a str,
    classification: &'a str,
    status: &'a str,
    resolved: bool,
    started_hours_ago: i64,
    title: &'a str,
}

fn issue(base: i64, s: IssueSpec) -> SimIssue {
    let start = base - s.started_hours_ago * HOUR;
    SimIssue {
        start_date_time: ts(start),
        end_date_time: s.resolved.then(|| ts(base - HOUR)),
        last_modified_date_time: ts(base - 15 * 60),
        title: s.title.into(),
        id: s.id.into(),
        impact_description: format!("Users may be affected: {}", s.title),
        classification: s.classification.into(),
        origin: "microsoft".into(),
        status: s.status.into(),
        service: name_of(s.service_id).into(),
        feature: "General".into(),
        feature_group: format!("{} features", name_of(s.service_id)),
        is_resolved: s.resolved,
        high_impact: None,
        details: vec![],
        posts: vec![
            serde_json::json!({"createdDateTime": ts(start), "postType": "regular", "description": {"contentType": "html", "content": "<p>We're investigating.</p>"}}),
        ],
    }
}

struct MsgSpec<'a> {
    n: u32,
    category: &'a str,
    severity: &'a str,
    major: bool,
    /// Deadline relative to base, in days (negative: past).
    action_days: Option<i64>,
    service_id: &'a str,
}

fn message(base: i64, s: MsgSpec) -> SimMessage {
    SimMessage {
        start_date_time: ts(base - 5 * DAY),
        end_date_time: Some(ts(base + 60 * DAY)),
        last_modified_date_time: ts(base - 2 * DAY),
        title: format!("Message center post {}", s.n),
        id: format!("MC{}", 100_000 + s.n),
        category: s.category.into(),
        severity: s.severity.into(),
        tags: vec!["Admin impact".into()],
        is_major_change: s.major,
        action_required_by_date_time: s.action_days.map(|d| ts(base + d * DAY)),
        services: vec![name_of(s.service_id).into()],
        expiry_date_time: None,
        has_attachments: false,
        view_point: None,
        details: vec![],
        body: serde_json::json!({"contentType": "html", "content": "<p>Details.</p>"}),
    }
}

fn overviews(statuses: &[(&str, &str)]) -> Vec<SimOverview> {
    SERVICES
        .iter()
        .map(|(id, name)| SimOverview {
            service: (*name).into(),
            status: statuses
                .iter()
                .find(|(i, _)| i == id)
                .map(|(_, s)| *s)
                .unwrap_or("serviceOperational")
                .into(),
            id: (*id).into(),
        })
        .collect()
}

/// One resolved (or open) issue of the `history` scenario, times in
/// seconds before the scenario's base.
struct Past<'a> {
    id: &'a str,
    service_id: &'a str,
    classification: &'a str,
    status: &'a str,
    start_ago: i64,
    /// None: still open.
    end_ago: Option<i64>,
    title: &'a str,
}

fn past(base: i64, p: Past) -> SimIssue {
    let mut i = issue(
        base,
        IssueSpec {
            id: p.id,
            service_id: p.service_id,
            classification: p.classification,
            status: p.status,
            resolved: p.end_ago.is_some(),
            started_hours_ago: 0,
            title: p.title,
        },
    );
    i.start_date_time = ts(base - p.start_ago);
    i.end_date_time = p.end_ago.map(|e| ts(base - e));
    i.last_modified_date_time = ts(base - p.end_ago.unwrap_or(0) + 3 * HOUR);
    if let Some(post) = i.posts.first_mut() {
        post["createdDateTime"] = ts(base - p.start_ago).into();
    }
    i
}

/// 35 days of Microsoft's issue history beyond the `incident` scenario's
/// own (docs/track-record.md works through the figures they make): resolved
/// incidents and advisories on several services, two overlapping Teams
/// incidents, an Exchange incident that started before the 30-day window
/// and ended inside it, one entirely before it, false positives, and
/// post-incident reviews; two written in PascalCase as Microsoft's pages
/// print them.
pub fn history_issues(base: i64) -> Vec<SimIssue> {
    let p = |id, service_id, classification, status, start_ago, end_ago, title| {
        past(
            base,
            Past {
                id,
                service_id,
                classification,
                status,
                start_ago,
                end_ago,
                title,
            },
        )
    };
    vec![
        p(
            "EX2101",
            "Exchange",
            "incident",
            "serviceRestored",
            20 * DAY,
            Some(20 * DAY - 4 * HOUR),
            "Users can't access mailboxes",
        ),
        p(
            "EX2102",
            "Exchange",
            "advisory",
            "serviceRestored",
            8 * DAY,
            Some(6 * DAY),
            "Delays in calendar sharing",
        ),
        p(
            "EX2103",
            "Exchange",
            "incident",
            "postIncidentReviewPublished",
            33 * DAY,
            Some(29 * DAY),
            "Mail flow delayed for some users",
        ),
        p(
            "TM2201",
            "microsoftteams",
            "Incident",
            "PostIncidentReviewPublished",
            10 * DAY,
            Some(10 * DAY - 6 * HOUR),
            "Users can't join meetings from the desktop client",
        ),
        p(
            "TM2202",
            "microsoftteams",
            "incident",
            "serviceRestored",
            10 * DAY - 2 * HOUR,
            Some(10 * DAY - 8 * HOUR),
            "Chat messages delayed",
        ),
        p(
            "TM2203",
            "microsoftteams",
            "incident",
            "serviceRestored",
            3 * DAY,
            Some(3 * DAY - HOUR / 2),
            "Presence not updating",
        ),
        p(
            "TM2204",
            "microsoftteams",
            "incident",
            "FalsePositive",
            5 * DAY,
            Some(5 * DAY - 3 * HOUR),
            "Reports of call drops",
        ),
        p(
            "SP2301",
            "SharePoint",
            "advisory",
            "serviceRestored",
            15 * DAY,
            Some(14 * DAY),
            "Search results incomplete",
        ),
        p(
            "SP2302",
            "SharePoint",
            "incident",
            "serviceRestored",
            25 * DAY,
            Some(25 * DAY - 90 * 60),
            "Sites return errors",
        ),
        p(
            "SP2300",
            "SharePoint",
            "incident",
            "serviceRestored",
            34 * DAY,
            Some(32 * DAY),
            "Uploads fail",
        ),
        p(
            "PB2401",
            "PowerBIcom",
            "advisory",
            "falsePositive",
            6 * DAY,
            Some(6 * DAY - HOUR),
            "Dashboards slow to refresh",
        ),
    ]
}

/// Build a scenario by name; `None` for an unknown name.
pub fn build(name: &str, base: i64) -> Option<ScenarioData> {
    if name == "history" {
        let mut data = build("incident", base)?;
        data.name = name.into();
        data.issues.extend(history_issues(base));
        return Some(data);
    }
    let i = |id, service_id, classification, status, resolved, started_hours_ago, title| {
        issue(
            base,
            IssueSpec {
                id,
                service_id,
                classification,
                status,
                resolved,
                started_hours_ago,
                title,
            },
        )
    };
    let m = |n, category, severity, major, action_days, service_id| {
        message(
            base,
            MsgSpec {
                n,
                category,
                severity,
                major,
                action_days,
                service_id,
            },
        )
    };
    let resolved = vec![
        i(
            "OD0995",
            "OneDriveForBusiness",
            "incident",
            "serviceRestored",
            true,
            30,
            "Sync delays",
        ),
        i(
            "EX0990",
            "Exchange",
            "advisory",
            "postIncidentReviewPublished",
            true,
            50,
            "Slow search",
        ),
    ];
    let (ov, issues, messages) = match name {
        "healthy" => (
            overviews(&[]),
            resolved,
            vec![
                m(1, "planForChange", "normal", false, None, "Exchange"),
                m(2, "stayInformed", "normal", false, None, "SharePoint"),
                m(
                    3,
                    "preventOrFixIssue",
                    "high",
                    false,
                    Some(14),
                    "microsoftteams",
                ),
            ],
        ),
        "incident" => {
            let mut issues = vec![
                i(
                    "EX1001",
                    "Exchange",
                    "incident",
                    "serviceDegradation",
                    false,
                    3,
                    "Users can't send email with attachments",
                ),
                i(
                    "EX1002",
                    "Exchange",
                    "advisory",
                    "serviceDegradation",
                    false,
                    5,
                    "Delays in message delivery",
                ),
                i(
                    "SP1003",
                    "SharePoint",
                    "advisory",
                    "serviceDegradation",
                    false,
                    2,
                    "Slow page loads",
                ),
                i(
                    "TM1004",
                    "microsoftteams",
                    "incident",
                    "serviceInterruption",
                    false,
                    1,
                    "Users can't join meetings",
                ),
                i(
                    "TM1005",
                    "microsoftteams",
                    "advisory",
                    "investigating",
                    false,
                    4,
                    "Presence shows \"Unknown\"",
                ),
                i(
                    "IT1006",
                    "Intune",
                    "incident",
                    "extendedRecovery",
                    false,
                    20,
                    "Policy sync delayed",
                ),
            ];
            issues.extend(resolved);
            (
                overviews(&[
                    ("Exchange", "serviceDegradation"),
                    ("SharePoint", "serviceDegradation"),
                    ("microsoftteams", "serviceInterruption"),
                    ("Intune", "extendedRecovery"),
                    ("OneDriveForBusiness", "serviceRestored"),
                ]),
                issues,
                vec![
                    m(1, "preventOrFixIssue", "high", false, Some(10), "Exchange"),
                    m(2, "preventOrFixIssue", "normal", false, None, "SharePoint"),
                    m(
                        3,
                        "preventOrFixIssue",
                        "critical",
                        false,
                        Some(3),
                        "microsoftteams",
                    ),
                    m(4, "planForChange", "normal", true, None, "Exchange"),
                    m(5, "planForChange", "high", true, Some(30), "SharePoint"),
                    m(6, "planForChange", "normal", false, Some(-2), "Intune"),
                    m(7, "stayInformed", "normal", false, None, "Forms"),
                    m(8, "stayInformed", "normal", false, None, "Planner"),
                    m(9, "stayInformed", "high", true, None, "PowerBIcom"),
                    m(10, "planForChange", "critical", false, None, "OSDPPlatform"),
                ],
            )
        }
        "outage" => {
            let statuses: Vec<(&str, &str)> = SERVICES
                .iter()
                .map(|(id, _)| (*id, "serviceInterruption"))
                .collect();
            let mut issues: Vec<SimIssue> = SERVICES
                .iter()
                .enumerate()
                .map(|(n, (id, _))| {
                    issue(
                        base,
                        IssueSpec {
                            id: &format!("OUT{n:04}"),
                            service_id: id,
                            classification: "incident",
                            status: "serviceInterruption",
                            resolved: false,
                            started_hours_ago: 1,
                            title: "Service unavailable",
                        },
                    )
                })
                .collect();
            issues.extend(resolved);
            (
                overviews(&statuses),
                issues,
                vec![m(
                    1,
                    "preventOrFixIssue",
                    "critical",
                    false,
                    Some(1),
                    "OSDPPlatform",
                )],
            )
        }
        _ => return None,
    };
    Some(ScenarioData {
        name: name.into(),
        base,
        overviews: ov,
        issues,
        messages,
        application: super::applications::for_scenario(name, base),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_builds() {
        for s in SCENARIOS {
            let d = build(s, 1_800_000_000).unwrap();
            assert_eq!(d.overviews.len(), 12);
            for i in &d.issues {
                assert!(
                    SERVICES.iter().any(|(_, n)| *n == i.service),
                    "{}",
                    i.service
                );
            }
        }
        assert!(build("nope", 0).is_none());
    }

    /// `history` is the `incident` picture plus resolved history.
    #[test]
    fn history_extends_incident() {
        let base = 1_800_000_000;
        let (i, h) = (
            build("incident", base).unwrap(),
            build("history", base).unwrap(),
        );
        assert_eq!(h.name, "history");
        assert_eq!(h.issues.len(), i.issues.len() + history_issues(base).len());
        let ends = |d: &ScenarioData| -> Vec<String> {
            d.application
                .password_credentials
                .iter()
                .map(|c| c.end_date_time.clone())
                .collect()
        };
        assert_eq!(ends(&h), ends(&i));
        assert!(SCENARIOS.contains(&DEMO_SCENARIO));
    }
}
