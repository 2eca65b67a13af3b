//! Against a mock server (wiremock) at `uri`: its token endpoint, and an
//! `ApiClient` for one tenant that gets client-secret tokens there, with 3
//! quick attempts and the server's origin allowed.

use m365_exporter::api::{ApiClient, RetryPolicy};
use m365_exporter::metrics::Live;
use m365_exporter::simulator::SIM_TENANT_ID;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

pub const TENANT: &str = SIM_TENANT_ID;

/// The token endpoint of [`TENANT`], handing out the bearer token `tok-1`;
/// mount it (after `.expect(n)` to hold the client to n token requests).
pub fn token_endpoint() -> Mock {
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"token_type":"Bearer","expires_in":3599,"access_token":"tok-1"}),
            ),
        )
}

pub fn api_client(uri: &str) -> (Arc<ApiClient>, Arc<Live>) {
    let policy = RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(1),
    };
    super::sim_api("t", uri, Duration::from_secs(5), policy)
}
