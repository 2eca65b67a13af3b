//! The tenant GUID behind a `tenant_id`. The Management Activity API wants
//! the GUID in every URL and as the default `PublisherIdentifier` (its
//! reference: "The tenant ID is a GUID"; a domain is refused with AF20013),
//! while the token endpoint and Graph take a domain as well. A domain is
//! resolved through the authority's OpenID Connect discovery document,
//! `{login}/{domain}/v2.0/.well-known/openid-configuration`, whose `issuer`
//! is `https://login.microsoftonline.com/{tenant GUID}/v2.0`.
//!
//! [`TenantGuid`] resolves once and keeps the answer; while it cannot (the
//! network is down at start, the authority answers 5xx), every caller gets
//! the last failure at once and the lookup is tried again with backoff, so
//! a tenant's other collectors (Graph, which needs no GUID) run meanwhile.

use crate::api::observe::{observe, Api};
use crate::config::is_guid;
use crate::metrics::Live;
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// First wait after a failed lookup; doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// A discovery document is a few KiB.
const MAX_BODY: usize = 256 * 1024;

/// Why a lookup failed; `lasting`: the authority says there is no such
/// tenant (asking again soon will not change that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    pub message: String,
    pub lasting: bool,
}

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// `{login}/{tenant}/v2.0/.well-known/openid-configuration`.
pub fn discovery_url(login_root: &str, tenant: &str) -> String {
    format!(
        "{}/{tenant}/v2.0/.well-known/openid-configuration",
        login_root.trim_end_matches('/')
    )
}

/// The tenant GUID in a discovery document: the path segment of `issuer`
/// (`https://login.microsoftonline.com/{guid}/v2.0`), lower-cased; else the
/// one in `token_endpoint`.
pub fn parse_discovery(body: &[u8]) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Doc {
        issuer: Option<String>,
        token_endpoint: Option<String>,
    }
    let doc: Doc = serde_json::from_slice(body)
        .map_err(|e| format!("the discovery document is not JSON: {e}"))?;
    [doc.issuer, doc.token_endpoint]
        .into_iter()
        .flatten()
        .find_map(|u| guid_in_url(&u))
        .ok_or_else(|| "the discovery document names no tenant GUID in its issuer".into())
}

/// The first path segment of `url` that is a GUID, lower-cased.
fn guid_in_url(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    let guid = u.path_segments()?.find(|s| is_guid(s))?;
    Some(guid.to_ascii_lowercase())
}

/// One lookup of `tenant`'s GUID at the authority `login_root`, counted in
/// `m365_api_requests_total{api="login",operation="openid_configuration"}`
/// when `live` is given.
pub async fn lookup(
    http: &reqwest::Client,
    login_root: &str,
    tenant: &str,
    metrics: Option<(&Live, &str)>,
) -> Result<String, Unresolved> {
    let url = discovery_url(login_root, tenant);
    let transient = |m: String| Unresolved {
        message: m,
        lasting: false,
    };
    let started = std::time::Instant::now();
    let sent = http
        .get(&url)
        .header("Accept", "application/json")
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => {
            if let Some((live, label)) = metrics {
                let took = started.elapsed();
                observe(
                    live,
                    label,
                    Api::Login,
                    "openid_configuration",
                    "error",
                    took,
                );
            }
            return Err(transient(format!(
                "{url}: {}",
                crate::api::transport::transport_message(&e)
            )));
        }
    };
    let status = resp.status().as_u16();
    let body = match resp.bytes().await {
        Ok(b) if b.len() <= MAX_BODY => Ok(b),
        Ok(_) => Err(format!("{url}: answer larger than {MAX_BODY} bytes")),
        Err(e) => Err(format!(
            "{url}: {}",
            crate::api::transport::transport_message(&e)
        )),
    };
    if let Some((live, label)) = metrics {
        let code = if body.is_ok() {
            status.to_string()
        } else {
            "error".into()
        };
        observe(
            live,
            label,
            Api::Login,
            "openid_configuration",
            &code,
            started.elapsed(),
        );
    }
    let body = body.map_err(transient)?;
    match status {
        200..=299 => parse_discovery(&body).map_err(|m| transient(format!("{url}: {m}"))),
        // AADSTS90002 "Tenant '…' not found": the domain is no tenant's.
        400 | 404 => Err(Unresolved {
            message: format!("{url}: HTTP {status}: {}", oauth_description(&body)),
            lasting: true,
        }),
        _ => Err(transient(format!("{url}: HTTP {status}"))),
    }
}

