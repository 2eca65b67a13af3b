//! OAuth 2.0 client-credentials tokens.
//!
//! [`TokenProvider`] is the per-tenant cache keyed by audience; it is
//! indifferent to how a token is obtained: that is a [`Credential`]. Tokens are
//! reused until shortly before expiry, renewed once on a 401, and concurrent
//! callers for the same audience share one request (single-flight).

pub mod credentials;

use crate::metrics::Live;
use crate::secret::Secret;
use crate::timefmt::now_unix;
use futures::future::BoxFuture;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, thiserror::Error)]
#[error("token request failed{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
pub struct AuthError {
    pub status: Option<u16>,
    /// OAuth error (`invalid_client`, …) when the server said one.
    pub code: Option<String>,
    pub message: String,
}

impl AuthError {
    fn transport(e: impl std::fmt::Display) -> Self {
        AuthError {
            status: None,
            code: None,
            message: e.to_string(),
        }
    }
    fn retryable(&self) -> bool {
        match self.status {
            None => true,
            Some(s) => s == 429 || s >= 500,
        }
    }
}

/// A token as a credential returned it.
pub struct IssuedToken {
    pub value: Secret,
    pub lifetime: Duration,
}

/// How a tenant obtains a token for an audience. One implementation per
/// credential kind (secret now; certificate, workload identity and managed
/// identity slot in here).
pub trait Credential: Send + Sync {
    fn fetch<'a>(
        &'a self,
        http: &'a reqwest::Client,
        audience: &'a str,
    ) -> BoxFuture<'a, Result<IssuedToken, AuthError>>;
}

/// Where the client secret lives.
pub enum SecretSource {
    Inline(Secret),
    /// Read on each token request so a rotated secret is used without restart.
    File(PathBuf),
}

impl SecretSource {
    fn read(&self) -> Result<Secret, AuthError> {
        match self {
            SecretSource::Inline(s) => Ok(s.clone()),
            SecretSource::File(p) => std::fs::read_to_string(p)
                .map(|s| Secret::new(s.trim()))
                .map_err(|e| AuthError {
                    status: None,
                    code: None,
                    message: format!("cannot read client_secret_file {}: {e}", p.display()),
                }),
        }
    }
}

pub struct ClientSecretCredential {
    pub token_url: String,
    pub client_id: String,
    pub secret: SecretSource,
}

impl ClientSecretCredential {
    /// `{login}/{tenant}/oauth2/v2.0/token`.
    pub fn new(login_root: &str, tenant_id: &str, client_id: &str, secret: SecretSource) -> Self {
        ClientSecretCredential {
            token_url: format!(
                "{}/{}/oauth2/v2.0/token",
                login_root.trim_end_matches('/'),
                tenant_id
            ),
            client_id: client_id.to_string(),
            secret,
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: NumOrString,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrString {
    Num(u64),
    Str(String),
}

#[derive(Deserialize)]
struct OAuthError {
    error: Option<String>,
    error_description: Option<String>,
}

impl Credential for ClientSecretCredential {
    fn fetch<'a>(
        &'a self,
        http: &'a reqwest::Client,
        audience: &'a str,
    ) -> BoxFuture<'a, Result<IssuedToken, AuthError>> {
        Box::pin(async move {
            let secret = self.secret.read()?;
            let scope = format!("{}/.default", audience.trim_end_matches('/'));
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", secret.expose()),
                ("scope", scope.as_str()),
            ];
            post_grant(http, &self.token_url, &form).await
        })
    }
}

/// POST a token request form and read the answer (any credential kind that
/// talks to the v2 token endpoint).
pub async fn post_grant(
    http: &reqwest::Client,
    token_url: &str,
    form: &[(&str, &str)],
) -> Result<IssuedToken, AuthError> {
    let resp = http
        .post(token_url)
        .form(form)
        .send()
        .await
        .map_err(AuthError::transport)?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(AuthError::transport)?;
    parse_token_response(status, &body)
}

