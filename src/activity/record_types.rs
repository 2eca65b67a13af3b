//! Which Management Activity API content type an Audit Log Query API record
//! belongs to: the one table the reconciler reads (and docs/activity.md
//! shows). The query API searches the whole unified audit log; the feed
//! receives it split into five content types, so each record of a query is
//! mapped to the type that would have delivered it, and records of types a
//! tenant does not follow are left out of the comparison.
//!
//! The record's `auditLogRecordType` decides (Graph's camelCase enum,
//! compared case-insensitively: Microsoft's own pages print it in
//! PascalCase too); a type the table does not know falls back to the
//! record's workload (`auditData.Workload`, else the record's `service`);
//! anything else is `Audit.General`, which Microsoft documents as "all
//! other workloads".

/// `auditLogRecordType` values → content type. DLP first: a DLP record's
/// workload is Exchange or SharePoint, but it is delivered in `DLP.All`.
const BY_RECORD_TYPE: &[(&str, &str)] = &[
    ("complianceDLPSharePoint", "DLP.All"),
    ("complianceDLPExchange", "DLP.All"),
    ("complianceDLPSharePointClassification", "DLP.All"),
    ("complianceDLPExchangeClassification", "DLP.All"),
    ("complianceDLPEndpoint", "DLP.All"),
    ("dlpEndpoint", "DLP.All"),
    ("azureActiveDirectory", "Audit.AzureActiveDirectory"),
    (
        "azureActiveDirectoryAccountLogon",
        "Audit.AzureActiveDirectory",
    ),
    ("azureActiveDirectoryStsLogon", "Audit.AzureActiveDirectory"),
    ("exchangeAdmin", "Audit.Exchange"),
    ("exchangeItem", "Audit.Exchange"),
    ("exchangeItemGroup", "Audit.Exchange"),
    ("exchangeAggregatedOperation", "Audit.Exchange"),
    ("exchangeItemAggregated", "Audit.Exchange"),
    ("sharePoint", "Audit.SharePoint"),
    ("sharePointFileOperation", "Audit.SharePoint"),
    ("sharePointSharingOperation", "Audit.SharePoint"),
    ("sharePointListOperation", "Audit.SharePoint"),
    ("sharePointListItemOperation", "Audit.SharePoint"),
    ("sharePointCommentOperation", "Audit.SharePoint"),
    ("sharePointContentTypeOperation", "Audit.SharePoint"),
    ("sharePointFieldOperation", "Audit.SharePoint"),
    ("oneDrive", "Audit.SharePoint"),
];

/// Workloads (`auditData.Workload`, or the record's `service`) → content
/// type, for a record type the table above does not name.
const BY_WORKLOAD: &[(&str, &str)] = &[
    ("AzureActiveDirectory", "Audit.AzureActiveDirectory"),
    ("Exchange", "Audit.Exchange"),
    ("SharePoint", "Audit.SharePoint"),
    ("OneDrive", "Audit.SharePoint"),
];

/// Everything else.
pub const GENERAL: &str = "Audit.General";

/// The content type of a record with this `auditLogRecordType` and
/// workload (either may be unknown).
pub fn content_type(record_type: Option<&str>, workload: Option<&str>) -> &'static str {
    let find = |table: &[(&str, &'static str)], v: Option<&str>| {
        let v = v?;
        table
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(v))
            .map(|(_, ct)| *ct)
    };
    find(BY_RECORD_TYPE, record_type)
        .or_else(|| find(BY_WORKLOAD, workload))
        .unwrap_or(GENERAL)
}

/// The table as markdown rows (`| auditLogRecordType | content type |`),
/// for docs/activity.md.
pub fn markdown() -> String {
    let mut out = String::from("| `auditLogRecordType` | content type |\n|---|---|\n");
    for (rt, ct) in BY_RECORD_TYPE {
        out.push_str(&format!("| `{rt}` | `{ct}` |\n"));
    }
    out.push_str("| any other, by workload (`auditData.Workload`, else `service`) | |\n");
    for (w, ct) in BY_WORKLOAD {
        out.push_str(&format!("| … workload `{w}` | `{ct}` |\n"));
    }
    out.push_str(&format!("| anything else | `{GENERAL}` |\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CONTENT_TYPES;

    #[test]
    fn record_types_then_workloads_then_general() {
        assert_eq!(content_type(Some("exchangeItem"), None), "Audit.Exchange");
        // Microsoft's pages print the enum in PascalCase as well.
        assert_eq!(content_type(Some("ExchangeItem"), None), "Audit.Exchange");
        assert_eq!(
            content_type(Some("complianceDLPExchange"), Some("Exchange")),
            "DLP.All",
            "a DLP record of Exchange is DLP.All's"
        );
        assert_eq!(content_type(Some("oneDrive"), None), "Audit.SharePoint");
        assert_eq!(
            content_type(Some("azureActiveDirectoryStsLogon"), None),
            "Audit.AzureActiveDirectory"
        );
        assert_eq!(
            content_type(Some("someNewExchangeThing"), Some("Exchange")),
            "Audit.Exchange"
        );
        assert_eq!(
            content_type(Some("microsoftTeams"), Some("MicrosoftTeams")),
            GENERAL
        );
        assert_eq!(content_type(None, None), GENERAL);
        assert_eq!(content_type(Some("unknownFutureValue"), None), GENERAL);
    }

    #[test]
    fn every_target_is_a_content_type() {
        for (_, ct) in BY_RECORD_TYPE.iter().chain(BY_WORKLOAD) {
            assert!(CONTENT_TYPES.contains(ct), "{ct}");
        }
        assert!(CONTENT_TYPES.contains(&GENERAL));
        assert!(markdown().contains("| `dlpEndpoint` | `DLP.All` |"));
    }

    #[test]
    fn docs_show_the_table() {
        let docs = include_str!("../../docs/activity.md");
        assert!(
            docs.contains(&markdown()),
            "docs/activity.md: {}",
            markdown()
        );
    }
}