/// An OAuth error body's description, first line (AADSTS text), or the
/// start of the body.
fn oauth_description(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct E {
        error_description: Option<String>,
    }
    match serde_json::from_slice::<E>(body) {
        Ok(E {
            error_description: Some(d),
        }) => d.lines().next().unwrap_or_default().to_string(),
        _ => String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_string(),
    }
}

struct State {
    guid: Option<String>,
    /// The last failure and when to ask again.
    failed: Option<(Unresolved, Instant)>,
    failures: u32,
}

/// One tenant's GUID: its `tenant_id` when that is one, else resolved.
pub struct TenantGuid {
    /// The `tenant` label (logs, metrics).
    label: String,
    configured: String,
    login_root: String,
    http: reqwest::Client,
    live: Option<Arc<Live>>,
    state: Mutex<State>,
    /// One lookup at a time; the others wait for its answer.
    lookup: tokio::sync::Mutex<()>,
}

impl TenantGuid {
    /// `tenant_id` as configured; a domain is looked up at `login_root`.
    pub fn new(
        label: &str,
        tenant_id: &str,
        login_root: &str,
        http: reqwest::Client,
        live: Option<Arc<Live>>,
    ) -> Self {
        TenantGuid {
            label: label.to_string(),
            configured: tenant_id.to_string(),
            login_root: login_root.to_string(),
            http,
            live,
            state: Mutex::new(State {
                guid: is_guid(tenant_id).then(|| tenant_id.to_ascii_lowercase()),
                failed: None,
                failures: 0,
            }),
            lookup: tokio::sync::Mutex::new(()),
        }
    }

    /// A tenant whose GUID is known (no lookup ever).
    pub fn known(guid: &str) -> Self {
        Self::new("", guid, "", reqwest::Client::new(), None)
    }

    /// The `tenant_id` as configured (a GUID or a domain).
    pub fn configured(&self) -> &str {
        &self.configured
    }

