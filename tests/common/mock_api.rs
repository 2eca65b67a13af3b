//! An `ApiClient` for one tenant against a mock server (wiremock) at `uri`:
//! client-secret tokens from `{uri}/{TENANT}/oauth2/v2.0/token`, 3 quick
//! attempts, the server's origin allowed.
#![allow(dead_code)]

use m365_exporter::api::{ApiClient, RetryPolicy};
use m365_exporter::auth::credentials::{ClientSecretCredential, SecretSource};
use m365_exporter::auth::TokenProvider;
use m365_exporter::metrics::Live;
use m365_exporter::secret::Secret;
use std::sync::Arc;
use std::time::Duration;

pub const TENANT: &str = "8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b";

pub fn api_client(uri: &str) -> (Arc<ApiClient>, Arc<Live>) {
    let live = Arc::new(Live::new());
    let http =
        m365_exporter::api::transport::client(Duration::from_secs(2), Duration::from_secs(5));
    let cred = ClientSecretCredential::new(
        uri,
        TENANT,
        "0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5",
        SecretSource::Inline(Secret::new("s")),
    );
    let tokens = Arc::new(TokenProvider::new(
        "t",
        Arc::new(cred),
        http.clone(),
        live.clone(),
    ));
    let policy = RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(1),
    };
    let api = Arc::new(ApiClient::new(
        "t",
        http,
        live.clone(),
        tokens,
        policy,
        &[uri],
    ));
    (api, live)
}
