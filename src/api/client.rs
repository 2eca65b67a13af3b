//! [`ApiClient`]: one tenant's calls to Microsoft. A call is checked against
//! the tenant's hosts (a token never leaves for another), then tried: each
//! attempt (`ApiClient::attempt`) sends once with the current token, reads
//! the answer and says what comes next (done, retry after a wait, or renew
//! the token), and a loop around it (`ApiClient::send_reading`, behind
//! [`ApiClient::send`] and [`ApiClient::send_budgeted`]) tries again under
//! the [`RetryPolicy`]. Every exchange is counted in the `m365_api_*` metrics.

use super::error::{
    error_label, error_label_too_large, is_retryable_status, parse_error_body, ApiError,
    FOREIGN_HOST, MALFORMED,
};
use super::observe::{observe, Api};
use super::retry::{retry_after_of, RetryPolicy};
use super::transport::{read_capped, request, transport_message};
use crate::auth::TokenProvider;
use crate::buffers::BufferPool;
use crate::metrics::Live;
use crate::secret::Secret;
use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::Method;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// An error answer's body is read up to this much (its code and message).
const MAX_ERROR_BODY: usize = 64 * 1024;

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
    /// Set when the tenant stops ([`ApiClient::stop`]): every call in
    /// flight ends at once instead of holding the shutdown.
    stopping: tokio::sync::watch::Sender<bool>,
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
            stopping: tokio::sync::watch::channel(false).0,
        }
    }

    /// The tenant is stopping: every call in flight ends now with
    /// [`ApiError::Stopped`], whatever it was waiting for (its request or
    /// answer, a token with the credential's own retries, a backoff or a
    /// `Retry-After`), and later calls end before sending anything. The
    /// request timeout (60 s) is no bound on a stop.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// `work` (a call, or a wait that belongs to one), unless the tenant
    /// stops first: then [`ApiError::Stopped`] naming `operation`. Callers
    /// that wait outside [`Self::send`] (a request budget, a lookup, a
    /// backoff between pages) go through here, so a stop ends them too.
    pub async fn unless_stopped<T>(
        &self,
        operation: &'static str,
        work: impl std::future::Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let mut stopping = self.stopping.subscribe();
        tokio::select! {
            biased;
            // The sender lives in `self`: this resolves only on a stop.
            _ = stopping.wait_for(|s| *s) => Err(ApiError::Stopped { operation }),
            r = work => r,
        }
    }

    pub fn live(&self) -> &Live {
        &self.live
    }

    /// The retry policy (callers that retry a whole step reuse its backoff).
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The shared HTTP client (for calls that carry no token, e.g. the
    /// authority's discovery document).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The counters, shared.
    pub fn live_arc(&self) -> Arc<Live> {
        self.live.clone()
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
        self.count_error(api, MALFORMED);
        ApiError::Malformed {
            operation,
            message: message.into(),
        }
    }

    /// Send with retries; `Ok` only for a 2xx answer. The body is read into
    /// a buffer of its own.
    pub async fn send(&self, call: &Call<'_>) -> Result<Response, ApiError> {
        let reading = Reading {
            budget: None,
            pool: None,
        };
        self.send_reading(call, reading).await.map(|(r, _)| r)
    }

    /// [`Self::send`], with a 2xx body's bytes first reserved from `budget`
    /// (one permit per byte: its `Content-Length`, or `max_body` when the
    /// length is not announced) and read into a buffer from `pool`. The
    /// permit travels with the body, so the caller bounds the bytes it holds;
    /// `max_body` must not exceed the budget's size.
    pub async fn send_budgeted(
        &self,
        call: &Call<'_>,
        budget: &Arc<Semaphore>,
        pool: &Arc<BufferPool>,
    ) -> Result<(Response, Option<OwnedSemaphorePermit>), ApiError> {
        let reading = Reading {
            budget: Some(budget),
            pool: Some(pool),
        };
        self.send_reading(call, reading).await
    }

    /// [`Self::retrying`], ended by a stop wherever it waits.
    async fn send_reading(
        &self,
        call: &Call<'_>,
        reading: Reading<'_>,
    ) -> Result<(Response, Option<OwnedSemaphorePermit>), ApiError> {
        self.check_host(call)?;
        self.unless_stopped(call.operation, self.retrying(call, reading))
            .await
    }

    /// The retry loop: attempts until one is done or the policy's attempts
    /// are spent. A 401 renews the token once, at once, without counting as
    /// an attempt.
    async fn retrying(
        &self,
        call: &Call<'_>,
        reading: Reading<'_>,
    ) -> Result<(Response, Option<OwnedSemaphorePermit>), ApiError> {
        let mut attempt = 0;
        let mut may_renew = true;
        loop {
            attempt += 1;
            let token =
                self.tokens
                    .token(call.audience)
                    .await
                    .map_err(|source| ApiError::Auth {
                        operation: call.operation,
                        source,
                    })?;
            let (err, retry_after) = match self.attempt(call, &token, reading, may_renew).await {
                Attempt::Done(result) => return result,
                Attempt::RenewToken => {
                    // Expired or revoked early: one fresh token, at once.
                    may_renew = false;
                    self.tokens.invalidate(call.audience, &token).await;
                    attempt -= 1;
                    continue;
                }
                Attempt::Retry { err, after } => (err, after),
            };
            if attempt >= self.policy.max_attempts {
                return Err(err);
            }
            let wait = match retry_after {
                Some(d) => d.min(self.policy.max_retry_after),
                None => self.policy.backoff(attempt),
            };
            tracing::debug!(tenant = %self.tenant, operation = call.operation, error = %err, wait_ms = wait.as_millis() as u64, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// Tokens go only to this tenant's configured hosts: a link elsewhere
    /// (a next page, a content URI) is refused before anything is sent.
    fn check_host(&self, call: &Call<'_>) -> Result<(), ApiError> {
        if origin(call.url).is_some_and(|o| self.allowed.contains(&o)) {
            return Ok(());
        }
        self.count_error(call.api, FOREIGN_HOST);
        Err(ApiError::ForeignHost {
            operation: call.operation,
            url: call.url.to_string(),
        })
    }

    /// One try with `token`: send, read the answer, count it, and say what
    /// comes next. `may_renew`: a 401 asks for a fresh token (once per call).
    async fn attempt(
        &self,
        call: &Call<'_>,
        token: &Secret,
        reading: Reading<'_>,
        may_renew: bool,
    ) -> Attempt {
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
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) => {
                self.observe(call, "error", started);
                return Attempt::Retry {
                    err: ApiError::Transport {
                        operation: call.operation,
                        message: transport_message(&e),
                    },
                    after: None,
                };
            }
        };
        let status = resp.status().as_u16();
        let success = (200..300).contains(&status);
        let headers = resp.headers().clone();
        let limit = if success {
            call.max_body
        } else {
            MAX_ERROR_BODY
        };
        let permit = match reading.budget.filter(|_| success) {
            Some(b) => {
                let want = resp.content_length().map_or(limit, |n| n as usize);
                let n = u32::try_from(want.min(limit)).unwrap_or(u32::MAX);
                b.clone().acquire_many_owned(n).await.ok()
            }
            None => None,
        };
        let body = read_capped(resp, limit, call.operation, reading.pool).await;
        let code = match &body {
            Ok(_) | Err(ApiError::TooLarge { .. }) => status.to_string(),
            Err(_) => "error".to_string(),
        };
        self.observe(call, &code, started);
        match body {
            Ok(body) if success => Attempt::Done(Ok((
                Response {
                    status,
                    headers,
                    body,
                },
                permit,
            ))),
            Ok(body) => self.refused(call, status, &headers, &body, may_renew),
            // Asking again returns the same oversized body. An answer too
            // large to read is an unreadable one.
            Err(e @ ApiError::TooLarge { .. }) => {
                self.count_error(call.api, &error_label_too_large(status));
                Attempt::Done(Err(e))
            }
            Err(e) => Attempt::Retry {
                err: e,
                after: None,
            },
        }
    }

    /// An error answer: counted (throttling apart), then classified.
    fn refused(
        &self,
        call: &Call<'_>,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        may_renew: bool,
    ) -> Attempt {
        let (code, message) = parse_error_body(body);
        let throttled = status == 429 || code.as_deref() == Some("AF429");
        if throttled {
            self.live
                .api_throttled
                .with_label_values(&[self.tenant.as_str(), call.api.as_str(), call.operation])
                .inc();
        }
        self.count_error(call.api, &error_label(code.as_deref(), status));
        if status == 401 && may_renew {
            return Attempt::RenewToken;
        }
        let err = ApiError::Status {
            operation: call.operation,
            status,
            code,
            message,
        };
        if throttled || is_retryable_status(status, err.code()) {
            Attempt::Retry {
                err,
                after: retry_after_of(headers),
            }
        } else {
            Attempt::Done(Err(err))
        }
    }

    fn count_error(&self, api: Api, label: &str) {
        self.live
            .api_errors
            .with_label_values(&[self.tenant.as_str(), api.as_str(), label])
            .inc();
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

/// How an answer's body is read, as the caller chose: a 2xx body's bytes
/// reserved from `budget` first, and any body read into a buffer from `pool`
/// (None: neither; a buffer of its own).
#[derive(Clone, Copy)]
struct Reading<'a> {
    budget: Option<&'a Arc<Semaphore>>,
    pool: Option<&'a Arc<BufferPool>>,
}

/// What one attempt came to.
enum Attempt {
    /// The call's result: a 2xx answer, or an error asking again cannot fix.
    Done(Result<(Response, Option<OwnedSemaphorePermit>), ApiError>),
    /// Worth another try: after the answer's `Retry-After`, else a backoff.
    Retry {
        err: ApiError,
        after: Option<Duration>,
    },
    /// 401: the token was refused; a fresh one, then try again at once.
    RenewToken,
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
}
