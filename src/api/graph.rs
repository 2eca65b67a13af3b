//! Microsoft Graph client: the three `admin/serviceAnnouncement` lists, each
//! followed through `@odata.nextLink` to its end, and the app registration's
//! own credentials (`applications(appId='…')`).
//!
//! Enum values (status, classification, origin, category, severity) are
//! read without regard to case and kept in the v1.0 schema's camelCase
//! spelling: the schema documents `serviceOperational`, `incident`, while
//! Microsoft's own API pages print `"ServiceOperational"`, `"Incident"`
//! (docs/microsoft.md). A value the schema does not list passes through
//! verbatim.

use crate::api::{Api, ApiClient, ApiError, Call};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::sync::Arc;

/// A Graph page is small; anything past this is not a Graph answer.
const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;
/// Guards against a nextLink loop.
const MAX_PAGES: usize = 1_000;

/// `serviceHealthStatus` members (v1.0 schema).
pub const STATUSES: [&str; 18] = [
    "serviceOperational",
    "investigating",
    "restoringService",
    "verifyingService",
    "serviceRestored",
    "postIncidentReviewPublished",
    "serviceDegradation",
    "serviceInterruption",
    "extendedRecovery",
    "falsePositive",
    "investigationSuspended",
    "resolved",
    "mitigatedExternal",
    "mitigated",
    "resolvedExternal",
    "confirmed",
    "reported",
    "unknownFutureValue",
];
/// `serviceHealthClassificationType` members.
pub const CLASSIFICATIONS: [&str; 3] = ["advisory", "incident", "unknownFutureValue"];
/// `serviceHealthOrigin` members.
pub const ORIGINS: [&str; 4] = ["microsoft", "thirdParty", "customer", "unknownFutureValue"];
/// `serviceUpdateCategory` members.
pub const CATEGORIES: [&str; 4] = [
    "preventOrFixIssue",
    "planForChange",
    "stayInformed",
    "unknownFutureValue",
];
/// `serviceUpdateSeverity` members.
pub const SEVERITIES: [&str; 4] = ["normal", "high", "critical", "unknownFutureValue"];

/// `value` as the schema spells it when it is one of `members` in any
/// case; else unchanged.
pub fn canonical(value: String, members: &[&str]) -> String {
    match members.iter().find(|m| m.eq_ignore_ascii_case(&value)) {
        Some(m) if **m != value => m.to_string(),
        _ => value,
    }
}

// `deserialize_with` of each enum field.
fn status<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d).map(|v| canonical(v, &STATUSES))
}
fn classification<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d).map(|v| canonical(v, &CLASSIFICATIONS))
}
fn origin<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d).map(|v| v.map(|v| canonical(v, &ORIGINS)))
}
fn category<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d).map(|v| canonical(v, &CATEGORIES))
}
fn severity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d).map(|v| canonical(v, &SEVERITIES))
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthOverview {
    pub id: String,
    pub service: String,
    #[serde(deserialize_with = "status")]
    pub status: String,
}

/// healthOverviews of operational services from (id, display name) pairs:
/// the input the collectors' unit tests build.
#[cfg(test)]
pub(crate) fn operational(services: &[(&str, &str)]) -> Vec<HealthOverview> {
    services
        .iter()
        .map(|(id, name)| HealthOverview {
            id: (*id).into(),
            service: (*name).into(),
            status: "serviceOperational".into(),
        })
        .collect()
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    pub id: String,
    /// The service's display name (not its id).
    #[serde(default)]
    pub service: String,
    #[serde(default, deserialize_with = "classification")]
    pub classification: String,
    #[serde(default, deserialize_with = "origin")]
    pub origin: Option<String>,
    #[serde(default, deserialize_with = "status")]
    pub status: String,
    #[serde(default)]
    pub is_resolved: bool,
    #[serde(default)]
    pub feature: Option<String>,
    #[serde(default)]
    pub feature_group: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub start_date_time: Option<String>,
    /// Set when the issue is resolved (the track record reads it).
    #[serde(default)]
    pub end_date_time: Option<String>,
    #[serde(default)]
    pub last_modified_date_time: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    #[serde(default, deserialize_with = "category")]
    pub category: String,
    #[serde(default, deserialize_with = "severity")]
    pub severity: String,
    #[serde(default)]
    pub is_major_change: Option<bool>,
    #[serde(default)]
    pub action_required_by_date_time: Option<String>,
    #[serde(default)]
    pub services: Option<Vec<String>>,
    #[serde(default)]
    pub title: Option<String>,
}

/// The app registration as `$select=passwordCredentials,keyCredentials`
/// returns it. Graph writes `null` for an empty collection at times.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    #[serde(default)]
    pub password_credentials: Option<Vec<AppCredential>>,
    #[serde(default)]
    pub key_credentials: Option<Vec<AppCredential>>,
}

/// A `passwordCredential` (client secret) or `keyCredential` (certificate):
/// only the fields the exporter reads.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppCredential {
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub end_date_time: Option<String>,
}

/// One Graph list page: its items and the absolute link to the next one.
#[derive(Deserialize)]
pub struct Page<T> {
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
}

pub struct GraphClient {
    api: Arc<ApiClient>,
    root: String,
}

impl GraphClient {
    pub fn new(api: Arc<ApiClient>, root: &str) -> Self {
        GraphClient {
            api,
            root: root.trim_end_matches('/').to_string(),
        }
    }

    pub async fn health_overviews(&self) -> Result<Vec<HealthOverview>, ApiError> {
        self.list("healthOverviews").await
    }

