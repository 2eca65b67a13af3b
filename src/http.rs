//! The one place requests leave for Microsoft: bearer tokens, the allow-list
//! of hosts, retries with backoff and jitter honouring `Retry-After`, a cap on
//! body size, error-body parsing, and the `m365_api_*` metrics.

use crate::auth::{AuthError, TokenProvider};
use crate::buffers::BufferPool;
use crate::metrics::Live;
use bytes::Bytes;
use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::Method;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `error_code` of answers that could not be parsed.
pub const MALFORMED: &str = "MalformedResponse";
/// `error_code` of a link refused because it leaves the tenant's hosts.
pub const FOREIGN_HOST: &str = "ForeignHost";

/// Error codes Microsoft documents for the Management Activity API and
/// Graph (plus what its gateways send): kept as `error_code` values.
/// Anything else is folded (see [`error_label`]), so a service that invents
/// codes cannot grow the label space.
pub const KNOWN_ERROR_CODES: &[&str] = &[
    // Management Activity API
    "AF10001",
    "AF20010",
    "AF20011",
    "AF20012",
    "AF20013",
    "AF20020",
    "AF20021",
    "AF20022",
    "AF20023",
    "AF20024",
    "AF20030",
    "AF20031",
    "AF20050",
    "AF20051",
    "AF20052",
    "AF20055",
    "AF429",
    "AF50000",
    // Microsoft Graph
    "accessDenied",
    "activityLimitReached",
    "badRequest",
    "generalException",
    "invalidRange",
    "invalidRequest",
    "itemNotFound",
    "notAllowed",
    "notSupported",
    "quotaLimitReached",
    "resourceModified",
    "serviceNotAvailable",
    "unauthenticated",
    "BadRequest",
    "Forbidden",
    "Unauthorized",
    "NotFound",
    "TooManyRequests",
    "ServiceUnavailable",
    "GatewayTimeout",
    "InternalServerError",
    "UnknownError",
    "InvalidAuthenticationToken",
    "Authorization_RequestDenied",
    "Request_ResourceNotFound",
    "Request_BadRequest",
    "Request_ThrottledTemporarily",
    "ResourceNotFound",
    "UnsupportedApiVersion",
];

/// The `error_code` label of an error answer: Microsoft's code when it is a
/// known one, else `HTTP<status>` (a bounded set), else `other`.
pub fn error_label(code: Option<&str>, status: u16) -> String {
    match code {
        Some(c) if KNOWN_ERROR_CODES.contains(&c) => c.to_string(),
        _ if (100..=599).contains(&status) => format!("HTTP{status}"),
        _ => "other".to_string(),
    }
}

/// `error_code` of an answer too large to read: a 2xx is unreadable
/// (`MalformedResponse`), an error is its status.
fn error_label_too_large(status: u16) -> String {
    match status {
        200..=299 => MALFORMED.to_string(),
        _ => error_label(None, status),
    }
}

/// The longest `Retry-After` taken literally; a larger one (10^12 s from a
/// confused proxy) is read as this, so no deadline arithmetic overflows.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Graph,
    Management,
    Login,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Graph => "graph",
            Api::Management => "management",
            Api::Login => "login",
        }
    }
}

/// Record one HTTP exchange in `m365_api_requests_total` and the histogram.
pub fn observe(live: &Live, tenant: &str, api: Api, operation: &str, code: &str, took: Duration) {
    live.api_requests
        .with_label_values(&[tenant, api.as_str(), operation, code])
        .inc();
    // No tenant label (docs/metrics.md): 13 series per (api, operation), not per tenant.
    live.api_duration
        .with_label_values(&[api.as_str(), operation])
        .observe(took.as_secs_f64());
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is cut to it (and the call fails
    /// sooner rather than hanging a refresh for an hour).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with jitter: between half and all of base·2^(n−1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.max_backoff);
        let half = cap / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }
}

