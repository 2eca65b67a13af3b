//! The track record: Microsoft's own issue history (Graph `issues`, resolved
//! ones included) turned into figures per service over a rolling window —
//! availability, time under incidents and advisories, issues started and
//! resolved, time to resolve, post-incident reviews.
//!
//! [`compute`] is a pure function of the lists and the window, shared by
//! the `service_health` collector (which renders it with [`write`]) and
//! `m365-exporter report`. The rules, as docs/track-record.md states them:
//! - an issue covers `[startDateTime, endDateTime]` when resolved (its
//!   `lastModifiedDateTime` when Microsoft gives no end), `[startDateTime,
//!   now]` when not, clipped to the window `[now − window, now]`; it belongs
//!   to the window when that span overlaps it;
//! - `falsePositive` issues cover nothing and count nowhere; only the
//!   classifications `incident` and `advisory` are tracked; enum values
//!   match in any case (Microsoft's pages print `Incident`, `FalsePositive`);
//! - the time covered is the union of the issues of one service and
//!   classification, so parallel issues do not count twice;
//! - started: the start lies in the window; resolved: resolved, and the
//!   end lies in the window; time to resolve is `end − start` of those.

use crate::api::graph::{HealthOverview, Issue};
use crate::metrics::{Family, SnapshotWriter};
use crate::timefmt::parse_unix;
use std::collections::{BTreeMap, HashMap};

/// The classifications the track record follows, in label order.
pub const TRACKED: [&str; 2] = ["incident", "advisory"];

const FALSE_POSITIVE: &str = "falsePositive";
const POST_INCIDENT_REVIEW: &str = "postIncidentReviewPublished";

/// `[end − length, end]`, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Now, when the figures are computed.
    pub end: f64,
    /// Seconds.
    pub length: f64,
}

impl Window {
    pub fn start(&self) -> f64 {
        self.end - self.length
    }

    fn contains(&self, t: f64) -> bool {
        (self.start()..=self.end).contains(&t)
    }
}

/// One classification's figures for one service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Seconds of the window covered by at least one issue.
    pub impact_seconds: f64,
    /// Issues that started in the window.
    pub started: u32,
    /// Issues that ended (resolved) in the window.
    pub resolved: u32,
    /// Issues whose covered span overlaps the window.
    pub in_window: u32,
    ttr_sum: f64,
    ttr_max: f64,
}

impl Figures {
    /// Mean `end − start` of the issues resolved in the window.
    pub fn time_to_resolve_mean(&self) -> Option<f64> {
        (self.resolved > 0).then(|| self.ttr_sum / f64::from(self.resolved))
    }

    /// Longest `end − start` of the issues resolved in the window.
    pub fn time_to_resolve_max(&self) -> Option<f64> {
        (self.resolved > 0).then_some(self.ttr_max)
    }
}

/// An issue that belongs to the window, as the report lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowIssue {
    pub id: String,
    pub title: String,
    /// One of [`TRACKED`].
    pub classification: &'static str,
    pub status: String,
    pub start: f64,
    /// None while unresolved.
    pub end: Option<f64>,
}

/// One service's track record.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRecord {
    pub service_id: String,
    /// Graph's display name.
    pub name: String,
    pub incident: Figures,
    pub advisory: Figures,
    /// Issues of the window whose status is `postIncidentReviewPublished`.
    pub post_incident_reviews: u32,
    /// The issues of the window, oldest first.
    pub issues: Vec<WindowIssue>,
}

impl ServiceRecord {
    fn new(service_id: &str, name: &str) -> Self {
        ServiceRecord {
            service_id: service_id.to_string(),
            name: name.to_string(),
            incident: Figures::default(),
            advisory: Figures::default(),
            post_incident_reviews: 0,
            issues: Vec::new(),
        }
    }

