//! Management Activity API calls for one tenant. Every URL names the tenant
//! by its GUID (a domain `tenant_id` is resolved first: [`TenantGuid`]) and
//! leaves here with `PublisherIdentifier` (the tenant's dedicated quota;
//! default: the tenant GUID), including the next-page and `contentUri` URLs
//! Microsoft hands back; every call first takes a token from the tenant's
//! request budget.

use super::paced::Paced;
use super::Content;
use crate::api::{Api, ApiClient, ApiError};
use crate::auth::tenant::TenantGuid;
use crate::buffers::BufferPool;
use crate::timefmt::parse_unix;
use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use std::borrow::Cow;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A listing page or subscription list is small; a blob can be large.
const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;
pub const MAX_BLOB_BYTES: usize = 128 * 1024 * 1024;

/// One page of a content listing.
#[derive(Debug, Default)]
pub struct ContentPage {
    pub items: Vec<Content>,
    /// Items without a usable id, URI or timestamps.
    pub skipped: usize,
    /// `NextPageUri` (with our `PublisherIdentifier`): where the listing
    /// continues; None on its last page.
    pub next: Option<String>,
}

/// A window's pages are followed at most this far (a next-page loop).
pub const MAX_PAGES: usize = 10_000;

/// The continuation header's spellings: the reference's `NextPageUri`, the
/// troubleshooting guide's `NextPageUrl` (names compare without case, as
/// HTTP says; see docs/microsoft.md).
pub const NEXT_PAGE_HEADERS: [&str; 2] = ["NextPageUri", "NextPageUrl"];

/// The next page's URL, if the answer names one (in either spelling).
pub fn next_page(headers: &reqwest::header::HeaderMap) -> Option<&str> {
    NEXT_PAGE_HEADERS.iter().find_map(|name| {
        headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    })
}

/// A subscription as `subscriptions/list` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub content_type: String,
    #[serde(default)]
    pub status: String,
    /// Its webhook, if one is registered (`authId` is deliberately not
    /// read; a webhook of an unexpected shape reads as none rather than
    /// failing the whole list).
    #[serde(default, deserialize_with = "lenient_webhook")]
    pub webhook: Option<SubscriptionWebhook>,
}

fn lenient_webhook<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<SubscriptionWebhook>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionWebhook {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub address: String,
}

/// The webhook object `subscriptions/start` sends.
pub struct StartWebhook<'a> {
    pub address: &'a str,
    pub auth_id: &'a crate::secret::Secret,
    /// Unix seconds; None: Microsoft's default.
    pub expiration: Option<i64>,
}

impl StartWebhook<'_> {
    /// `{"webhook": {"address", "authId", "expiration"}}`.
    pub fn body(&self) -> Vec<u8> {
        let mut w = serde_json::json!({
            "address": self.address,
            "authId": self.auth_id.expose(),
        });
        if let Some(t) = self.expiration {
            w["expiration"] = crate::timefmt::rfc3339(t).into();
        }
        serde_json::json!({ "webhook": w }).to_string().into_bytes()
    }
}

pub struct ManagementClient {
    /// Calls to the Management root (also the token audience), paced by
    /// `requests_per_minute`.
    paced: Paced,
    tenant: Arc<TenantGuid>,
    /// `activity.publisher_id`; None: the tenant GUID.
    publisher_id: Option<String>,
}

impl ManagementClient {
    pub fn new(
        api: Arc<ApiClient>,
        root: &str,
        tenant: Arc<TenantGuid>,
        publisher_id: Option<&str>,
        requests_per_minute: u32,
    ) -> Self {
        ManagementClient {
            paced: Paced::new(api, Api::Management, root, requests_per_minute),
            tenant,
            publisher_id: publisher_id.map(str::to_string),
        }
    }

    pub fn api(&self) -> &ApiClient {
        self.paced.api()
    }

    /// The tenant, by GUID once known.
    pub fn tenant(&self) -> &TenantGuid {
        &self.tenant
    }