/// Build the shared reqwest client (rustls, timeouts, no redirects to
/// unchecked hosts). Outbound calls go through the proxy that
/// `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` name (lower case too), except to
/// hosts `NO_PROXY` lists, as curl does; loopback is no exception.
pub fn client(connect_timeout: Duration, timeout: Duration) -> reqwest::Client {
    builder(connect_timeout, timeout)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// [`client`] that ignores the proxy variables (the demo's own simulator).
pub fn direct_client(connect_timeout: Duration, timeout: Duration) -> reqwest::Client {
    builder(connect_timeout, timeout)
        .no_proxy()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

fn builder(connect_timeout: Duration, timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("m365-exporter/", env!("CARGO_PKG_VERSION")))
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{operation}: {source}")]
    Auth {
        operation: &'static str,
        source: AuthError,
    },
    #[error("{operation}: transport error: {message}")]
    Transport {
        operation: &'static str,
        message: String,
    },
    #[error("{operation}: HTTP {status}{}: {message}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Status {
        operation: &'static str,
        status: u16,
        /// Microsoft's error code (`AF20022`, `TooManyRequests`, …).
        code: Option<String>,
        message: String,
    },
    #[error("{operation}: response body larger than {limit} bytes")]
    TooLarge {
        operation: &'static str,
        limit: usize,
    },
    #[error(
        "{operation}: refusing to send a token to {url}: not a configured endpoint of this tenant"
    )]
    ForeignHost {
        operation: &'static str,
        url: String,
    },
    #[error("{operation}: malformed response: {message}")]
    Malformed {
        operation: &'static str,
        message: String,
    },
}

impl ApiError {
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// One request, described.
pub struct Call<'a> {
    pub api: Api,
    pub operation: &'static str,
    pub method: Method,
    pub url: &'a str,
    /// Token audience (the API root).
    pub audience: &'a str,
    pub max_body: usize,
    /// A JSON request body (`subscriptions/start` with a webhook); None: none.
    pub json: Option<&'a [u8]>,
}

/// Per-tenant API client.
pub struct ApiClient {
    pub tenant: String,
    http: reqwest::Client,
    live: Arc<Live>,
    tokens: Arc<TokenProvider>,
    policy: RetryPolicy,
    /// Origins (`scheme://host:port`) this tenant may send tokens to.
    allowed: Vec<String>,
}

/// `scheme://host:port` of a URL, with every loopback spelling (`localhost`,
/// `127.0.0.1`, `[::1]`) folded into one: a local service that writes its
/// next-page links with another name for this machine is still itself.
fn origin(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    let host = u.host_str()?;
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let port = u.port_or_known_default()?;
    match loopback {
        true => Some(format!("{}://loopback:{port}", u.scheme())),
        false => Some(u.origin().ascii_serialization()),
    }
}

impl ApiClient {
    pub fn new(
        tenant: &str,
        http: reqwest::Client,
        live: Arc<Live>,
        tokens: Arc<TokenProvider>,
        policy: RetryPolicy,
        roots: &[&str],
    ) -> Self {
        ApiClient {
            tenant: tenant.to_string(),
            http,
            live,
            tokens,
            policy,
            allowed: roots.iter().filter_map(|r| origin(r)).collect(),
        }
    }

    pub fn live(&self) -> &Live {
        &self.live
    }

    /// An answer arrived but could not be understood (a 2xx with a truncated
    /// or foreign body): counted under `m365_api_errors_total` as
    /// `MalformedResponse`, returned as [`ApiError::Malformed`].
    pub fn malformed(
        &self,
        api: Api,
        operation: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        self.live
            .api_errors
            .with_label_values(&[self.tenant.as_str(), api.as_str(), MALFORMED])
            .inc();
        ApiError::Malformed {
            operation,
            message: message.into(),
        }
    }

    /// Send with retries; `Ok` only for a 2xx answer.
    pub async fn send(&self, call: &Call<'_>) -> Result<Response, ApiError> {
        self.send_budgeted(call, None).await.map(|(r, _)| r)
    }

