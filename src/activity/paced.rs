//! One API's calls for one tenant, paced: every call first takes a token
//! from the tenant's request budget for that API, then goes through the
//! tenant's [`ApiClient`] (its token for the API's root as audience, host
//! allow-list, retries honouring `Retry-After`, request metrics). The
//! Management Activity API client ([`super::client`]) and the Audit Log
//! Query API client ([`super::auditquery`]) both send through one.

use crate::api::{Api, ApiClient, ApiError, Call, Response};
use crate::buffers::BufferPool;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::Method;
use std::num::NonZeroU32;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Paced {
    api: Arc<ApiClient>,
    kind: Api,
    /// The API's root, also the token audience.
    root: String,
    budget: DefaultDirectRateLimiter,
}

impl Paced {
    pub fn new(api: Arc<ApiClient>, kind: Api, root: &str, requests_per_minute: u32) -> Self {
        Paced {
            api,
            kind,
            root: root.trim_end_matches('/').to_string(),
            budget: RateLimiter::direct(budget_quota(requests_per_minute)),
        }
    }

    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    /// The root, without a trailing `/`.
    pub fn root(&self) -> &str {
        &self.root
    }

    fn call<'a>(
        &'a self,
        operation: &'static str,
        method: Method,
        url: &'a str,
        max_body: usize,
        json: Option<&'a [u8]>,
    ) -> Call<'a> {
        Call {
            api: self.kind,
            operation,
            method,
            url,
            audience: &self.root,
            max_body,
            json,
        }
    }

    /// The budget's next request; the tenant's stop ends the wait.
    async fn ready(&self, operation: &'static str) -> Result<(), ApiError> {
        let wait = async {
            self.budget.until_ready().await;
            Ok::<(), ApiError>(())
        };
        self.api.unless_stopped(operation, wait).await
    }

    /// [`ApiClient::send`] once the budget allows. The budget paces first
    /// attempts; `ApiClient`'s retries are already spaced by backoff and
    /// `Retry-After`.
    pub async fn send(
        &self,
        operation: &'static str,
        method: Method,
        url: &str,
        max_body: usize,
        json: Option<&[u8]>,
    ) -> Result<Response, ApiError> {
        self.ready(operation).await?;
        self.api
            .send(&self.call(operation, method, url, max_body, json))
            .await
    }

    /// A GET through [`ApiClient::send_budgeted`] (its body's bytes
    /// reserved from `bytes`, read into a buffer from `pool`) once the
    /// request budget allows.
    pub async fn get_budgeted(
        &self,
        operation: &'static str,
        url: &str,
        max_body: usize,
        bytes: &Arc<Semaphore>,
        pool: &Arc<BufferPool>,
    ) -> Result<(Response, Option<OwnedSemaphorePermit>), ApiError> {
        self.ready(operation).await?;
        self.api
            .send_budgeted(
                &self.call(operation, Method::GET, url, max_body, None),
                bytes,
                pool,
            )
            .await
    }
}

/// Microsoft's throttles count requests per minute; a bucket holding a
/// quarter minute's worth keeps any 60 s window at or below 1.25 × the
/// budget (1,875 for the Management API's default 1,500, under its ~2,000
/// baseline) while letting a poll's burst of listings go out at once.
pub fn budget_quota(requests_per_minute: u32) -> Quota {
    let rpm = NonZeroU32::new(requests_per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(requests_per_minute / 4).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(rpm).allow_burst(burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_burst_is_a_quarter_minute() {
        let q = budget_quota(1_500);
        assert_eq!(q.burst_size().get(), 375);
        assert_eq!(budget_quota(1).burst_size().get(), 1);
    }
}