    /// The GUID, if known by now.
    pub fn current(&self) -> Option<String> {
        self.state().guid.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tenant GUID: known, or looked up now; while a failed lookup's
    /// backoff runs, that failure at once.
    pub async fn guid(&self) -> Result<String, Unresolved> {
        if let Some(g) = self.ready()? {
            return Ok(g);
        }
        let _one = self.lookup.lock().await;
        // Another caller may have looked it up while this one waited.
        if let Some(g) = self.ready()? {
            return Ok(g);
        }
        let metrics = self.live.as_deref().map(|l| (l, self.label.as_str()));
        let result = lookup(&self.http, &self.login_root, &self.configured, metrics).await;
        let mut st = self.state();
        match result {
            Ok(g) => {
                tracing::info!(tenant = %self.label, tenant_id = %self.configured, tenant_guid = %g,
                    "tenant domain resolved to its GUID (used in Management API URLs and as the default PublisherIdentifier)");
                st.guid = Some(g.clone());
                st.failed = None;
                st.failures = 0;
                Ok(g)
            }
            Err(e) => {
                st.failures += 1;
                let wait = backoff(st.failures, e.lasting);
                tracing::debug!(tenant = %self.label, tenant_id = %self.configured, error = %e,
                    retry_in = ?wait, "tenant GUID lookup failed");
                st.failed = Some((e.clone(), Instant::now() + wait));
                Err(e)
            }
        }
    }

    /// `Ok(Some)`: known; `Err`: a failure whose backoff still runs;
    /// `Ok(None)`: look it up.
    fn ready(&self) -> Result<Option<String>, Unresolved> {
        let st = self.state();
        if let Some(g) = &st.guid {
            return Ok(Some(g.clone()));
        }
        match &st.failed {
            Some((e, until)) if Instant::now() < *until => Err(e.clone()),
            _ => Ok(None),
        }
    }
}

/// Wait after `failures` failed lookups: 5 s doubling to 10 min; at once the
/// longest when the authority says the tenant does not exist.
pub fn backoff(failures: u32, lasting: bool) -> Duration {
    if lasting {
        return MAX_BACKOFF;
    }
    FIRST_BACKOFF
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_documents() {
        let doc = br#"{"token_endpoint":"https://login.microsoftonline.com/8F3C2A1E-5B6D-4E7F-9A0B-1C2D3E4F5A6B/oauth2/v2.0/token","issuer":"https://login.microsoftonline.com/8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b/v2.0"}"#;
        assert_eq!(
            parse_discovery(doc).unwrap(),
            "8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b"
        );
        // issuer absent: the token endpoint's segment.
        let doc = br#"{"token_endpoint":"https://login.microsoftonline.com/8F3C2A1E-5B6D-4E7F-9A0B-1C2D3E4F5A6B/oauth2/v2.0/token"}"#;
        assert_eq!(
            parse_discovery(doc).unwrap(),
            "8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b"
        );
        // The "common" document's issuer holds a placeholder, no GUID.
        let common = br#"{"issuer":"https://login.microsoftonline.com/{tenantid}/v2.0"}"#;
        assert!(parse_discovery(common).is_err());
        assert!(parse_discovery(b"<html>").is_err());
        assert_eq!(
            discovery_url("https://login.microsoftonline.com/", "contoso.com"),
            "https://login.microsoftonline.com/contoso.com/v2.0/.well-known/openid-configuration"
        );
    }

    #[test]
    fn backoff_grows_to_ten_minutes() {
        assert_eq!(backoff(1, false), FIRST_BACKOFF);
        assert_eq!(backoff(2, false), FIRST_BACKOFF * 2);
        assert_eq!(backoff(40, false), MAX_BACKOFF);
        assert_eq!(backoff(1, true), MAX_BACKOFF);
    }

    #[tokio::test]
    async fn a_guid_needs_no_lookup() {
        let t = TenantGuid::known("8F3C2A1E-5B6D-4E7F-9A0B-1C2D3E4F5A6B");
        assert_eq!(
            t.guid().await.unwrap(),
            "8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b"
        );
    }

    /// A server answering every request with `status` and `body`; counts them.
    async fn authority(
        status: u16,
        body: &'static str,
    ) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = n.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = vec![0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
            }
        });
        (url, n)
    }

    /// A failed lookup is not repeated until its backoff ends; then it is.
    #[tokio::test(start_paused = true)]
    async fn failures_back_off() {
        let (url, asked) = authority(503, "{}").await;
        let t = TenantGuid::new("t", "contoso.example", &url, reqwest::Client::new(), None);
        let first = t.guid().await.unwrap_err();
        assert!(!first.lasting, "{first}");
        let n = |a: &std::sync::atomic::AtomicUsize| a.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(n(&asked), 1);
        assert_eq!(t.guid().await.unwrap_err(), first);
        assert_eq!(
            n(&asked),
            1,
            "within the backoff: the same failure, no lookup"
        );
        tokio::time::advance(FIRST_BACKOFF).await;
        assert!(t.guid().await.is_err());
        assert_eq!(n(&asked), 2, "after the backoff: asked again");
        assert!(t.current().is_none());
    }

    #[tokio::test]
    async fn an_unknown_domain_is_a_lasting_failure() {
        let (url, _) = authority(400, r#"{"error":"invalid_tenant","error_description":"AADSTS90002: Tenant 'nowhere.example' not found.\r\nTrace ID: x"}"#).await;
        let e = lookup(&reqwest::Client::new(), &url, "nowhere.example", None)
            .await
            .unwrap_err();
        assert!(e.lasting);
        assert!(
            e.message
                .ends_with("HTTP 400: AADSTS90002: Tenant 'nowhere.example' not found."),
            "{e}"
        );
    }

    #[tokio::test]
    async fn resolves_once() {
        let (url, asked) = authority(200, r#"{"issuer":"https://login.microsoftonline.com/8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b/v2.0"}"#).await;
        let live = Arc::new(Live::new());
        let t = TenantGuid::new(
            "t",
            "contoso.example",
            &url,
            reqwest::Client::new(),
            Some(live.clone()),
        );
        for _ in 0..3 {
            assert_eq!(
                t.guid().await.unwrap(),
                "8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b"
            );
        }
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(
            live.api_requests
                .with_label_values(&["t", "login", "openid_configuration", "200"])
                .get(),
            1
        );
    }
}