    /// The tenant GUID and the `PublisherIdentifier`, or why the GUID is
    /// not known (then nothing is sent).
    async fn ids(&self, operation: &'static str) -> Result<(String, String), ApiError> {
        // The lookup asks the authority (no token, no `send`): a stop ends it too.
        let lookup = async {
            self.tenant.guid().await.map_err(|e| ApiError::Unresolved {
                operation,
                tenant_id: self.tenant.configured().to_string(),
                message: e.message,
            })
        };
        let guid = self.api().unless_stopped(operation, lookup).await?;
        let publisher = self.publisher_id.clone().unwrap_or_else(|| guid.clone());
        Ok((guid, publisher))
    }

    /// `{root}/api/v1.0/{tenant GUID}/activity/feed/{path}?{params}&PublisherIdentifier=…`,
    /// and the publisher id.
    async fn feed_url(
        &self,
        operation: &'static str,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<(String, String), ApiError> {
        let (guid, publisher) = self.ids(operation).await?;
        let base = format!("{}/api/v1.0/{guid}/activity/feed/{path}", self.paced.root());
        let url = match reqwest::Url::parse_with_params(&base, params) {
            Ok(u) => with_publisher(u.as_str(), &publisher),
            Err(_) => base,
        };
        Ok((url, publisher))
    }

    pub async fn subscriptions(&self) -> Result<Vec<Subscription>, ApiError> {
        let (url, _) = self
            .feed_url("subscriptions_list", "subscriptions/list", &[])
            .await?;
        let resp = self
            .paced
            .send(
                "subscriptions_list",
                Method::GET,
                &url,
                MAX_PAGE_BYTES,
                None,
            )
            .await?;
        serde_json::from_slice(&resp.body).map_err(|e| {
            self.api()
                .malformed(Api::Management, "subscriptions_list", e.to_string())
        })
    }