    /// `1 − incident impact / window`.
    pub fn availability(&self, window: &Window) -> f64 {
        match window.length > 0.0 {
            true => (1.0 - self.incident.impact_seconds / window.length).clamp(0.0, 1.0),
            false => 1.0,
        }
    }

    /// The figures of one of [`TRACKED`].
    pub fn figures(&self, classification: &str) -> &Figures {
        match classification {
            "incident" => &self.incident,
            _ => &self.advisory,
        }
    }

    fn figures_mut(&mut self, classification: &str) -> &mut Figures {
        match classification {
            "incident" => &mut self.incident,
            _ => &mut self.advisory,
        }
    }
}

/// The track record of one tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackRecord {
    pub window: Window,
    /// Every service of healthOverviews in its order (quiet ones at 1.0),
    /// then services only issues name, by id.
    pub services: Vec<ServiceRecord>,
}

impl TrackRecord {
    /// The service with the lowest availability (the first of equals);
    /// None when every service was available throughout.
    pub fn least_available(&self) -> Option<&ServiceRecord> {
        self.services
            .iter()
            .filter(|s| s.incident.impact_seconds > 0.0)
            .min_by(|a, b| {
                a.availability(&self.window)
                    .total_cmp(&b.availability(&self.window))
            })
    }
}

/// A ratio as a percentage with three decimals, rounded down so that a
/// service short of 100 % never reads as 100 %: `0.99952` → `99.952 %`.
pub fn percent(ratio: f64) -> String {
    if ratio >= 1.0 {
        return "100 %".into();
    }
    // The epsilon keeps 0.999 (0.99899999… in binary) at 99.900 %.
    let thousandths = (ratio.max(0.0) * 100_000.0 + 1e-6).floor() / 1000.0;
    format!("{thousandths:.3} %")
}

/// `incident`/`advisory` in any case, as the label spells it.
fn tracked(classification: &str) -> Option<&'static str> {
    TRACKED
        .into_iter()
        .find(|c| c.eq_ignore_ascii_case(classification))
}

/// The span an issue covers, before clipping: None when it covers nothing
/// (a false positive, an issue without a start, a resolved one without any
/// end), else (start, end, resolved).
fn span(i: &Issue, now: f64) -> Option<(f64, f64, bool)> {
    if i.status.eq_ignore_ascii_case(FALSE_POSITIVE) {
        return None;
    }
    let start = parse_unix(i.start_date_time.as_deref()?)?;
    let end = match i.is_resolved {
        true => i
            .end_date_time
            .as_deref()
            .and_then(parse_unix)
            .or_else(|| i.last_modified_date_time.as_deref().and_then(parse_unix))?,
        false => now,
    };
    Some((start, end.max(start), i.is_resolved))
}

