//! [`TokenProvider`]: the per-tenant token cache keyed by audience. Tokens
//! are reused until shortly before expiry, renewed once on a 401, and
//! concurrent callers for the same audience share one request
//! (single-flight); how a token is obtained is the [`Credential`]'s business.

use super::grant::{AuthError, Credential, IssuedToken, MAX_TOKEN_LIFETIME};
use crate::api::observe::{observe, Api};
use crate::metrics::Live;
use crate::secret::Secret;
use crate::timefmt::now_unix;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

    /// Ask the credential until it answers or its [`super::retry::TokenRetry`] policy
    /// gives up (only then is the failure the caller's): each attempt is
    /// counted. The waits run on tokio's clock (tests pause it).
    async fn fetch_with_retry(&self, audience: &str) -> Result<IssuedToken, AuthError> {
        let policy = self.credential.retry();
        let first = tokio::time::Instant::now();
        let (mut attempt, mut gone) = (0u32, 0u32);
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
            observe(
                &self.live,
                &self.tenant,
                Api::Login,
                "token",
                &code,
                started.elapsed(),
            );
            let result = if res.is_ok() { "success" } else { "failure" };
            self.live
                .token_requests
                .with_label_values(&[self.tenant.as_str(), result])
                .inc();
            let e = match res {
                Ok(t) => return Ok(t),
                Err(e) => e,
            };
            gone += u32::from(e.status == Some(410));
            match policy.next(e.status, attempt, gone, first.elapsed()) {
                Some(wait) => {
                    tracing::debug!(tenant = %self.tenant, error = %e, attempt, wait_ms = wait.as_millis() as u64, "token request failed, retrying");
                    tokio::time::sleep(wait).await;
                }
                None => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
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

    /// Answers `script` in turn (an HTTP status, or 200 for a token),
    /// as an IMDS endpoint would; counts the requests.
    struct Imds {
        script: Vec<u16>,
        n: AtomicU32,
    }

    impl Credential for Imds {
        fn fetch<'a>(
            &'a self,
            _: &'a reqwest::Client,
            _: &'a str,
        ) -> BoxFuture<'a, Result<IssuedToken, AuthError>> {
            Box::pin(async move {
                let n = self.n.fetch_add(1, Ordering::SeqCst) as usize;
                match self.script.get(n).copied().unwrap_or(200) {
                    200 => Ok(IssuedToken {
                        value: Secret::new("t"),
                        lifetime: Duration::from_secs(3600),
                    }),
                    status => Err(AuthError {
                        status: Some(status),
                        code: None,
                        message: format!("IMDS answered {status}"),
                    }),
                }
            })
        }
        fn retry(&self) -> crate::auth::retry::TokenRetry {
            crate::auth::retry::TokenRetry::Imds
        }
    }

    fn imds(script: &[u16]) -> (Arc<Imds>, TokenProvider, Arc<Live>) {
        let c = Arc::new(Imds {
            script: script.to_vec(),
            n: AtomicU32::new(0),
        });
        let live = Arc::new(Live::new());
        let p = TokenProvider::new("t", c.clone(), reqwest::Client::new(), live.clone());
        (c, p, live)
    }

    /// A host update: 404s, then 410s for over a minute, then a token. The
    /// caller gets the token (no failure reported), every attempt counted;
    /// the clock is tokio's, paused: no test waits the minute.
    #[tokio::test(start_paused = true)]
    async fn managed_identity_waits_out_an_imds_update() {
        let script = [404, 404, 410, 410, 410, 410, 410];
        let (c, p, live) = imds(&script);
        let began = tokio::time::Instant::now();
        assert!(p.token("aud").await.is_ok());
        assert_eq!(c.n.load(Ordering::SeqCst) as usize, script.len() + 1);
        assert!(
            began.elapsed() >= Duration::from_secs(30),
            "{:?}",
            began.elapsed()
        );
        let failed = live
            .token_requests
            .with_label_values(&["t", "failure"])
            .get();
        assert_eq!(failed as usize, script.len());
    }

    /// 410 for longer than the policy's 70 s: the failure reaches the
    /// caller only once the policy gives up, after at least 70 s.
    #[tokio::test(start_paused = true)]
    async fn managed_identity_gives_up_after_70_seconds_of_410() {
        let (c, p, _) = imds(&[410; 20]);
        let began = tokio::time::Instant::now();
        let e = p.token("aud").await.unwrap_err();
        assert_eq!(e.status, Some(410));
        assert!(began.elapsed() >= crate::auth::retry::IMDS_GONE_FOR);
        assert!(c.n.load(Ordering::SeqCst) < 20);
        // A refusal is not retried.
        let (c, p, _) = imds(&[403]);
        assert!(p.token("aud").await.is_err());
        assert_eq!(c.n.load(Ordering::SeqCst), 1);
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
}