    /// Start (or confirm) a subscription, with a webhook when given (then
    /// Microsoft validates its address before answering: AF20021 when that
    /// fails); AF20024 "already enabled" is success.
    pub async fn start(
        &self,
        content_type: &str,
        webhook: Option<&StartWebhook<'_>>,
    ) -> Result<(), ApiError> {
        let (url, _) = self
            .feed_url(
                "subscriptions_start",
                "subscriptions/start",
                &[("contentType", content_type)],
            )
            .await?;
        let body = webhook.map(StartWebhook::body);
        match self
            .paced
            .send(
                "subscriptions_start",
                Method::POST,
                &url,
                MAX_PAGE_BYTES,
                body.as_deref(),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("AF20024") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The URL of the first page of a listing of `[start, end)`.
    pub async fn content_url(
        &self,
        content_type: &str,
        start: i64,
        end: i64,
    ) -> Result<String, ApiError> {
        let (s, e) = (super::wire_time(start), super::wire_time(end));
        let (url, _) = self
            .feed_url(
                "content_list",
                "subscriptions/content",
                &[
                    ("contentType", content_type),
                    ("startTime", &s),
                    ("endTime", &e),
                ],
            )
            .await?;
        Ok(url)
    }

    /// One page of a content listing: the first page's URL
    /// ([`ManagementClient::content_url`]) or a next page's. Items
    /// without a usable id, URI or timestamps are skipped and counted (the
    /// caller logs them: never silent); the lister follows `next` page by
    /// page, so a failed page costs only itself.
    pub async fn content_page(&self, url: &str) -> Result<ContentPage, ApiError> {
        let (_, publisher) = self.ids("content_list").await?;
        let resp = self
            .paced
            .send("content_list", Method::GET, url, MAX_PAGE_BYTES, None)
            .await?;
        let (items, skipped) = parse_content_page(&resp.body).map_err(|message| {
            self.api()
                .malformed(Api::Management, "content_list", message)
        })?;
        let next = next_page(&resp.headers).map(|n| with_publisher(n, &publisher));
        Ok(ContentPage {
            items,
            skipped,
            next,
        })
    }

    /// Every content item in `[start, end)`, all pages in one go (the
    /// lister goes page by page instead); the second value counts the
    /// items skipped.
    pub async fn list_content(
        &self,
        content_type: &str,
        start: i64,
        end: i64,
    ) -> Result<(Vec<Content>, usize), ApiError> {
        let mut url = self.content_url(content_type, start, end).await?;
        let (mut items, mut skipped) = (Vec::new(), 0);
        for _ in 0..MAX_PAGES {
            let page = self.content_page(&url).await?;
            items.extend(page.items);
            skipped += page.skipped;
            match page.next {
                Some(next) => url = next,
                None => return Ok((items, skipped)),
            }
        }
        Err(ApiError::Malformed {
            operation: "content_list",
            message: format!("more than {MAX_PAGES} pages (next-page loop?)"),
        })
    }

    /// How long to wait before asking for a failed page again, the `n`-th
    /// time (the tenant's retry policy, after its own attempts were spent).
    pub fn page_backoff(&self, n: u32) -> std::time::Duration {
        self.api().policy().backoff(n)
    }

    /// One blob's bytes, reserved from `budget` (in-flight bytes; see
    /// [`ApiClient::send_budgeted`]); a blob larger than the budget fails
    /// as too large.
    pub async fn blob(
        &self,
        content_uri: &str,
        budget: &Arc<Semaphore>,
        budget_bytes: usize,
    ) -> Result<(Bytes, Option<OwnedSemaphorePermit>), ApiError> {
        let (_, publisher) = self.ids("blob").await?;
        let url = with_publisher(content_uri, &publisher);
        let (resp, permit) = self
            .paced
            .get_budgeted(
                "blob",
                &url,
                MAX_BLOB_BYTES.min(budget_bytes),
                budget,
                &BLOB_BUFFERS,
            )
            .await?;
        Ok((resp.body, permit))
    }
}

/// Audit blob bodies, reused across blobs and tenants: a fresh buffer per
/// blob was mapped and page-faulted anew (about one fault per record, half
/// of the catch-up's system time; BENCHMARKS.md). Idle, it holds at most
/// 8 buffers of at most 4 MiB: 32 MiB in the worst case, a few MB usually.
static BLOB_BUFFERS: std::sync::LazyLock<Arc<BufferPool>> =
    std::sync::LazyLock::new(|| BufferPool::bounded(8, 4 << 20));

/// `url` with `PublisherIdentifier={publisher_id}`: added when absent,
/// replaced when Microsoft echoed another value, other parameters kept.
pub fn with_publisher(url: &str, publisher_id: &str) -> String {
    let Ok(mut u) = reqwest::Url::parse(url) else {
        // Unparsable: `ApiClient` refuses it as a foreign host anyway.
        return url.to_string();
    };
    let kept: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("PublisherIdentifier"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    u.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("PublisherIdentifier", publisher_id);
    u.to_string()
}

/// Parse one `subscriptions/content` page. `Err` only when the body is not a
/// JSON array of objects; unusable items are counted, not fatal.
pub fn parse_content_page(body: &[u8]) -> Result<(Vec<Content>, usize), String> {
    let (items, skipped) = parse_content_items(body)?;
    Ok((items.into_iter().map(|(c, _)| c).collect(), skipped))
}

/// A content item and the `tenantId` it names, if it names one.
pub type TenantContent = (Content, Option<String>);

/// A JSON array of content items, each with its `tenantId` when present (a
/// webhook notification carries it; a listing does not): the one parser of
/// both shapes.
pub fn parse_content_items(body: &[u8]) -> Result<(Vec<TenantContent>, usize), String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Wire<'a> {
        #[serde(borrow, default)]
        tenant_id: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        content_type: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        content_id: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        content_uri: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        content_created: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        content_expiration: Option<Cow<'a, str>>,
    }
    let wire: Vec<Wire<'_>> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(wire.len());
    let mut skipped = 0;
    for w in wire {
        let created = w.content_created.as_deref().and_then(parse_unix);
        match (w.content_type, w.content_id, w.content_uri, created) {
            (Some(ct), Some(id), Some(uri), Some(created)) if !id.is_empty() => {
                let created = created as i64;
                let expiration = w
                    .content_expiration
                    .as_deref()
                    .and_then(parse_unix)
                    .map(|t| t as i64)
                    // Microsoft keeps content 7 days; assume so when unsaid.
                    .unwrap_or(created + super::RETENTION.as_secs() as i64);
                out.push((
                    Content {
                        content_type: ct.into_owned(),
                        content_id: id.into_owned(),
                        content_uri: uri.into_owned(),
                        created,
                        expiration,
                    },
                    w.tenant_id.map(Cow::into_owned),
                ));
            }
            _ => skipped += 1,
        }
    }
    Ok((out, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_page() {
        let body = br#"[
          {"contentType":"Audit.Exchange","contentId":"a$b","contentUri":"https://x/audit/a$b",
           "contentCreated":"2025-11-27T10:00:00.123Z","contentExpiration":"2025-12-04T10:00:00.123Z"},
          {"contentType":"Audit.Exchange","contentId":"no-created","contentUri":"https://x"},
          {"contentType":"Audit.Exchange","contentId":"c","contentUri":"https://x/c","contentCreated":"2025-11-27T11:00:00"}
        ]"#;
        let (items, skipped) = parse_content_page(body).unwrap();
        assert_eq!(skipped, 1);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].content_id, "a$b");
        assert_eq!(items[0].created, 1_764_237_600);
        assert_eq!(items[0].expiration, 1_764_237_600 + 7 * 86_400);
        assert_eq!(items[1].expiration, items[1].created + 7 * 86_400);
        assert!(parse_content_page(b"{\"error\":1}").is_err());
        assert!(parse_content_page(b"[1,").is_err());
        assert_eq!(parse_content_page(b"[]").unwrap().0.len(), 0);
    }