/// Parse the token endpoint's answer (success or OAuth error body).
pub fn parse_token_response(status: u16, body: &[u8]) -> Result<IssuedToken, AuthError> {
    if (200..300).contains(&status) {
        let t: TokenResponse = serde_json::from_slice(body).map_err(|e| AuthError {
            status: Some(status),
            code: None,
            message: format!("malformed token response: {e}"),
        })?;
        let secs = match t.expires_in {
            NumOrString::Num(n) => n,
            NumOrString::Str(s) => s.parse().map_err(|_| AuthError {
                status: Some(status),
                code: None,
                message: format!("malformed expires_in {s:?}"),
            })?,
        };
        if t.access_token.is_empty() {
            return Err(AuthError {
                status: Some(status),
                code: None,
                message: "empty access_token".into(),
            });
        }
        return Ok(IssuedToken {
            value: Secret::new(t.access_token),
            // Microsoft issues 60–90 min tokens (24 h at most); a larger
            // value is a broken answer and must not overflow `Instant + lifetime`.
            lifetime: Duration::from_secs(secs.min(MAX_TOKEN_LIFETIME.as_secs())),
        });
    }
    let (code, message) = match serde_json::from_slice::<OAuthError>(body) {
        Ok(e) => (
            e.error,
            // First line only: AADSTS descriptions carry trace ids after it.
            e.error_description
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        ),
        Err(_) => (
            None,
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        ),
    };
    Err(AuthError {
        status: Some(status),
        message: match &code {
            Some(c) => format!("{c}: {message}"),
            None => message,
        },
        code,
    })
}

/// The longest token lifetime believed.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

struct Cached {
    value: Secret,
    /// Renew at or after this instant.
    renew_at: Instant,
}

/// Per-tenant token cache keyed by audience.
pub struct TokenProvider {
    tenant: String,
    credential: Arc<dyn Credential>,
    http: reqwest::Client,
    live: Arc<Live>,
    slots: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

/// Renew this long before expiry: 5 min for normal tokens, a quarter of the
/// lifetime for short ones (so a 5 s token is renewed after ~4 s).
pub fn renew_margin(lifetime: Duration) -> Duration {
    (lifetime / 4).min(Duration::from_secs(300))
}

impl TokenProvider {
    pub fn new(
        tenant: &str,
        credential: Arc<dyn Credential>,
        http: reqwest::Client,
        live: Arc<Live>,
    ) -> Self {
        TokenProvider {
            tenant: tenant.to_string(),
            credential,
            http,
            live,
            slots: Default::default(),
        }
    }

    fn slot(&self, audience: &str) -> Arc<tokio::sync::Mutex<Option<Cached>>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(audience.to_string()).or_default().clone()
    }

    /// A valid token for `audience`, from cache or freshly requested.
    pub async fn token(&self, audience: &str) -> Result<Secret, AuthError> {
        let slot = self.slot(audience);
        // Holding the slot's lock while requesting makes concurrent callers
        // wait for, and then reuse, the one token being fetched.
        let mut guard = slot.lock().await;
        if let Some(c) = guard.as_ref() {
            if Instant::now() < c.renew_at {
                return Ok(c.value.clone());
            }
        }
        let issued = self.fetch_with_retry(audience).await?;
        let now = Instant::now();
        // Whatever the credential said, no arithmetic below can overflow.
        let lifetime = issued.lifetime.min(MAX_TOKEN_LIFETIME);
        let renew_at = now + lifetime.saturating_sub(renew_margin(lifetime));
        self.live
            .token_expiry
            .with_label_values(&[self.tenant.as_str(), audience])
            .set(now_unix() + lifetime.as_secs_f64());
        let value = issued.value.clone();
        *guard = Some(Cached {
            value: issued.value,
            renew_at,
        });
        Ok(value)
    }

    /// Forget `stale` (the API answered 401 with it); a newer token is kept.
    pub async fn invalidate(&self, audience: &str, stale: &Secret) {
        let slot = self.slot(audience);
        let mut guard = slot.lock().await;
        if guard.as_ref().is_some_and(|c| &c.value == stale) {
            *guard = None;
        }
    }