    /// [`Self::send`], with a 2xx body's bytes first reserved from `budget`
    /// (one permit per byte: its `Content-Length`, or `max_body` when the
    /// length is not announced). The permit travels with the body, so the
    /// caller bounds the bytes it holds; `max_body` must not exceed the
    /// budget's size.
    pub async fn send_budgeted(
        &self,
        call: &Call<'_>,
        budget: Option<&Arc<tokio::sync::Semaphore>>,
    ) -> Result<(Response, Option<tokio::sync::OwnedSemaphorePermit>), ApiError> {
        let op = call.operation;
        if !origin(call.url).is_some_and(|o| self.allowed.contains(&o)) {
            self.live
                .api_errors
                .with_label_values(&[self.tenant.as_str(), call.api.as_str(), FOREIGN_HOST])
                .inc();
            return Err(ApiError::ForeignHost {
                operation: op,
                url: call.url.to_string(),
            });
        }
        let mut attempt = 0;
        let mut renewed_after_401 = false;
        loop {
            attempt += 1;
            let token =
                self.tokens
                    .token(call.audience)
                    .await
                    .map_err(|source| ApiError::Auth {
                        operation: op,
                        source,
                    })?;
            let started = Instant::now();
            let sent = request(
                &self.http,
                &call.method,
                call.url,
                token.expose(),
                call.json,
            )
            .send()
            .await;
            let (err, retry_after) = match sent {
                Err(e) => {
                    self.observe(call, "error", started);
                    (
                        ApiError::Transport {
                            operation: op,
                            message: transport_message(&e),
                        },
                        None,
                    )
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    let limit = if (200..300).contains(&status) {
                        call.max_body
                    } else {
                        64 * 1024
                    };
                    let permit = match budget.filter(|_| (200..300).contains(&status)) {
                        Some(b) => {
                            let want = resp.content_length().map_or(limit, |n| n as usize);
                            let n = u32::try_from(want.min(limit)).unwrap_or(u32::MAX);
                            b.clone().acquire_many_owned(n).await.ok()
                        }
                        None => None,
                    };
                    // Budgeted bodies are audit blobs: big, many, short-lived.
                    let pool = budget.is_some().then(|| &*BLOB_BUFFERS);
                    let body = read_capped(resp, limit, op, pool).await;
                    let code = match &body {
                        Ok(_) => status.to_string(),
                        Err(ApiError::TooLarge { .. }) => status.to_string(),
                        Err(_) => "error".to_string(),
                    };
                    self.observe(call, &code, started);
                    match body {
                        Ok(body) if (200..300).contains(&status) => {
                            return Ok((
                                Response {
                                    status,
                                    headers,
                                    body,
                                },
                                permit,
                            ))
                        }
                        Ok(body) => {
                            let (code, message) = parse_error_body(&body);
                            let throttled = status == 429 || code.as_deref() == Some("AF429");
                            if throttled {
                                self.live
                                    .api_throttled
                                    .with_label_values(&[
                                        self.tenant.as_str(),
                                        call.api.as_str(),
                                        op,
                                    ])
                                    .inc();
                            }
                            let label = error_label(code.as_deref(), status);
                            self.live
                                .api_errors
                                .with_label_values(&[
                                    self.tenant.as_str(),
                                    call.api.as_str(),
                                    &label,
                                ])
                                .inc();
                            if status == 401 && !renewed_after_401 {
                                // Expired or revoked early: one fresh token, at once.
                                renewed_after_401 = true;
                                self.tokens.invalidate(call.audience, &token).await;
                                attempt -= 1;
                                continue;
                            }
                            let err = ApiError::Status {
                                operation: op,
                                status,
                                code,
                                message,
                            };
                            if !(throttled || is_retryable_status(status, err.code())) {
                                return Err(err);
                            }
                            (err, retry_after_of(&headers))
                        }
                        // Asking again returns the same oversized body. An
                        // answer too large to read is an unreadable one.
                        Err(e @ ApiError::TooLarge { .. }) => {
                            self.live
                                .api_errors
                                .with_label_values(&[
                                    self.tenant.as_str(),
                                    call.api.as_str(),
                                    &error_label_too_large(status),
                                ])
                                .inc();
                            return Err(e);
                        }
                        Err(e) => (e, None),
                    }
                }
            };
            if attempt >= self.policy.max_attempts {
                return Err(err);
            }
            let wait = match retry_after {
                Some(d) => d.min(self.policy.max_retry_after),
                None => self.policy.backoff(attempt),
            };
            tracing::debug!(tenant = %self.tenant, operation = op, error = %err, wait_ms = wait.as_millis() as u64, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    fn observe(&self, call: &Call<'_>, code: &str, started: Instant) {
        observe(
            &self.live,
            &self.tenant,
            call.api,
            call.operation,
            code,
            started.elapsed(),
        );
    }
}

/// The request as it goes on the wire. A bodyless POST (`subscriptions/start`)
/// still says `Content-Length: 0`: without it the Management API's IIS front
/// end answers 411 Length Required, and the request never reaches the API.
fn request(
    http: &reqwest::Client,
    method: &Method,
    url: &str,
    token: &str,
    json: Option<&[u8]>,
) -> reqwest::RequestBuilder {
    let builder = http
        .request(method.clone(), url)
        .bearer_auth(token)
        .header("Accept", "application/json");
    if let Some(body) = json {
        builder
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec())
    } else if matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        builder.header(reqwest::header::CONTENT_LENGTH, "0")
    } else {
        builder
    }
}

pub fn transport_message(e: &reqwest::Error) -> String {
    // reqwest's own message includes the URL; a kind word plus the source
    // chain says what went wrong without it.
    let mut msg = String::from(if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading body failed"
    } else {
        "request failed"
    });
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

fn is_retryable_status(status: u16, code: Option<&str>) -> bool {
    matches!(status, 500 | 502 | 503 | 504) || code == Some("AF50000")
}

/// `Retry-After` in seconds or as an HTTP date.
pub fn retry_after_of(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = when
        .timestamp()
        .saturating_sub(chrono::Utc::now().timestamp());
    Some(Duration::from_secs(secs.max(0) as u64).min(MAX_RETRY_AFTER))
}

/// Audit blob bodies, reused across blobs and tenants: a fresh buffer per
/// blob was mapped and page-faulted anew (about one fault per record, half
/// of the catch-up's system time; BENCHMARKS.md). Idle, it holds at most
/// 8 buffers of at most 4 MiB: 32 MiB in the worst case, a few MB usually.
static BLOB_BUFFERS: std::sync::LazyLock<Arc<BufferPool>> =
    std::sync::LazyLock::new(|| BufferPool::bounded(8, 4 << 20));

async fn read_capped(
    mut resp: reqwest::Response,
    limit: usize,
    operation: &'static str,
    pool: Option<&Arc<BufferPool>>,
) -> Result<Bytes, ApiError> {
    if resp.content_length().is_some_and(|n| n as usize > limit) {
        return Err(ApiError::TooLarge { operation, limit });
    }
    // Sized once from Content-Length (capped): growing by doubling would
    // copy and fault in a large blob's pages several times over.
    let size = resp.content_length().map_or(0, |n| n as usize).min(limit);
    let mut buf = match pool {
        Some(p) => p.take(size),
        None => Vec::with_capacity(size),
    };
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > limit {
                    return Err(ApiError::TooLarge { operation, limit });
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => {
                return Ok(match pool {
                    Some(p) => p.bytes(buf),
                    None => Bytes::from(buf),
                })
            }
            Err(e) => {
                return Err(ApiError::Transport {
                    operation,
                    message: transport_message(&e),
                })
            }
        }
    }
}