    #[test]
    fn subscription_list_with_webhooks() {
        let body = br#"[
          {"contentType":"Audit.Exchange","status":"enabled","webhook":{"status":"disabled","address":"https://x/webhook/t","authId":"secret","expiration":null}},
          {"contentType":"Audit.General","status":"enabled","webhook":null},
          {"contentType":"DLP.All","status":"enabled","webhook":"odd"},
          {"contentType":"Audit.SharePoint","status":"enabled"}
        ]"#;
        let list: Vec<Subscription> = serde_json::from_slice(body).unwrap();
        let hook = list[0].webhook.as_ref().unwrap();
        assert_eq!(
            (hook.status.as_str(), hook.address.as_str()),
            ("disabled", "https://x/webhook/t")
        );
        assert!(list[1..].iter().all(|s| s.webhook.is_none()));
        assert!(!format!("{list:?}").contains("secret"), "authId not kept");
    }

    #[test]
    fn publisher_on_every_url() {
        let p = "11111111-2222-3333-4444-555555555555";
        assert_eq!(
            with_publisher("http://h/api/v1.0/t/activity/feed/audit/a$b", p),
            format!("http://h/api/v1.0/t/activity/feed/audit/a$b?PublisherIdentifier={p}")
        );
        let next = with_publisher(
            "http://h/c?contentType=Audit.Exchange&nextPage=2025R1&PublisherIdentifier=other",
            p,
        );
        assert_eq!(
            next,
            format!(
                "http://h/c?contentType=Audit.Exchange&nextPage=2025R1&PublisherIdentifier={p}"
            )
        );
        assert_eq!(with_publisher("not a url", p), "not a url");
    }

    /// Both spellings, in any case; `NextPageUri` wins when both are sent.
    #[test]
    fn next_page_header_spellings() {
        use reqwest::header::{HeaderMap, HeaderValue};
        for name in ["NextPageUri", "NextPageUrl", "nextpageurl", "NEXTPAGEURI"] {
            let mut h = HeaderMap::new();
            h.insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static(" https://manage.office.com/next "),
            );
            assert_eq!(
                next_page(&h),
                Some("https://manage.office.com/next"),
                "{name}"
            );
        }
        let mut h = HeaderMap::new();
        h.insert("NextPageUrl", HeaderValue::from_static("u"));
        h.insert("NextPageUri", HeaderValue::from_static("i"));
        assert_eq!(next_page(&h), Some("i"));
        h.insert("NextPageUri", HeaderValue::from_static(" "));
        assert_eq!(next_page(&h), Some("u"), "an empty one names no page");
        assert_eq!(next_page(&HeaderMap::new()), None);
    }
}
