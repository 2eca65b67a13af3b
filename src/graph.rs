//! Microsoft Graph `admin/serviceAnnouncement` client: the three lists, each
//! followed through `@odata.nextLink` to its end.

use crate::http::{Api, ApiClient, ApiError, Call};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::sync::Arc;

/// A Graph page is small; anything past this is not a Graph answer.
const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;
/// Guards against a nextLink loop.
const MAX_PAGES: usize = 1_000;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthOverview {
    pub id: String,
    pub service: String,
    pub status: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    pub id: String,
    /// The service's display name (not its id).
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub classification: String,
    #[serde(default)]
    pub origin: Option<String>,
    #[serde(default)]
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
    #[serde(default)]
    pub last_modified_date_time: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub is_major_change: Option<bool>,
    #[serde(default)]
    pub action_required_by_date_time: Option<String>,
    #[serde(default)]
    pub services: Option<Vec<String>>,
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

    async fn list<T: DeserializeOwned>(&self, operation: &'static str) -> Result<Vec<T>, ApiError> {
        let mut url = format!("{}/v1.0/admin/serviceAnnouncement/{operation}", self.root);
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let resp = self
                .api
                .send(&Call {
                    api: Api::Graph,
                    operation,
                    method: Method::GET,
                    url: &url,
                    audience: &self.root,
                    max_body: MAX_PAGE_BYTES,
                    json: None,
                })
                .await?;
            let page = parse_page::<T>(&resp.body)
                .map_err(|message| self.api.malformed(Api::Graph, operation, message))?;
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

/// Parse a page of any Graph list (a plain function over bytes, for fuzzing).
pub fn parse_page<T: DeserializeOwned>(body: &[u8]) -> Result<Page<T>, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
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
}