/// Graph and Management API errors are `{"error":{"code":"…","message":"…"}}`.
pub fn parse_error_body(body: &[u8]) -> (Option<String>, String) {
    #[derive(serde::Deserialize)]
    struct Outer {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        code: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_slice::<Outer>(body) {
        Ok(o) => (
            o.error.code.filter(|c| !c.is_empty() && c.len() <= 64),
            o.error.message.unwrap_or_default(),
        ),
        Err(_) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_string();
            (None, text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_are_one_origin() {
        assert_eq!(
            origin("http://localhost:8080/a"),
            origin("http://127.0.0.1:8080/b")
        );
        assert_eq!(
            origin("http://[::1]:8080/a"),
            origin("http://127.0.0.1:8080")
        );
        assert_ne!(
            origin("http://127.0.0.1:8081"),
            origin("http://127.0.0.1:8080")
        );
        assert_ne!(
            origin("https://graph.microsoft.com"),
            origin("https://graph.microsoft.com.evil")
        );
        assert_eq!(
            origin("https://graph.microsoft.com/v1.0"),
            Some("https://graph.microsoft.com".into())
        );
    }

    /// What actually reaches the server: a bodyless POST carries
    /// `content-length: 0` (IIS answers 411 otherwise); a GET carries none.
    #[tokio::test]
    async fn bodyless_post_says_content_length_zero() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/start", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let mut heads = Vec::new();
            for _ in 0..2 {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let mut n = 0;
                while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    n += sock.read(&mut buf[n..]).await.unwrap();
                }
                heads.push(String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase());
                sock.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await
                .unwrap();
            }
            heads
        });
        let http = client(Duration::from_secs(5), Duration::from_secs(5));
        for m in [Method::POST, Method::GET] {
            request(&http, &m, &url, "tok", None).send().await.unwrap();
        }
        let heads = server.await.unwrap();
        assert!(heads[0].starts_with("post "), "{}", heads[0]);
        assert!(
            heads[0].contains("\r\ncontent-length: 0\r\n"),
            "{}",
            heads[0]
        );
        assert!(
            heads[0].contains("authorization: bearer tok"),
            "{}",
            heads[0]
        );
        assert!(!heads[1].contains("content-length"), "{}", heads[1]);
    }

    #[test]
    fn error_bodies() {
        let (c, m) =
            parse_error_body(br#"{"error":{"code":"AF20022","message":"No subscription found"}}"#);
        assert_eq!(
            (c.as_deref(), m.as_str()),
            (Some("AF20022"), "No subscription found")
        );
        let (c, m) = parse_error_body(b"<html>bad gateway</html>");
        assert_eq!((c, m.as_str()), (None, "<html>bad gateway</html>"));
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after_of(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after_of(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, "1000000000000".parse().unwrap());
        assert_eq!(retry_after_of(&h), Some(MAX_RETRY_AFTER));
        h.insert(RETRY_AFTER, "18446744073709551615".parse().unwrap());
        assert_eq!(retry_after_of(&h), Some(MAX_RETRY_AFTER));
        h.insert(
            RETRY_AFTER,
            "Fri, 31 Dec 9999 23:59:59 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after_of(&h), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn error_codes_are_bounded() {
        assert_eq!(error_label(Some("AF20022"), 400), "AF20022");
        assert_eq!(error_label(Some("TooManyRequests"), 429), "TooManyRequests");
        assert_eq!(error_label(Some("Made-Up-42"), 400), "HTTP400");
        assert_eq!(error_label(None, 502), "HTTP502");
        assert_eq!(error_label(Some("x"), 999), "other");
        let labels: std::collections::HashSet<String> = (0..10_000)
            .map(|n| error_label(Some(&format!("Unknown{n}")), 400 + (n % 200) as u16))
            .collect();
        assert!(labels.len() <= 200, "{}", labels.len());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        for attempt in 1..10 {
            let d = p.backoff(attempt);
            assert!(d <= p.max_backoff);
            let full = p.base.saturating_mul(1 << (attempt - 1)).min(p.max_backoff);
            assert!(d >= full / 2);
        }
    }
}