/// The figures of every service over `window`, from one refresh's lists
/// (already narrowed to the service selection).
pub fn compute(overviews: &[HealthOverview], issues: &[Issue], window: Window) -> TrackRecord {
    let mut services: Vec<ServiceRecord> = overviews
        .iter()
        .map(|o| ServiceRecord::new(&o.id, &o.service))
        .collect();
    let mut index: HashMap<String, usize> = overviews
        .iter()
        .enumerate()
        .map(|(n, o)| (o.id.clone(), n))
        .collect();
    // Issues name their service by display name; healthOverviews maps it to
    // the id. A name it does not know stands for itself (as the active-issue
    // metrics do).
    let id_by_name: HashMap<&str, &str> = overviews
        .iter()
        .map(|o| (o.service.as_str(), o.id.as_str()))
        .collect();
    let mut extra: BTreeMap<String, ServiceRecord> = BTreeMap::new();
    // (service index or extra id, classification) → clipped spans.
    let mut spans: HashMap<(String, &'static str), Vec<(f64, f64)>> = HashMap::new();
    for i in issues {
        let Some(class) = tracked(&i.classification) else {
            continue;
        };
        let Some((start, end, resolved)) = span(i, window.end) else {
            continue;
        };
        if start > window.end || end < window.start() {
            continue;
        }
        let sid = id_by_name
            .get(i.service.as_str())
            .copied()
            .unwrap_or(i.service.as_str());
        let record = match index.get(sid) {
            Some(&n) => &mut services[n],
            None => extra
                .entry(sid.to_string())
                .or_insert_with(|| ServiceRecord::new(sid, &i.service)),
        };
        let f = record.figures_mut(class);
        f.in_window += 1;
        if window.contains(start) {
            f.started += 1;
        }
        if resolved && window.contains(end) {
            f.resolved += 1;
            f.ttr_sum += end - start;
            f.ttr_max = f.ttr_max.max(end - start);
        }
        if i.status.eq_ignore_ascii_case(POST_INCIDENT_REVIEW) {
            record.post_incident_reviews += 1;
        }
        record.issues.push(WindowIssue {
            id: i.id.clone(),
            title: i.title.clone().unwrap_or_default(),
            classification: class,
            status: i.status.clone(),
            start,
            end: resolved.then_some(end),
        });
        spans
            .entry((sid.to_string(), class))
            .or_default()
            .push((start.max(window.start()), end.min(window.end)));
    }
    for (_, r) in extra {
        index.insert(r.service_id.clone(), services.len());
        services.push(r);
    }
    for ((sid, class), list) in spans {
        if let Some(&n) = index.get(&sid) {
            services[n].figures_mut(class).impact_seconds = union_length(list);
        }
    }
    for s in &mut services {
        s.issues
            .sort_by(|a, b| a.start.total_cmp(&b.start).then(a.id.cmp(&b.id)));
    }
    TrackRecord { window, services }
}

/// The measure of a union of closed intervals.
fn union_length(mut spans: Vec<(f64, f64)>) -> f64 {
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut current: Option<(f64, f64)> = None;
    for (s, e) in spans {
        current = match current {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = current {
        total += ce - cs;
    }
    total
}

/// The track-record families of one tenant: the window, and per service
/// the availability, post-incident reviews and, per tracked
/// classification, impact, started, resolved (all present at 0) and time
/// to resolve (absent when nothing was resolved).
pub fn write(w: &mut SnapshotWriter, tenant: &str, t: &TrackRecord) {
    w.sample(
        Family::HistoryWindow,
        &[("tenant", tenant)],
        t.window.length,
    );
    for s in &t.services {
        let sid = [("tenant", tenant), ("service_id", s.service_id.as_str())];
        w.sample(Family::AvailabilityRatio, &sid, s.availability(&t.window));
        w.sample(
            Family::PostIncidentReviews,
            &sid,
            f64::from(s.post_incident_reviews),
        );
        for class in TRACKED {
            let f = s.figures(class);
            let labels = [
                ("tenant", tenant),
                ("service_id", s.service_id.as_str()),
                ("classification", class),
            ];
            w.sample(Family::ImpactSeconds, &labels, f.impact_seconds);
            w.sample(Family::IssuesStarted, &labels, f64::from(f.started));
            w.sample(Family::IssuesResolved, &labels, f64::from(f.resolved));
            if let Some(v) = f.time_to_resolve_mean() {
                w.sample(Family::TimeToResolveMean, &labels, v);
            }
            if let Some(v) = f.time_to_resolve_max() {
                w.sample(Family::TimeToResolveMax, &labels, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::graph::operational;

    const H: f64 = 3_600.0;
    const D: f64 = 86_400.0;
    /// Now: 2026-12-01T00:00:00Z; the window is the 30 days before.
    const NOW: f64 = 1_796_083_200.0;
    const WINDOW: Window = Window {
        end: NOW,
        length: 30.0 * D,
    };

    /// The services healthOverviews lists.
    const SERVICES: &[(&str, &str)] = &[
        ("Exchange", "Exchange Online"),
        ("microsoftteams", "Microsoft Teams"),
        ("SharePoint", "SharePoint Online"),
    ];

    fn ts(unix: f64) -> String {
        crate::timefmt::rfc3339(unix as i64)
    }

    /// An issue of `service` from `start` to `end` (None: unresolved), in
    /// seconds relative to NOW.
    fn issue(id: &str, service: &str, class: &str, start: f64, end: Option<f64>) -> Issue {
        Issue {
            id: id.into(),
            service: service.into(),
            classification: class.into(),
            origin: Some("microsoft".into()),
            status: match end {
                Some(_) => "serviceRestored".into(),
                None => "serviceDegradation".into(),
            },
            is_resolved: end.is_some(),
            feature: None,
            feature_group: None,
            title: Some(format!("Issue {id}")),
            start_date_time: Some(ts(NOW + start)),
            end_date_time: end.map(|e| ts(NOW + e)),
            last_modified_date_time: Some(ts(NOW - 60.0)),
        }
    }

    fn with_status(mut i: Issue, status: &str) -> Issue {
        i.status = status.into();
        i
    }

    fn record<'a>(t: &'a TrackRecord, id: &str) -> &'a ServiceRecord {
        t.services
            .iter()
            .find(|s| s.service_id == id)
            .unwrap_or_else(|| panic!("no {id}"))
    }

    /// Two parallel incidents count once: 10:00–16:00 and 12:00–18:00 on
    /// the same day are 8 hours, not 12; an advisory beside them is its own.
    #[test]
    fn overlapping_issues_count_once() {
        let issues = [
            issue(
                "TM1",
                "Microsoft Teams",
                "incident",
                -10.0 * D,
                Some(-10.0 * D + 6.0 * H),
            ),
            issue(
                "TM2",
                "Microsoft Teams",
                "incident",
                -10.0 * D + 2.0 * H,
                Some(-10.0 * D + 8.0 * H),
            ),
            // Inside TM1 entirely: adds nothing.
            issue(
                "TM3",
                "Microsoft Teams",
                "incident",
                -10.0 * D + H,
                Some(-10.0 * D + 2.0 * H),
            ),
            issue(
                "TM4",
                "Microsoft Teams",
                "advisory",
                -10.0 * D,
                Some(-10.0 * D + H),
            ),
        ];
        let t = compute(&operational(SERVICES), &issues, WINDOW);
        let r = record(&t, "microsoftteams");
        assert_eq!(r.incident.impact_seconds, 8.0 * H);
        assert_eq!((r.incident.started, r.incident.resolved), (3, 3));
        // (6 + 6 + 1) h / 3 = 4 h 20 m.
        assert_eq!(
            r.incident.time_to_resolve_mean(),
            Some(4.0 * H + 20.0 * 60.0)
        );
        assert_eq!(r.incident.time_to_resolve_max(), Some(6.0 * H));
        assert_eq!(r.advisory.impact_seconds, H);
        assert_eq!(r.availability(&WINDOW), 1.0 - 8.0 * H / (30.0 * D));
    }

    /// An incident from 33 to 29 days ago covers the window's first day
    /// only; it ended in the window (resolved, time to resolve 4 days) but
    /// did not start in it. One that ended before the window counts nowhere.
    #[test]
    fn clipped_at_the_window_start() {
        let issues = [
            issue(
                "EX1",
                "Exchange Online",
                "incident",
                -33.0 * D,
                Some(-29.0 * D),
            ),
            issue(
                "EX0",
                "Exchange Online",
                "incident",
                -34.0 * D,
                Some(-31.0 * D),
            ),
        ];
        let t = compute(&operational(SERVICES), &issues, WINDOW);
        let r = record(&t, "Exchange");
        assert_eq!(r.incident.impact_seconds, D);
        assert_eq!(r.incident.started, 0);
        assert_eq!(r.incident.resolved, 1);
        assert_eq!(r.incident.in_window, 1);
        assert_eq!(r.incident.time_to_resolve_max(), Some(4.0 * D));
        let ids: Vec<&str> = r.issues.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["EX1"]);
    }

    /// An unresolved incident covers up to now, whatever endDateTime says;
    /// one older than the window covers all of it.
    #[test]
    fn open_issue_counts_up_to_now() {
        let mut open = issue("SP1", "SharePoint Online", "incident", -5.0 * H, None);
        // An estimate Microsoft may print on an open issue: not the end.
        open.end_date_time = Some(ts(NOW - 4.0 * H));
        let t = compute(&operational(SERVICES), &[open], WINDOW);
        let r = record(&t, "SharePoint");
        assert_eq!(r.incident.impact_seconds, 5.0 * H);
        assert_eq!((r.incident.started, r.incident.resolved), (1, 0));
        assert_eq!(r.incident.time_to_resolve_mean(), None);
        assert_eq!(r.issues[0].end, None);
        let ancient = issue("SP2", "SharePoint Online", "incident", -40.0 * D, None);
        let t = compute(&operational(SERVICES), &[ancient], WINDOW);
        let r = record(&t, "SharePoint");
        assert_eq!(r.incident.impact_seconds, 30.0 * D);
        assert_eq!(r.availability(&WINDOW), 0.0);
        assert_eq!(r.incident.started, 0);
    }

    /// falsePositive (in any case) covers nothing and counts nowhere, not
    /// even as a post-incident review or an issue of the window.
    #[test]
    fn false_positive_ignored() {
        let issues = [
            with_status(
                issue(
                    "EX2",
                    "Exchange Online",
                    "incident",
                    -3.0 * D,
                    Some(-2.0 * D),
                ),
                "falsePositive",
            ),
            with_status(
                issue(
                    "EX3",
                    "Exchange Online",
                    "Incident",
                    -3.0 * D,
                    Some(-2.0 * D),
                ),
                "FalsePositive",
            ),
        ];
        let t = compute(&operational(SERVICES), &issues, WINDOW);
        let r = record(&t, "Exchange");
        assert_eq!(r.incident, Figures::default());
        assert_eq!(r.post_incident_reviews, 0);
        assert!(r.issues.is_empty());
        assert_eq!(r.availability(&WINDOW), 1.0);
    }

    /// Advisories have their own impact but leave availability alone.
    #[test]
    fn advisory_not_in_availability() {
        let issues = [issue(
            "EX4",
            "Exchange Online",
            "advisory",
            -2.0 * D,
            Some(-D),
        )];
        let t = compute(&operational(SERVICES), &issues, WINDOW);
        let r = record(&t, "Exchange");
        assert_eq!(r.advisory.impact_seconds, D);
        assert_eq!((r.advisory.started, r.advisory.resolved), (1, 1));
        assert_eq!(r.incident.impact_seconds, 0.0);
        assert_eq!(r.availability(&WINDOW), 1.0);
        assert!(t.least_available().is_none());
    }

    /// Every service of healthOverviews is there; one without issues at 1.0
    /// and zeros, rendered as series (not a gap), without time to resolve.
    #[test]
    fn quiet_service_is_one_not_a_gap() {
        let t = compute(&operational(SERVICES), &[], WINDOW);
        let ids: Vec<&str> = t.services.iter().map(|s| s.service_id.as_str()).collect();
        assert_eq!(ids, ["Exchange", "microsoftteams", "SharePoint"]);
        let mut w = SnapshotWriter::new();
        write(&mut w, "t", &t);
        let r = w.finish();
        let text = |f| String::from_utf8(r.get(f).unwrap_or_default().to_vec()).unwrap();
        assert_eq!(
            text(Family::HistoryWindow),
            "m365_service_history_window_seconds{tenant=\"t\"} 2592000\n"
        );
        assert!(text(Family::AvailabilityRatio).contains(
            "m365_service_availability_ratio{tenant=\"t\",service_id=\"SharePoint\"} 1\n"
        ));
        for f in [
            Family::ImpactSeconds,
            Family::IssuesStarted,
            Family::IssuesResolved,
        ] {
            assert_eq!(text(f).lines().count(), 6, "{f:?}");
            assert!(text(f).lines().all(|l| l.ends_with(" 0")), "{f:?}");
        }
        assert_eq!(text(Family::PostIncidentReviews).lines().count(), 3);
        assert!(r.get(Family::TimeToResolveMean).is_none());
        assert!(r.get(Family::TimeToResolveMax).is_none());
    }

    /// Classifications and statuses in PascalCase (as Microsoft's pages
    /// print them) count as their camelCase selves; other classifications
    /// are not tracked; a post-incident review counts once per issue.
    #[test]
    fn enum_values_in_any_case() {
        let issues = [
            with_status(
                issue(
                    "EX5",
                    "Exchange Online",
                    "Incident",
                    -6.0 * D,
                    Some(-6.0 * D + 2.0 * H),
                ),
                "PostIncidentReviewPublished",
            ),
            with_status(
                issue(
                    "EX6",
                    "Exchange Online",
                    "ADVISORY",
                    -6.0 * D,
                    Some(-5.0 * D),
                ),
                "postIncidentReviewPublished",
            ),
            issue(
                "EX7",
                "Exchange Online",
                "unknownFutureValue",
                -6.0 * D,
                None,
            ),
        ];
        let t = compute(&operational(SERVICES), &issues, WINDOW);
        let r = record(&t, "Exchange");
        assert_eq!(r.incident.impact_seconds, 2.0 * H);
        assert_eq!(r.advisory.impact_seconds, D);
        assert_eq!(r.post_incident_reviews, 2);
        assert_eq!(r.issues.len(), 2);
        assert_eq!(r.issues[0].classification, "incident");
    }

    /// A service healthOverviews does not list is tracked under its name;
    /// a resolved issue without endDateTime ends when last modified; one
    /// without any start or end counts nowhere.
    #[test]
    fn unknown_services_and_missing_times() {
        let mut no_end = issue("VV1", "Microsoft Viva", "incident", -3.0 * H, Some(0.0));
        no_end.end_date_time = None;
        no_end.last_modified_date_time = Some(ts(NOW - H));
        let mut no_start = issue("VV2", "Microsoft Viva", "incident", 0.0, None);
        no_start.start_date_time = Some("yesterday".into());
        let mut nothing = issue("VV3", "Microsoft Viva", "incident", -H, Some(0.0));
        nothing.end_date_time = None;
        nothing.last_modified_date_time = None;
        let t = compute(&operational(SERVICES), &[no_end, no_start, nothing], WINDOW);
        assert_eq!(t.services.len(), 4);
        let r = record(&t, "Microsoft Viva");
        assert_eq!(r.name, "Microsoft Viva");
        assert_eq!(r.incident.impact_seconds, 2.0 * H);
        assert_eq!(r.incident.resolved, 1);
        assert_eq!(
            t.least_available().map(|s| s.service_id.as_str()),
            Some("Microsoft Viva")
        );
    }

    #[test]
    fn percentages_round_down() {
        assert_eq!(percent(1.0), "100 %");
        assert_eq!(percent(0.999_999_9), "99.999 %");
        assert_eq!(percent(0.999), "99.900 %");
        assert_eq!(percent(0.956_944_4), "95.694 %");
        assert_eq!(percent(0.0), "0.000 %");
    }

    #[test]
    fn union_of_intervals() {
        assert_eq!(union_length(vec![]), 0.0);
        assert_eq!(union_length(vec![(5.0, 6.0), (0.0, 2.0), (1.0, 3.0)]), 4.0);
        assert_eq!(union_length(vec![(0.0, 2.0), (2.0, 4.0)]), 4.0);
        assert_eq!(
            union_length(vec![(0.0, 10.0), (1.0, 2.0), (3.0, 4.0)]),
            10.0
        );
    }
}
