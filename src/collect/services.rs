//! Service selection at refresh time: which of a tenant's services are
//! exported, from `service_health.services` and Microsoft's healthOverviews.
//!
//! Shared by the `service_health` and `messages` collectors of one tenant, so
//! that an id Microsoft does not list is warned about once per tenant, not
//! once per collector or refresh.

use crate::api::graph::{HealthOverview, Issue, Message};
use crate::config::ServiceSelection;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

pub struct ServiceFilter {
    tenant: String,
    selection: ServiceSelection,
    /// Ids already warned about (lower-cased).
    warned: Mutex<HashSet<String>>,
}

impl ServiceFilter {
    pub fn new(tenant: &str, selection: ServiceSelection) -> Self {
        ServiceFilter {
            tenant: tenant.to_string(),
            selection,
            warned: Mutex::default(),
        }
    }

    /// Whether every service passes (no list configured): nothing to filter.
    pub fn is_all(&self) -> bool {
        self.selection.is_all()
    }

    /// The chosen services and their issues. Issues name their service by
    /// display name; healthOverviews maps it to the id the lists use.
    pub fn health(
        &self,
        overviews: Vec<HealthOverview>,
        issues: Vec<Issue>,
    ) -> (Vec<HealthOverview>, Vec<Issue>) {
        if self.is_all() {
            return (overviews, issues);
        }
        self.warn_unknown(&overviews);
        let view = View::new(&overviews);
        let issues = issues
            .into_iter()
            .filter(|i| self.selection.wants(view.id_of(&i.service)))
            .collect();
        let overviews = overviews
            .into_iter()
            .filter(|o| self.selection.wants(&o.id))
            .collect();
        (overviews, issues)
    }

    /// Message-center posts about at least one chosen service, and posts
    /// that name no service at all (tenant-wide announcements).
    pub fn messages(&self, overviews: &[HealthOverview], messages: Vec<Message>) -> Vec<Message> {
        if self.is_all() {
            return messages;
        }
        self.warn_unknown(overviews);
        let view = View::new(overviews);
        messages
            .into_iter()
            .filter(|m| match m.services.as_deref() {
                None | Some([]) => true,
                Some(names) => names.iter().any(|n| self.selection.wants(view.id_of(n))),
            })
            .collect()
    }

    /// Ids in the lists that Microsoft does not list for this tenant: a
    /// warning once each (services are added and renamed; not an error).
    fn warn_unknown(&self, overviews: &[HealthOverview]) {
        if overviews.is_empty() {
            return;
        }
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        for id in self.selection.named() {
            let known = overviews.iter().any(|o| o.id.eq_ignore_ascii_case(id));
            if !known && warned.insert(id.to_ascii_lowercase()) {
                let listed: Vec<&str> = overviews.iter().map(|o| o.id.as_str()).collect();
                tracing::warn!(
                    tenant = %self.tenant,
                    service_id = %id,
                    known = %listed.join(","),
                    "service_health.services names a service id that Microsoft does not list for this tenant; it matches nothing"
                );
            }
        }
    }
}

/// Display name → service id, for one refresh.
struct View<'a> {
    id_by_name: HashMap<&'a str, &'a str>,
}

impl<'a> View<'a> {
    fn new(overviews: &'a [HealthOverview]) -> Self {
        View {
            id_by_name: overviews
                .iter()
                .map(|o| (o.service.as_str(), o.id.as_str()))
                .collect(),
        }
    }

    /// The id of a service named by display name; a name healthOverviews
    /// does not know stands for itself (as the service_health metrics do).
    fn id_of<'n>(&self, name: &'n str) -> &'n str
    where
        'a: 'n,
    {
        self.id_by_name.get(name).copied().unwrap_or(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::graph::operational;

    /// The services healthOverviews lists.
    const SERVICES: &[(&str, &str)] = &[
        ("Exchange", "Exchange Online"),
        ("microsoftteams", "Microsoft Teams"),
        ("yammer", "Yammer Enterprise"),
    ];

    fn issue(id: &str, service: &str) -> Issue {
        Issue {
            id: id.into(),
            service: service.into(),
            classification: "incident".into(),
            origin: None,
            status: "serviceDegradation".into(),
            is_resolved: false,
            feature: None,
            feature_group: None,
            title: None,
            start_date_time: None,
            end_date_time: None,
            last_modified_date_time: None,
        }
    }

    fn msg(id: &str, services: Option<&[&str]>) -> Message {
        Message {
            id: id.into(),
            category: "planForChange".into(),
            severity: "normal".into(),
            is_major_change: None,
            action_required_by_date_time: None,
            services: services.map(|s| s.iter().map(|n| n.to_string()).collect()),
            title: None,
        }
    }

    fn filter(include: &[&str], exclude: &[&str]) -> ServiceFilter {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        ServiceFilter::new(
            "t",
            ServiceSelection {
                include: v(include),
                exclude: v(exclude),
            },
        )
    }

    #[test]
    fn include_then_exclude_case_insensitively() {
        let f = filter(&["exchange", "MicrosoftTeams", "Yammer"], &["Yammer"]);
        let (ov, issues) = f.health(
            operational(SERVICES),
            vec![
                issue("EX1", "Exchange Online"),
                issue("YA1", "Yammer Enterprise"),
                issue("XX1", "Brand New Service"),
            ],
        );
        let ids: Vec<_> = ov.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["Exchange", "microsoftteams"]);
        let ids: Vec<_> = issues.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["EX1"]);
    }

    #[test]
    fn exclude_only_keeps_the_rest_and_unknown_services() {
        let f = filter(&[], &["yammer"]);
        let (ov, issues) = f.health(
            operational(SERVICES),
            vec![issue("YA1", "Yammer Enterprise"), issue("XX1", "Brand New")],
        );
        assert_eq!(ov.len(), 2);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].id, "XX1");
    }

    #[test]
    fn messages_all_excluded_are_dropped() {
        let f = filter(&[], &["Exchange", "yammer"]);
        let kept = f.messages(
            &operational(SERVICES),
            vec![
                msg("M1", Some(&["Exchange Online"])),
                msg("M2", Some(&["Exchange Online", "Yammer Enterprise"])),
                msg("M3", Some(&["Exchange Online", "Microsoft Teams"])),
                msg("M4", None),
                msg("M5", Some(&[])),
            ],
        );
        let ids: Vec<_> = kept.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["M3", "M4", "M5"]);
    }

    #[test]
    fn no_selection_passes_everything() {
        let f = filter(&[], &[]);
        let (ov, issues) = f.health(operational(SERVICES), vec![issue("X", "Nowhere")]);
        assert_eq!((ov.len(), issues.len()), (3, 1));
    }

    #[test]
    fn unknown_ids_are_remembered_once() {
        let f = filter(&["Exchange", "Nope"], &["AlsoNope"]);
        f.health(operational(SERVICES), vec![]);
        f.messages(&operational(SERVICES), vec![]);
        let warned = f.warned.lock().unwrap().clone();
        assert_eq!(
            warned,
            HashSet::from(["nope".to_string(), "alsonope".to_string()])
        );
        // An empty answer proves nothing about the ids.
        let g = filter(&["Nope"], &[]);
        g.health(vec![], vec![]);
        assert!(g.warned.lock().unwrap().is_empty());
    }
}