    async fn fetch_with_retry(&self, audience: &str) -> Result<IssuedToken, AuthError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let started = Instant::now();
            let res = self.credential.fetch(&self.http, audience).await;
            let code = match &res {
                Ok(_) => "200".to_string(),
                Err(e) => e
                    .status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "error".into()),
            };
            crate::api::observe(
                &self.live,
                &self.tenant,
                crate::api::Api::Login,
                "token",
                &code,
                started.elapsed(),
            );
            let result = if res.is_ok() { "success" } else { "failure" };
            self.live
                .token_requests
                .with_label_values(&[self.tenant.as_str(), result])
                .inc();
            match res {
                Ok(t) => return Ok(t),
                Err(e) if e.retryable() && attempt < 3 => {
                    tracing::debug!(tenant = %self.tenant, error = %e, attempt, "token request failed, retrying");
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Counts fetches; each token lives `lifetime`.
    struct Counting {
        n: AtomicU32,
        lifetime: Duration,
    }

    impl Credential for Counting {
        fn fetch<'a>(
            &'a self,
            _: &'a reqwest::Client,
            audience: &'a str,
        ) -> BoxFuture<'a, Result<IssuedToken, AuthError>> {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let n = self.n.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(IssuedToken {
                    value: Secret::new(format!("{audience}#{n}")),
                    lifetime: self.lifetime,
                })
            })
        }
    }

    fn provider(lifetime: Duration) -> (Arc<Counting>, TokenProvider) {
        let c = Arc::new(Counting {
            n: AtomicU32::new(0),
            lifetime,
        });
        let p = TokenProvider::new(
            "t",
            c.clone(),
            reqwest::Client::new(),
            Arc::new(Live::new()),
        );
        (c, p)
    }

    #[tokio::test]
    async fn reuses_until_renewal() {
        let (c, p) = provider(Duration::from_secs(3600));
        let a = p.token("https://graph").await.unwrap();
        let b = p.token("https://graph").await.unwrap();
        assert_eq!(a, b);
        assert_eq!(c.n.load(Ordering::SeqCst), 1);
        // Another audience is another token.
        p.token("https://manage").await.unwrap();
        assert_eq!(c.n.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn renews_before_expiry() {
        let (c, p) = provider(Duration::from_millis(400));
        let a = p.token("aud").await.unwrap();
        // margin is 100 ms: at 320 ms the token is due for renewal, not yet expired.
        tokio::time::sleep(Duration::from_millis(320)).await;
        let b = p.token("aud").await.unwrap();
        assert_ne!(a, b);
        assert_eq!(c.n.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn invalidate_after_401_renews_once() {
        let (c, p) = provider(Duration::from_secs(3600));
        let a = p.token("aud").await.unwrap();
        p.invalidate("aud", &a).await;
        p.invalidate("aud", &a).await; // second caller with the same stale token
        let b = p.token("aud").await.unwrap();
        p.invalidate("aud", &a).await; // stale token no longer cached: keeps b
        let b2 = p.token("aud").await.unwrap();
        assert_ne!(a, b);
        assert_eq!(b, b2);
        assert_eq!(c.n.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn single_flight_under_20_callers() {
        let (c, p) = provider(Duration::from_secs(3600));
        let p = Arc::new(p);
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let p = p.clone();
                tokio::spawn(async move { p.token("aud").await.unwrap() })
            })
            .collect();
        let mut values = Vec::new();
        for t in tasks {
            values.push(t.await.unwrap());
        }
        assert_eq!(c.n.load(Ordering::SeqCst), 1);
        assert!(values.iter().all(|v| v == &values[0]));
    }

    #[test]
    fn parses_oauth_answers() {
        let ok = parse_token_response(
            200,
            br#"{"token_type":"Bearer","expires_in":"3599","access_token":"abc"}"#,
        )
        .unwrap();
        assert_eq!(ok.lifetime, Duration::from_secs(3599));
        let e = parse_token_response(401, br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x"}"#)
            .err()
            .unwrap();
        assert_eq!(e.code.as_deref(), Some("invalid_client"));
        assert_eq!(e.to_string(), "token request failed (HTTP 401): invalid_client: AADSTS7000215: Invalid client secret provided.");
        assert!(parse_token_response(200, b"{garbage").is_err());
        let huge = parse_token_response(
            200,
            br#"{"expires_in":18446744073709551615,"access_token":"abc"}"#,
        )
        .unwrap();
        assert_eq!(huge.lifetime, MAX_TOKEN_LIFETIME);
        let huge = parse_token_response(
            200,
            br#"{"expires_in":"18446744073709551615","access_token":"abc"}"#,
        )
        .unwrap();
        assert_eq!(huge.lifetime, MAX_TOKEN_LIFETIME);
    }
}