    pub async fn issues(&self) -> Result<Vec<Issue>, ApiError> {
        self.list("issues").await
    }

    pub async fn messages(&self) -> Result<Vec<Message>, ApiError> {
        self.list("messages").await
    }

    /// The credentials of the app registration `client_id` (needs the
    /// application permission `Application.Read.All`).
    pub async fn application(&self, client_id: &str) -> Result<Application, ApiError> {
        let url = format!(
            "{}/v1.0/applications(appId='{client_id}')?$select=passwordCredentials,keyCredentials",
            self.root
        );
        self.get("applications", &url).await
    }

    /// One GET of a Graph object, parsed.
    async fn get<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        url: &str,
    ) -> Result<T, ApiError> {
        let resp = self
            .api
            .send(&Call {
                api: Api::Graph,
                operation,
                method: Method::GET,
                url,
                audience: &self.root,
                max_body: MAX_PAGE_BYTES,
                json: None,
            })
            .await?;
        parse_json(&resp.body).map_err(|message| self.api.malformed(Api::Graph, operation, message))
    }

    async fn list<T: DeserializeOwned>(&self, operation: &'static str) -> Result<Vec<T>, ApiError> {
        let mut url = format!("{}/v1.0/admin/serviceAnnouncement/{operation}", self.root);
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let page: Page<T> = self.get(operation, &url).await?;
            out.extend(page.value);
            match page.next_link {
                Some(next) if !next.is_empty() => url = next,
                _ => return Ok(out),
            }
        }
        Err(ApiError::Malformed {
            operation,
            message: format!("more than {MAX_PAGES} pages (nextLink loop?)"),
        })
    }
}

/// Parse any Graph answer (a plain function over bytes, for fuzzing).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

/// Parse a page of any Graph list.
pub fn parse_page<T: DeserializeOwned>(body: &[u8]) -> Result<Page<T>, String> {
    parse_json(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_graph_shapes() {
        let p: Page<Issue> = parse_page(br#"{"@odata.context":"x","value":[{"id":"EX1","service":"Exchange Online","classification":"incident","origin":"microsoft","status":"serviceDegradation","isResolved":false,"featureGroup":"Mail","title":"t","startDateTime":"2026-11-27T18:00:00Z","lastModifiedDateTime":"2026-11-27T19:00:00Z","details":[],"posts":[{"x":1}]}],"@odata.nextLink":"http://h/next"}"#).unwrap();
        assert_eq!(p.value[0].feature_group.as_deref(), Some("Mail"));
        assert_eq!(p.next_link.as_deref(), Some("http://h/next"));
        assert!(parse_page::<Issue>(b"{\"value\": [").is_err());
        assert!(parse_page::<Issue>(b"{\"value\": [{\"noid\":1}]}").is_err());
    }

    /// Microsoft's pages print PascalCase, the schema camelCase: both read
    /// as the schema's spelling; a value it does not list stays verbatim.
    #[test]
    fn enum_values_in_any_case() {
        let p: Page<Issue> = parse_page(br#"{"value":[{"id":"EX226792","service":"Exchange Online","classification":"Incident","origin":"Microsoft","status":"ServiceRestored","isResolved":true},{"id":"X","classification":"INCIDENT","origin":"ThirdParty","status":"serviceMaintenanceWindow"}]}"#).unwrap();
        let i = &p.value[0];
        assert_eq!(
            (
                i.classification.as_str(),
                i.origin.as_deref(),
                i.status.as_str()
            ),
            ("incident", Some("microsoft"), "serviceRestored")
        );
        let i = &p.value[1];
        assert_eq!(
            (
                i.classification.as_str(),
                i.origin.as_deref(),
                i.status.as_str()
            ),
            ("incident", Some("thirdParty"), "serviceMaintenanceWindow")
        );
        let m: Page<Message> = parse_page(br#"{"value":[{"id":"MC172851","category":"StayInformed","severity":"Normal"},{"id":"MC2","category":"planForChange","severity":"HIGH"}]}"#).unwrap();
        assert_eq!(
            (m.value[0].category.as_str(), m.value[0].severity.as_str()),
            ("stayInformed", "normal")
        );
        assert_eq!(
            (m.value[1].category.as_str(), m.value[1].severity.as_str()),
            ("planForChange", "high")
        );
        let o: Page<HealthOverview> = parse_page(br#"{"value":[{"service":"Exchange Online","status":"ServiceOperational","id":"Exchange"}]}"#).unwrap();
        assert_eq!(o.value[0].status, "serviceOperational");
        assert!(
            parse_page::<Issue>(br#"{"value":[{"id":"X","origin":null}]}"#)
                .unwrap()
                .value[0]
                .origin
                .is_none()
        );
    }

    #[test]
    fn parses_application_credentials() {
        let a: Application = serde_json::from_str(r#"{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#applications(passwordCredentials,keyCredentials)/$entity","passwordCredentials":[{"customKeyIdentifier":null,"displayName":"exporter","endDateTime":"2027-05-01T10:00:00.123Z","hint":"Qx8","keyId":"6a2b6e3a-0000-4000-8000-000000000001","secretText":null,"startDateTime":"2025-05-01T10:00:00Z"}],"keyCredentials":null}"#).unwrap();
        let p = a.password_credentials.unwrap();
        assert_eq!(
            p[0].key_id.as_deref(),
            Some("6a2b6e3a-0000-4000-8000-000000000001")
        );
        assert_eq!(
            p[0].end_date_time.as_deref(),
            Some("2027-05-01T10:00:00.123Z")
        );
        assert!(a.key_credentials.is_none());
    }
}
