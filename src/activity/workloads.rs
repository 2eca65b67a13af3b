//! The `workload` label of `m365_activity_records_total`, bounded per
//! tenant: Microsoft's known workloads pass as they are, then the first
//! [`MAX_OTHER`] unknown values, then everything else is folded into
//! `other` (one warning, the first time). A tenant whose records carry
//! thousands of distinct `Workload` values cannot blow up the series count.

use std::collections::HashSet;

/// Workload values Microsoft documents for the unified audit log.
pub const KNOWN: &[&str] = &[
    "AzureActiveDirectory",
    "Exchange",
    "SharePoint",
    "OneDrive",
    "MicrosoftTeams",
    "PowerBI",
    "MicrosoftForms",
    "MicrosoftStream",
    "Yammer",
    "SecurityComplianceCenter",
    "ThreatIntelligence",
    "MicrosoftFlow",
    "PowerApps",
    "Dynamics365",
    "CRM",
    "Project",
    "Planner",
    "Sway",
    "Kaizala",
    "OneNote",
    "Whiteboard",
    "Viva",
    "Copilot",
    "MicrosoftDefenderForIdentity",
    "DataInsights",
    "Compliance",
    "PublicEndpoint",
    "AeD",
    "MyAnalytics",
    "WorkplaceAnalytics",
    "Quarantine",
    "MicrosoftTodo",
    "Endpoint",
    "AzureInformationProtection",
    "InformationBarriers",
    "",
];

/// Unknown workload values kept as themselves per tenant, before `other`.
pub const MAX_OTHER: usize = 20;
pub const OTHER: &str = "other";

#[derive(Debug, Default)]
pub struct WorkloadCap {
    extra: HashSet<String>,
    warned: bool,
}

impl WorkloadCap {
    /// The label value for `w`; logs once when folding starts.
    pub fn label<'a>(&mut self, tenant: &str, w: &'a str) -> &'a str {
        if KNOWN.contains(&w) || self.extra.contains(w) {
            return w;
        }
        if self.extra.len() < MAX_OTHER {
            self.extra.insert(w.to_string());
            return w;
        }
        if !self.warned {
            self.warned = true;
            tracing::warn!(tenant = %tenant, workload = %w, cap = MAX_OTHER,
                "audit records carry more distinct unknown Workload values than the label cap: further ones are counted as workload=\"other\"");
        }
        OTHER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_then_first_unknown_then_other() {
        let mut c = WorkloadCap::default();
        assert_eq!(c.label("t", "Exchange"), "Exchange");
        let names: Vec<String> = (0..100).map(|i| format!("W{i}")).collect();
        let labels: HashSet<&str> = names.iter().map(|n| c.label("t", n)).collect();
        assert_eq!(labels.len(), MAX_OTHER + 1);
        assert!(labels.contains(OTHER));
        assert_eq!(c.label("t", "W3"), "W3", "an early value keeps its label");
        assert_eq!(c.label("t", "SharePoint"), "SharePoint");
    }
}
